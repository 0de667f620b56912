#include "onnx_proto.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/onnx-data.pb.h>

#include <algorithm>
#include <climits>
#include <unordered_set>

#include "onnxpipe/error.h"
#include "onnxpipe/sequence.h"
#include "proto_stream.h"

namespace onnxpipe {
namespace detail {

namespace {

// Error(INVALID_MODEL) for a negative dim, or a count whose bytes (up to 16 an element) would not fit in int64.
int64_t element_count(const onnx::TensorProto& t) {
  int64_t n = 1;
  for (const int64_t d : t.dims()) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > INT64_MAX / 16)
      throw Error(ErrorCode::INVALID_MODEL, "tensor '" + t.name() + "': dims negative or too large");
  }
  return n;
}

}  // namespace

std::string normalize_domain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

int64_t data_bytes(int32_t data_type, int64_t count) {
  switch (data_type) {
    case 21:
    case 22:
      return (count + 1) / 2;  // UINT4, INT4
    case 17:
    case 18:
    case 19:
    case 20:
      return count;  // FLOAT8 variants
    default:
      return count * static_cast<int64_t>(dtype_size(static_cast<DType>(data_type)));
  }
}

bool is_external(const onnx::TensorProto& t) { return t.data_location() == onnx::TensorProto::EXTERNAL; }

ExternalRef external_ref(const onnx::TensorProto& t) {
  ExternalRef ref;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location")
        ref.location = kv.value();
      else if (kv.key() == "offset")
        ref.offset = std::stoll(kv.value());
      else if (kv.key() == "length")
        ref.length = std::stoll(kv.value());
    } catch (const std::exception&) {
      throw Error(ErrorCode::INVALID_MODEL,
                  "tensor '" + t.name() + "': bad external_data " + kv.key() + " '" + kv.value() + "'");
    }
  }
  if (ref.location.empty())
    throw Error(ErrorCode::INVALID_MODEL, "tensor '" + t.name() + "': external data without location");
  return ref;
}

int64_t tensor_bytes(const onnx::TensorProto& t) {
  if (t.data_type() == onnx::TensorProto::STRING) {
    int64_t n = 0;
    for (const auto& s : t.string_data()) n += static_cast<int64_t>(s.size());
    return n;
  }
  return data_bytes(t.data_type(), element_count(t));
}

void append_typed_data(const onnx::TensorProto& t, std::string* out) {
  const auto append = [out](const void* p, size_t n) { out->append(static_cast<const char*>(p), n); };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::COMPLEX64:
      append(t.float_data().data(), t.float_data_size() * sizeof(float));
      return;
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::COMPLEX128:
      append(t.double_data().data(), t.double_data_size() * sizeof(double));
      return;
    case onnx::TensorProto::INT64:
      append(t.int64_data().data(), t.int64_data_size() * sizeof(int64_t));
      return;
    case onnx::TensorProto::UINT64:
      append(t.uint64_data().data(), t.uint64_data_size() * sizeof(uint64_t));
      return;
    case onnx::TensorProto::UINT32:
      for (const uint64_t v : t.uint64_data()) {
        const auto u = static_cast<uint32_t>(v);
        append(&u, sizeof u);
      }
      return;
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16: {
      // int32_data holds one element per entry (float16 as its bit pattern): keep the low bytes (little endian).
      const size_t size = dtype_size(static_cast<DType>(t.data_type()));
      for (const int32_t v : t.int32_data()) {
        const auto u = static_cast<uint32_t>(v);
        append(&u, size);
      }
      return;
    }
    default:
      throw Error(ErrorCode::INVALID_MODEL,
                  "tensor '" + t.name() + "': unsupported data type " + std::to_string(t.data_type()));
  }
}

Tensor to_tensor(const onnx::TensorProto& t) {
  Tensor out;
  out.dtype = static_cast<DType>(t.data_type());
  out.shape.assign(t.dims().begin(), t.dims().end());
  const int64_t count = element_count(t);
  if (is_external(t))
    throw Error(ErrorCode::INVALID_MODEL, "tensor '" + t.name() + "': external data not supported here");
  if (t.data_type() == onnx::TensorProto::STRING) {
    out.strings.assign(t.string_data().begin(), t.string_data().end());
    if (static_cast<int64_t>(out.strings.size()) != count)
      throw Error(ErrorCode::INVALID_MODEL, "tensor has " + std::to_string(out.strings.size()) +
                                                " strings, shape needs " + std::to_string(count));
    return out;
  }
  if (dtype_size(out.dtype) == 0)
    throw Error(ErrorCode::INVALID_MODEL, "unsupported tensor data type " + std::to_string(t.data_type()));
  std::string bytes;
  const std::string* src = &t.raw_data();
  if (!t.has_raw_data()) {
    append_typed_data(t, &bytes);
    src = &bytes;
  }
  const int64_t expected = data_bytes(t.data_type(), count);
  if (static_cast<int64_t>(src->size()) != expected)
    throw Error(ErrorCode::INVALID_MODEL,
                "tensor data has " + std::to_string(src->size()) + " bytes, shape needs " + std::to_string(expected));
  out.data.assign(src->begin(), src->end());
  return out;
}

namespace {

bool graph_has_external_tensor(const onnx::GraphProto& g) {
  return std::any_of(g.initializer().begin(), g.initializer().end(), is_external) ||
         std::any_of(g.node().begin(), g.node().end(), node_has_external_tensor);
}

}  // namespace

bool node_has_external_tensor(const onnx::NodeProto& n) {
  return std::any_of(n.attribute().begin(), n.attribute().end(), [](const onnx::AttributeProto& a) {
    return (a.has_t() && is_external(a.t())) || std::any_of(a.tensors().begin(), a.tensors().end(), is_external) ||
           (a.has_g() && graph_has_external_tensor(a.g())) ||
           std::any_of(a.graphs().begin(), a.graphs().end(), graph_has_external_tensor);
  });
}

ValueDesc value_desc(const onnx::ValueInfoProto& vi) {
  ValueDesc v;
  v.name = vi.name();
  if (!vi.type().has_tensor_type()) return v;
  const auto& tt = vi.type().tensor_type();
  v.dtype = static_cast<DType>(tt.elem_type());
  v.has_shape = tt.has_shape();
  for (const auto& d : tt.shape().dim()) {
    Dim dim;
    if (d.has_dim_value())
      dim.value = d.dim_value();
    else if (d.has_dim_param())
      dim.param = d.dim_param();
    v.dims.push_back(dim);
  }
  return v;
}

onnx::ValueInfoProto value_info(const ValueDesc& v) {
  onnx::ValueInfoProto vi;
  vi.set_name(v.name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype));
  if (v.has_shape) {
    auto* shape = tt->mutable_shape();
    for (const Dim& d : v.dims) {
      auto* dim = shape->add_dim();
      if (d.value >= 0)
        dim->set_dim_value(d.value);
      else if (!d.param.empty())
        dim->set_dim_param(d.param);
    }
  }
  return vi;
}

void subgraph_free_names(const onnx::GraphProto& g, std::set<std::string>* out) {
  std::unordered_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& s : g.sparse_initializer()) defined.insert(s.values().name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) defined.insert(o);
  for (const auto& n : g.node()) {
    for (const auto& i : n.input())
      if (!i.empty() && !defined.count(i)) out->insert(i);
    for (const auto& a : n.attribute()) {
      std::set<std::string> inner;
      if (a.has_g()) subgraph_free_names(a.g(), &inner);
      for (const auto& sg : a.graphs()) subgraph_free_names(sg, &inner);
      for (const auto& name : inner)
        if (!defined.count(name)) out->insert(name);
    }
  }
  for (const auto& v : g.output())
    if (!defined.count(v.name())) out->insert(v.name());  // a branch may output an outer value directly
}

onnx::ModelProto model_header(const onnx::ModelProto& m) {
  onnx::ModelProto h;
  h.set_ir_version(m.ir_version());
  *h.mutable_opset_import() = m.opset_import();
  if (m.has_producer_name()) h.set_producer_name(m.producer_name());
  if (m.has_producer_version()) h.set_producer_version(m.producer_version());
  if (m.has_domain()) h.set_domain(m.domain());
  if (m.has_model_version()) h.set_model_version(m.model_version());
  if (m.has_doc_string()) h.set_doc_string(m.doc_string());
  *h.mutable_metadata_props() = m.metadata_props();
  *h.mutable_training_info() = m.training_info();
  *h.mutable_functions() = m.functions();
  return h;
}

}  // namespace detail

namespace {

// Parses the whole file as `proto`; Error(INVALID_DATA) naming the file and `what` it should hold otherwise.
void parse_file(const std::string& path, google::protobuf::Message* proto, const std::string& what) {
  detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(ErrorCode::IO, detail::sys_error(path));
  google::protobuf::io::FileInputStream stream(fd.fd, 1 << 20);
  google::protobuf::io::CodedInputStream in(&stream);
  in.SetTotalBytesLimit(INT_MAX);
  if (!proto->ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
    throw Error(ErrorCode::INVALID_DATA, path + ": not a serialized onnx " + what + " or truncated");
}

// The tensor is the caller's data here, not a model's initializer.
Tensor data_tensor(const std::string& path, const onnx::TensorProto& proto) {
  try {
    return detail::to_tensor(proto);
  } catch (const Error& e) {
    throw Error(e.code() == ErrorCode::INVALID_MODEL ? ErrorCode::INVALID_DATA : e.code(), path + ": " + e.what());
  }
}

}  // namespace

Tensor read_tensor_pb(const std::string& path) {
  onnx::TensorProto proto;
  parse_file(path, &proto, "TensorProto");
  return data_tensor(path, proto);
}

TensorSequence read_sequence_pb(const std::string& path) {
  onnx::SequenceProto proto;
  parse_file(path, &proto, "SequenceProto");
  // A TensorProto parses as a SequenceProto too (the field numbers overlap): what is not a sequence's is unknown.
  if (!proto.GetReflection()->GetUnknownFields(proto).empty())
    throw Error(ErrorCode::INVALID_DATA, path + ": not a serialized onnx SequenceProto");
  if (proto.elem_type() != onnx::SequenceProto::TENSOR)
    throw Error(ErrorCode::INVALID_DATA, path + ": a sequence of element type " + std::to_string(proto.elem_type()) +
                                             ": only sequences of tensors are supported");
  TensorSequence sequence;
  for (const onnx::TensorProto& item : proto.tensor_values()) {
    sequence.tensors.push_back(data_tensor(path, item));
    const DType dtype = sequence.tensors.back().dtype;
    if (sequence.dtype != DType::UNDEFINED && dtype != sequence.dtype)
      throw Error(ErrorCode::INVALID_DATA, path + ": sequence element " + std::to_string(sequence.tensors.size() - 1) +
                                               " is " + dtype_name(dtype) + ", the first is " +
                                               dtype_name(sequence.dtype));
    sequence.dtype = dtype;
  }
  return sequence;
}

}  // namespace onnxpipe
