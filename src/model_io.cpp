// Model I/O on onnx 1.12 / protobuf 3.21. Weight bytes are never held twice: loading leaves large raw_data fields on
// disk (their offsets are recorded, like external data), and pieces and serialized copies are written field by field
// from borrowed messages, with weight bytes copied file to file by the kernel (see ModelWriter, FileSink).
#include "model_io.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "onnxpipe/error.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe {
namespace detail {
namespace {

namespace pbio = google::protobuf::io;
using google::protobuf::internal::WireFormatLite;

constexpr int64_t kExternalAlignment = 4096;  // onnx aligns external tensors so they can be memory-mapped
constexpr size_t kCopyChunk = 4u << 20;
// raw_data fields above this stay on disk when loading; shape inference sees the data of smaller tensors only
// (enough for Reshape shapes and the like).
constexpr size_t kSmallTensorBytes = 64u << 10;

std::string sys_error(const std::string& path) { return path + ": " + std::strerror(errno); }

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  return dir + "/" + name;
}

std::string normalize_domain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

// Bytes of `count` elements of an onnx data type, including types newer than onnx 1.12 (float8: 1 byte, int4: half).
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

// Error(INVALID_MODEL) for a negative dim, or a count whose bytes (up to 16 an element) would not fit in int64.
int64_t element_count(const onnx::TensorProto& t) {
  int64_t n = 1;
  for (const int64_t d : t.dims()) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > INT64_MAX / 16)
      throw Error(ErrorCode::INVALID_MODEL, "tensor '" + t.name() + "': dims negative or too large");
  }
  return n;
}

bool is_external(const onnx::TensorProto& t) { return t.data_location() == onnx::TensorProto::EXTERNAL; }

struct ExternalRef {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;  // -1: not given
};

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

// Bytes of the tensor's data as stored (strings: their total length).
int64_t tensor_bytes(const onnx::TensorProto& t) {
  if (t.data_type() == onnx::TensorProto::STRING) {
    int64_t n = 0;
    for (const auto& s : t.string_data()) n += static_cast<int64_t>(s.size());
    return n;
  }
  return data_bytes(t.data_type(), element_count(t));
}

// Appends the numeric data of a tensor stored in typed fields (float_data, int32_data...) as little-endian raw bytes.
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

// Free names of a subgraph: read inside it (or inside its nested subgraphs) but not defined in it.
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

// Node indices in a topological order that keeps file order where it is valid (onnx 1.12 infers shapes in list
// order, so an unsorted graph would lose types). Nodes on a cycle follow in file order.
std::vector<int> topological_order(const GraphDesc& desc) {
  const int n = static_cast<int>(desc.nodes.size());
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : desc.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  std::vector<std::vector<int>> readers(n);
  std::vector<int> pending(n, 0);
  for (int i = 0; i < n; ++i) {
    std::unordered_set<int> from;
    const auto add = [&](const std::string& name) {
      const auto it = producer.find(name);
      if (it != producer.end() && it->second != i && from.insert(it->second).second) {
        readers[it->second].push_back(i);
        ++pending[i];
      }
    };
    for (const auto& in : desc.nodes[i].inputs) add(in);
    for (const auto& in : desc.nodes[i].implicit_inputs) add(in);
  }
  std::set<int> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<int> order;
  std::vector<bool> placed(n, false);
  while (!ready.empty()) {
    const int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    placed[i] = true;
    for (const int r : readers[i])
      if (--pending[r] == 0) ready.insert(r);
  }
  for (int i = 0; i < n; ++i)
    if (!placed[i]) order.push_back(i);
  return order;
}

// The model's fields except the graph (which holds the weights).
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

// A byte range of a file: weight data left on disk (an external data file, or a large raw_data field of the model
// file itself, skipped when loading).
struct FileRange {
  std::string path;
  int64_t offset = 0;
  int64_t length = 0;
};

// Reads a file range into memory that the caller owns.
void read_range(const FileRange& r, char* out) {
  Fd fd(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(r.path));
  int64_t done = 0;
  while (done < r.length) {
    const ssize_t n = ::pread(fd.fd, out + done, static_cast<size_t>(r.length - done), r.offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::IO, sys_error(r.path));
    if (n == 0)
      throw Error(ErrorCode::IO,
                  r.path + ": ends before offset " + std::to_string(r.offset) + " + " + std::to_string(r.length));
    done += n;
  }
}

// Where serialized bytes go: protobuf messages and small fields are buffered, weight ranges are copied from their
// file without passing through a message.
class Sink {
 public:
  virtual ~Sink() = default;
  void bytes(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    spill();
  }
  void zeros(size_t n) {
    buf_.append(n, '\0');
    spill();
  }
  // Needs the message's cached size (ByteSizeLong called since its last change).
  void message(const google::protobuf::MessageLite& m) {
    const size_t old = buf_.size();
    buf_.resize(old + static_cast<size_t>(m.GetCachedSize()));
    m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&buf_[old]));
    spill();
  }
  // Tag and length of a length-delimited field whose payload follows.
  void field_header(int field, size_t length) {
    uint8_t tmp[16];
    uint8_t* p = pbio::CodedOutputStream::WriteTagToArray(
        WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), tmp);
    p = pbio::CodedOutputStream::WriteVarint64ToArray(length, p);
    bytes(tmp, static_cast<size_t>(p - tmp));
  }
  virtual void range(const FileRange& r) = 0;
  int64_t position() const { return written_ + static_cast<int64_t>(buf_.size()); }

 protected:
  virtual void spill() {}
  std::string buf_;
  int64_t written_ = 0;
};

// Serializes into one string of a known size.
class StringSink : public Sink {
 public:
  explicit StringSink(size_t total) { buf_.reserve(total); }
  void range(const FileRange& r) override {
    const size_t old = buf_.size();
    buf_.resize(old + static_cast<size_t>(r.length));
    read_range(r, &buf_[old]);
  }
  std::string take() { return std::move(buf_); }
};

// Writes a file; ranges are copied kernel-side (copy_file_range), never through our memory.
class FileSink : public Sink {
 public:
  explicit FileSink(std::string path)
      : path_(std::move(path)), fd_(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_.fd < 0) throw Error(ErrorCode::IO, sys_error(path_));
  }
  void range(const FileRange& r) override {
    drain();
    Fd src(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (src.fd < 0) throw Error(ErrorCode::IO, sys_error(r.path));
    off_t in = static_cast<off_t>(r.offset);
    int64_t left = r.length;
    while (left > 0) {
      const ssize_t n = ::copy_file_range(src.fd, &in, fd_.fd, nullptr, static_cast<size_t>(left), 0);
      if (n > 0) {
        left -= n;
        continue;
      }
      if (n == 0)
        throw Error(ErrorCode::IO,
                    r.path + ": ends before offset " + std::to_string(r.offset) + " + " + std::to_string(r.length));
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EBADF)
        throw Error(ErrorCode::IO, sys_error(path_));
      // No kernel copy between these files: go through a buffer.
      std::vector<char> chunk(static_cast<size_t>(std::min<int64_t>(left, kCopyChunk)));
      while (left > 0) {
        const FileRange part{r.path, static_cast<int64_t>(in),
                             std::min<int64_t>(left, static_cast<int64_t>(chunk.size()))};
        read_range(part, chunk.data());
        write_all(chunk.data(), static_cast<size_t>(part.length));
        in += part.length;
        left -= part.length;
      }
    }
    written_ += r.length;
  }
  void close() {
    drain();
    const int rc = ::close(fd_.fd);
    fd_.fd = -1;
    if (rc != 0) throw Error(ErrorCode::IO, sys_error(path_));
  }

 private:
  void spill() override {
    if (buf_.size() >= kCopyChunk) drain();
  }
  void drain() {
    write_all(buf_.data(), buf_.size());
    written_ += static_cast<int64_t>(buf_.size());
    buf_.clear();
  }
  void write_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_.fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw Error(ErrorCode::IO, sys_error(path_));
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  std::string path_;
  Fd fd_;
};

// An initializer to write: its message, and where its raw_data comes from when not inside the message.
struct TensorEntry {
  const onnx::TensorProto* meta = nullptr;
  std::optional<FileRange> raw;
};

// A model assembled from a header, a small graph (name, inputs, outputs, value_info) and borrowed nodes and
// initializers, serialized field by field so that no weight is copied in memory. Field order does not matter to
// protobuf parsers: repeated fields are concatenated in the order they appear. byte_size() computes the cached sizes
// of the borrowed messages, so two writers must not share messages across threads.
class ModelWriter {
 public:
  onnx::ModelProto header;  // no graph
  onnx::GraphProto graph;   // no nodes, no initializers
  std::vector<const onnx::NodeProto*> nodes;
  std::vector<TensorEntry> initializers;
  std::vector<const onnx::SparseTensorProto*> sparse_initializers;

  size_t byte_size() {
    const auto framed = [](int field, size_t size) {
      return WireFormatLite::TagSize(field, WireFormatLite::TYPE_MESSAGE) + WireFormatLite::LengthDelimitedSize(size);
    };
    graph_size_ = graph.ByteSizeLong();
    for (const auto* n : nodes) graph_size_ += framed(onnx::GraphProto::kNodeFieldNumber, n->ByteSizeLong());
    tensor_sizes_.clear();
    for (const auto& t : initializers) {
      size_t size = t.meta->ByteSizeLong();
      if (t.raw) size += framed(onnx::TensorProto::kRawDataFieldNumber, static_cast<size_t>(t.raw->length));
      tensor_sizes_.push_back(size);
      graph_size_ += framed(onnx::GraphProto::kInitializerFieldNumber, size);
    }
    for (const auto* s : sparse_initializers)
      graph_size_ += framed(onnx::GraphProto::kSparseInitializerFieldNumber, s->ByteSizeLong());
    if (graph_size_ > static_cast<size_t>(INT_MAX))
      throw Error(ErrorCode::INVALID_MODEL, "model graph exceeds protobuf's 2 GB limit: use external data");
    return header.ByteSizeLong() + framed(onnx::ModelProto::kGraphFieldNumber, graph_size_);
  }

  void write(Sink& out) const {
    out.message(header);
    out.field_header(onnx::ModelProto::kGraphFieldNumber, graph_size_);
    out.message(graph);
    for (const auto* n : nodes) {
      out.field_header(onnx::GraphProto::kNodeFieldNumber, static_cast<size_t>(n->GetCachedSize()));
      out.message(*n);
    }
    for (size_t i = 0; i < initializers.size(); ++i) {
      const TensorEntry& t = initializers[i];
      out.field_header(onnx::GraphProto::kInitializerFieldNumber, tensor_sizes_[i]);
      out.message(*t.meta);
      if (t.raw) {
        out.field_header(onnx::TensorProto::kRawDataFieldNumber, static_cast<size_t>(t.raw->length));
        out.range(*t.raw);
      }
    }
    for (const auto* s : sparse_initializers) {
      out.field_header(onnx::GraphProto::kSparseInitializerFieldNumber, static_cast<size_t>(s->GetCachedSize()));
      out.message(*s);
    }
  }

 private:
  size_t graph_size_ = 0;
  std::vector<size_t> tensor_sizes_;
};

// Starts an external tensor in a data file: pads to onnx's alignment and records location/offset/length in `meta`.
void begin_external(FileSink& data, const std::string& location, int64_t length, onnx::TensorProto* meta) {
  const int64_t offset = data.position();
  const int64_t aligned = (offset + kExternalAlignment - 1) / kExternalAlignment * kExternalAlignment;
  data.zeros(static_cast<size_t>(aligned - offset));
  meta->set_data_location(onnx::TensorProto::EXTERNAL);
  meta->clear_external_data();
  const auto add = [meta](const char* key, const std::string& value) {
    auto* kv = meta->add_external_data();
    kv->set_key(key);
    kv->set_value(value);
  };
  add("location", location);
  add("offset", std::to_string(aligned));
  add("length", std::to_string(length));
}

// Tensors held in a node's attributes, subgraphs included (their initializers and their nodes' attributes), may be
// external data too: torch writes a large Constant's value so. Their locations are relative to the source model.
bool graph_has_external_tensor(const onnx::GraphProto& g);

bool node_has_external_tensor(const onnx::NodeProto& n) {
  return std::any_of(n.attribute().begin(), n.attribute().end(), [](const onnx::AttributeProto& a) {
    return (a.has_t() && is_external(a.t())) || std::any_of(a.tensors().begin(), a.tensors().end(), is_external) ||
           (a.has_g() && graph_has_external_tensor(a.g())) ||
           std::any_of(a.graphs().begin(), a.graphs().end(), graph_has_external_tensor);
  });
}

bool graph_has_external_tensor(const onnx::GraphProto& g) {
  return std::any_of(g.initializer().begin(), g.initializer().end(), is_external) ||
         std::any_of(g.node().begin(), g.node().end(), node_has_external_tensor);
}

template <typename Fn>
void for_each_attribute_tensor(onnx::NodeProto* n, const Fn& fn) {
  const auto visit_graph = [&fn](onnx::GraphProto* g) {
    for (auto& t : *g->mutable_initializer()) fn(&t);
    for (auto& sub : *g->mutable_node()) for_each_attribute_tensor(&sub, fn);
  };
  for (auto& a : *n->mutable_attribute()) {
    if (a.has_t()) fn(a.mutable_t());
    for (auto& t : *a.mutable_tensors()) fn(&t);
    if (a.has_g()) visit_graph(a.mutable_g());
    for (auto& g : *a.mutable_graphs()) visit_graph(&g);
  }
}

// ---- Parsing with large raw_data fields left on disk ----
// A protobuf message is parsed field by field: the fields we look into are handled here, the others are copied as
// bytes into `rest` and parsed by protobuf at the end (repeated fields merge in order).

using DeferredRanges = std::unordered_map<std::string, std::pair<int64_t, int64_t>>;  // initializer -> offset, length

bool parse_tensor(pbio::CodedInputStream& in, onnx::TensorProto* t, int64_t* raw_offset, int64_t* raw_length) {
  std::string rest;
  {
    pbio::StringOutputStream stream(&rest);
    pbio::CodedOutputStream co(&stream);
    const uint32_t raw_tag =
        WireFormatLite::MakeTag(onnx::TensorProto::kRawDataFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      if (tag != raw_tag) {
        if (!WireFormatLite::SkipField(&in, tag, &co)) return false;
        continue;
      }
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      if (length > kSmallTensorBytes) {
        *raw_offset = in.CurrentPosition();
        *raw_length = length;
        if (!in.Skip(static_cast<int>(length))) return false;
        continue;
      }
      std::string data;
      if (!in.ReadString(&data, static_cast<int>(length))) return false;
      co.WriteTag(tag);
      co.WriteVarint32(length);
      co.WriteString(data);
      *raw_offset = -1;  // a later raw_data field wins
    }
    if (!in.ConsumedEntireMessage()) return false;
  }
  return t->MergeFromString(rest);
}

bool parse_graph(pbio::CodedInputStream& in, onnx::GraphProto* g, DeferredRanges* deferred) {
  std::string rest;
  {
    pbio::StringOutputStream stream(&rest);
    pbio::CodedOutputStream co(&stream);
    const uint32_t init_tag =
        WireFormatLite::MakeTag(onnx::GraphProto::kInitializerFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      if (tag != init_tag) {
        if (!WireFormatLite::SkipField(&in, tag, &co)) return false;
        continue;
      }
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      const auto limit = in.PushLimit(static_cast<int>(length));
      auto* t = g->add_initializer();
      int64_t offset = -1, raw_length = 0;
      if (!parse_tensor(in, t, &offset, &raw_length)) return false;
      in.PopLimit(limit);
      if (offset >= 0) (*deferred)[t->name()] = {offset, raw_length};
    }
    if (!in.ConsumedEntireMessage()) return false;
  }
  return g->MergeFromString(rest);
}

bool parse_model(pbio::CodedInputStream& in, onnx::ModelProto* m, DeferredRanges* deferred) {
  std::string rest;
  {
    pbio::StringOutputStream stream(&rest);
    pbio::CodedOutputStream co(&stream);
    const uint32_t graph_tag =
        WireFormatLite::MakeTag(onnx::ModelProto::kGraphFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      if (tag != graph_tag) {
        if (!WireFormatLite::SkipField(&in, tag, &co)) return false;
        continue;
      }
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      const auto limit = in.PushLimit(static_cast<int>(length));
      if (!parse_graph(in, m->mutable_graph(), deferred)) return false;
      in.PopLimit(limit);
    }
    if (!in.ConsumedEntireMessage()) return false;
  }
  return m->MergeFromString(rest);
}

// Opset domains and versions onnx 1.12's schema registry knows.
bool opsets_known(const google::protobuf::RepeatedPtrField<onnx::OperatorSetIdProto>& opsets) {
  const auto& range = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  for (const auto& o : opsets) {
    const auto it = range.find(normalize_domain(o.domain()));
    if (it != range.end() && o.version() > it->second.second) return false;
  }
  return true;
}

}  // namespace

struct Model::Impl {
  onnx::ModelProto model;
  GraphDesc desc;
  std::string dir;  // external data locations are relative to it
  std::unordered_map<std::string, const onnx::TensorProto*> initializers;
  std::unordered_map<std::string, const onnx::SparseTensorProto*> sparse_initializers;
  DeferredRanges deferred;  // large raw_data fields left in the model file
  struct stat file_stat {};
  // Sequences, optionals, maps: ValueDesc cannot carry them, so pieces that pass them on copy these types.
  mutable std::unordered_map<std::string, onnx::TypeProto> non_tensor_types;

  void check_external_data();  // also lists desc.data_files
  void check_unchanged() const;
  // Where the tensor's data lives on disk (an external file, or the model file itself); nullopt when in memory.
  std::optional<FileRange> stored_range(const onnx::TensorProto& t) const;
  void make_node_names_unique();
  void describe();
  int64_t external_length(const onnx::TensorProto& t, ExternalRef* ref) const;
};

void Model::Impl::check_unchanged() const {
  struct stat now {};
  if (deferred.empty()) return;
  if (::stat(desc.path.c_str(), &now) != 0) throw Error(ErrorCode::IO, sys_error(desc.path));
  if (now.st_size != file_stat.st_size || now.st_mtim.tv_sec != file_stat.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != file_stat.st_mtim.tv_nsec)
    throw Error(ErrorCode::IO, desc.path + ": changed since it was loaded");
}

std::optional<FileRange> Model::Impl::stored_range(const onnx::TensorProto& t) const {
  if (is_external(t)) {
    ExternalRef ref;
    const int64_t length = external_length(t, &ref);
    return FileRange{join_path(dir, ref.location), ref.offset, length};
  }
  const auto it = deferred.find(t.name());
  if (it == deferred.end()) return std::nullopt;
  return FileRange{desc.path, it->second.first, it->second.second};
}

int64_t Model::Impl::external_length(const onnx::TensorProto& t, ExternalRef* ref) const {
  *ref = external_ref(t);
  return ref->length >= 0 ? ref->length : tensor_bytes(t);
}

void Model::Impl::check_external_data() {
  std::unordered_map<std::string, int64_t> sizes;
  for (const auto& t : model.graph().initializer()) {
    if (!is_external(t)) continue;
    ExternalRef ref;
    const int64_t length = external_length(t, &ref);
    const std::string file = join_path(dir, ref.location);
    auto it = sizes.find(file);
    if (it == sizes.end()) {
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0)
        throw Error(ErrorCode::IO, file + ": external data of tensor '" + t.name() + "': " + std::strerror(errno));
      it = sizes.emplace(file, static_cast<int64_t>(st.st_size)).first;
      desc.data_files.push_back(file);
    }
    if (ref.offset < 0 || length < 0 || ref.offset + length > it->second)
      throw Error(ErrorCode::INVALID_MODEL, file + ": tensor '" + t.name() + "' at offset " +
                                                std::to_string(ref.offset) + " length " + std::to_string(length) +
                                                " exceeds the file (" + std::to_string(it->second) + " bytes)");
  }
  std::sort(desc.data_files.begin(), desc.data_files.end());
}

void Model::Impl::make_node_names_unique() {
  auto* nodes = model.mutable_graph()->mutable_node();
  std::unordered_set<std::string> taken;
  for (const auto& n : *nodes)
    if (!n.name().empty()) taken.insert(n.name());
  std::unordered_set<std::string> used;
  for (int i = 0; i < nodes->size(); ++i) {
    auto& n = (*nodes)[i];
    if (!n.name().empty() && used.insert(n.name()).second) continue;
    std::string name = n.op_type() + "_" + std::to_string(i);
    for (int k = 1; taken.count(name) || used.count(name); ++k)
      name = n.op_type() + "_" + std::to_string(i) + "_" + std::to_string(k);
    n.set_name(name);
    used.insert(name);
    taken.insert(name);
  }
}

void Model::Impl::describe() {
  const auto& g = model.graph();
  desc.ir_version = model.ir_version();
  desc.producer_name = model.producer_name();
  for (const auto& o : model.opset_import()) desc.opsets[normalize_domain(o.domain())] = o.version();
  desc.function_count = model.functions_size();

  for (const auto& t : g.initializer()) {
    initializers[t.name()] = &t;
    WeightDesc w;
    w.name = t.name();
    w.dtype = static_cast<DType>(t.data_type());
    w.shape.assign(t.dims().begin(), t.dims().end());
    w.bytes = tensor_bytes(t);
    w.external = is_external(t);
    desc.external_data = desc.external_data || w.external;
    desc.weights[w.name] = w;
  }
  for (const auto& s : g.sparse_initializer()) {
    sparse_initializers[s.values().name()] = &s;
    WeightDesc w;
    w.name = s.values().name();
    w.dtype = static_cast<DType>(s.values().data_type());
    w.shape.assign(s.dims().begin(), s.dims().end());
    w.bytes = tensor_bytes(s.values()) + tensor_bytes(s.indices());
    w.sparse = true;
    desc.weights[w.name] = w;
  }
  for (const auto& v : g.input())
    if (!desc.weights.count(v.name())) desc.inputs.push_back(value_desc(v));
  for (const auto& v : g.output()) desc.outputs.push_back(value_desc(v));
  for (const auto& v : g.value_info()) desc.value_infos[v.name()] = value_desc(v);

  desc.nodes.reserve(g.node_size());
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    NodeDesc nd;
    nd.name = n.name();
    nd.op_type = n.op_type();
    nd.domain = normalize_domain(n.domain());
    nd.inputs.assign(n.input().begin(), n.input().end());
    nd.outputs.assign(n.output().begin(), n.output().end());
    std::set<std::string> implicit;
    for (const auto& a : n.attribute()) {
      switch (a.type()) {
        case onnx::AttributeProto::INT:
          nd.ints[a.name()] = {a.i()};
          break;
        case onnx::AttributeProto::INTS:
          nd.ints[a.name()].assign(a.ints().begin(), a.ints().end());
          break;
        case onnx::AttributeProto::FLOAT:
          nd.floats[a.name()] = {a.f()};
          break;
        case onnx::AttributeProto::FLOATS:
          nd.floats[a.name()].assign(a.floats().begin(), a.floats().end());
          break;
        case onnx::AttributeProto::STRING:
          nd.strings[a.name()] = a.s();
          break;
        case onnx::AttributeProto::GRAPH:
          nd.has_subgraph = true;
          subgraph_free_names(a.g(), &implicit);
          break;
        case onnx::AttributeProto::GRAPHS:
          nd.has_subgraph = true;
          for (const auto& sg : a.graphs()) subgraph_free_names(sg, &implicit);
          break;
        default:
          break;
      }
    }
    nd.implicit_inputs.assign(implicit.begin(), implicit.end());

    if (n.op_type() == "Constant" && nd.domain.empty() && n.input_size() == 0 && n.output_size() == 1 &&
        !n.output(0).empty() && n.attribute_size() == 1) {
      const auto& a = n.attribute(0);
      WeightDesc w;
      w.name = n.output(0);
      w.constant_node = i;
      const std::string& an = a.name();
      if (an == "value") {
        w.dtype = static_cast<DType>(a.t().data_type());
        w.shape.assign(a.t().dims().begin(), a.t().dims().end());
        w.bytes = tensor_bytes(a.t());
        w.external = is_external(a.t());
        desc.external_data = desc.external_data || w.external;
      } else if (an == "sparse_value") {
        w.dtype = static_cast<DType>(a.sparse_tensor().values().data_type());
        w.shape.assign(a.sparse_tensor().dims().begin(), a.sparse_tensor().dims().end());
        w.bytes = tensor_bytes(a.sparse_tensor().values()) + tensor_bytes(a.sparse_tensor().indices());
        w.sparse = true;
      } else if (an == "value_float" || an == "value_floats") {
        w.dtype = DType::FLOAT;
        if (an == "value_floats") w.shape = {a.floats_size()};
        w.bytes = int64_t{4} * std::max(1, a.floats_size());
      } else if (an == "value_int" || an == "value_ints") {
        w.dtype = DType::INT64;
        if (an == "value_ints") w.shape = {a.ints_size()};
        w.bytes = int64_t{8} * std::max(1, a.ints_size());
      } else if (an == "value_string" || an == "value_strings") {
        w.dtype = DType::STRING;
        if (an == "value_strings") {
          w.shape = {a.strings_size()};
          for (const auto& s : a.strings()) w.bytes += static_cast<int64_t>(s.size());
        } else {
          w.bytes = static_cast<int64_t>(a.s().size());
        }
      } else {
        w.constant_node = -2;  // unknown attribute (newer onnx): treat the node as an ordinary compute node
      }
      if (w.constant_node >= 0) desc.weights[w.name] = w;
    }
    desc.nodes.push_back(std::move(nd));
  }
}

Model Model::load(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(path));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw Error(ErrorCode::IO, sys_error(path));
  if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::IO, path + ": is a directory");
  if (st.st_size > INT_MAX)
    throw Error(ErrorCode::INVALID_MODEL, path +
                                              ": over protobuf's 2 GB limit (models this large keep their weights "
                                              "in external data files)");

  auto impl = std::make_unique<Impl>();
  {
    pbio::FileInputStream stream(fd.fd, 1 << 20);
    pbio::CodedInputStream in(&stream);
    in.SetTotalBytesLimit(INT_MAX);
    const bool parsed = parse_model(in, &impl->model, &impl->deferred);
    if (stream.GetErrno() != 0) {
      errno = stream.GetErrno();
      throw Error(ErrorCode::IO, sys_error(path));
    }
    if (!parsed)
      throw Error(ErrorCode::INVALID_MODEL, path + ": not an ONNX model or truncated (protobuf parse failed after " +
                                                std::to_string(in.CurrentPosition()) + " of " +
                                                std::to_string(st.st_size) + " bytes)");
  }
  const auto& m = impl->model;
  if (!m.has_graph() || m.ir_version() <= 0 || (m.ir_version() >= 3 && m.opset_import_size() == 0))
    throw Error(ErrorCode::INVALID_MODEL, path + ": not an ONNX model or truncated (" +
                                              (!m.has_graph()        ? std::string("no graph")
                                               : m.ir_version() <= 0 ? std::string("no ir_version")
                                                                     : std::string("no opset_import")) +
                                              ")");
  impl->dir = dir_of(path);
  impl->desc.path = path;
  impl->desc.file_bytes = static_cast<int64_t>(st.st_size);
  impl->file_stat = st;
  impl->make_node_names_unique();
  impl->describe();
  impl->check_external_data();
  return Model(std::move(impl));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const GraphDesc& Model::graph() const { return impl_->desc; }

std::map<std::string, ValueDesc> Model::infer_shapes(const std::map<std::string, int64_t>& dims, bool* complete) const {
  const auto& src = impl_->model;
  const auto& sg = src.graph();
  std::map<std::string, ValueDesc> result;

  // A weightless copy: shape inference needs dims and types, and the data of small tensors only (Reshape shapes...).
  const auto make_copy = [&]() {
    onnx::ModelProto m = model_header(src);
    auto* g = m.mutable_graph();
    g->set_name(sg.name());
    *g->mutable_input() = sg.input();
    *g->mutable_output() = sg.output();
    *g->mutable_value_info() = sg.value_info();
    const auto add_initializer = [g](const onnx::TensorProto& t, const std::string& name) {
      auto* c = g->add_initializer();
      if (is_external(t) || t.ByteSizeLong() > kSmallTensorBytes) {  // type and dims only
        c->set_data_type(t.data_type());
        *c->mutable_dims() = t.dims();
      } else {
        *c = t;  // small, or with its large raw_data left on disk: no weight bytes either way
      }
      c->set_name(name);
    };
    for (const auto& t : sg.initializer()) add_initializer(t, t.name());
    // onnx 1.12 ignores sparse initializers and reads only `value` Constants as data (Reshape shapes): give it every
    // weight as a dense initializer.
    for (const auto& s : sg.sparse_initializer()) {
      onnx::TensorProto t;
      t.set_data_type(s.values().data_type());
      *t.mutable_dims() = s.dims();
      add_initializer(t, s.values().name());
    }
    for (const int i : topological_order(impl_->desc)) {
      const auto& n = sg.node(i);
      const auto w = impl_->desc.weights.find(n.output_size() == 1 ? n.output(0) : std::string());
      if (w == impl_->desc.weights.end() || w->second.constant_node != i) {
        *g->add_node() = n;
        continue;
      }
      const auto& a = n.attribute(0);
      onnx::TensorProto t;
      if (a.has_t())
        t = a.t();
      else if (a.has_sparse_tensor()) {
        t.set_data_type(a.sparse_tensor().values().data_type());
        *t.mutable_dims() = a.sparse_tensor().dims();
      } else {
        t.set_data_type(static_cast<int32_t>(w->second.dtype));
        for (const int64_t d : w->second.shape) t.add_dims(d);
        if (a.type() == onnx::AttributeProto::FLOAT) t.add_float_data(a.f());
        for (const float f : a.floats()) t.add_float_data(f);
        if (a.type() == onnx::AttributeProto::INT) t.add_int64_data(a.i());
        for (const int64_t v : a.ints()) t.add_int64_data(v);
        if (a.type() == onnx::AttributeProto::STRING) t.add_string_data(a.s());
        for (const auto& v : a.strings()) t.add_string_data(v);
      }
      add_initializer(t, n.output(0));
    }
    if (dims.empty()) return m;
    const auto fix = [&](onnx::ValueInfoProto& v, bool unknown_to_one) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
      for (auto& d : *v.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim()) {
        if (d.has_dim_value()) continue;
        const auto it = d.has_dim_param() ? dims.find(d.dim_param()) : dims.end();
        if (it != dims.end())
          d.set_dim_value(it->second);
        else if (unknown_to_one)
          d.set_dim_value(1);
      }
    };
    for (auto& v : *g->mutable_input())
      if (!impl_->desc.weights.count(v.name())) fix(v, true);
    for (auto& v : *g->mutable_output()) fix(v, false);
    for (auto& v : *g->mutable_value_info()) fix(v, false);
    return m;
  };

  // Data propagation infers more (Shape -> Concat -> Reshape) but is the newest part of onnx 1.12: retry without it.
  onnx::ModelProto inferred;
  bool ok = false;
  for (const bool propagate : {true, false}) {
    inferred = make_copy();
    try {
      onnx::ShapeInferenceOptions options(false, 0, propagate);
      onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), options);
      ok = true;
      break;
    } catch (const std::exception&) {
      // newer opsets or unsupported constructs: fall back to what is declared
    }
  }
  if (!ok) inferred = make_copy();

  const auto add = [&](const onnx::ValueInfoProto& vi) {
    if (vi.has_type() && !vi.type().has_tensor_type()) impl_->non_tensor_types[vi.name()] = vi.type();
    ValueDesc v = value_desc(vi);
    if (v.dtype == DType::UNDEFINED) return;
    auto it = result.find(v.name);
    if (it != result.end() && (it->second.has_shape || !v.has_shape)) return;  // keep the one with a shape
    result[v.name] = std::move(v);
  };
  for (const auto& v : inferred.graph().input()) add(v);
  for (const auto& v : inferred.graph().output()) add(v);
  for (const auto& v : inferred.graph().value_info()) add(v);
  for (const auto& [name, w] : impl_->desc.weights) {
    ValueDesc v;
    v.name = name;
    v.dtype = w.dtype;
    v.has_shape = true;
    for (const int64_t d : w.shape) v.dims.push_back(Dim{d, ""});
    result[name] = std::move(v);
  }
  for (auto& [name, v] : result) {
    const int64_t size = static_cast<int64_t>(dtype_size(v.dtype));
    if (!v.has_shape || size == 0) continue;
    int64_t count = 1;
    for (const Dim& d : v.dims) count = d.value >= 0 ? count * d.value : -1;
    v.bytes = count >= 0 ? count * size : -1;
  }

  if (complete) {
    *complete = true;
    for (const auto& n : impl_->desc.nodes) {
      for (const auto& o : n.outputs) {
        if (o.empty()) continue;
        const auto it = result.find(o);
        bool known = it != result.end() && it->second.dtype != DType::UNDEFINED;
        if (known && !dims.empty()) {
          known = it->second.has_shape;
          for (const Dim& d : it->second.dims) known = known && d.value >= 0;
        }
        if (!known) *complete = false;
      }
    }
  }
  return result;
}

namespace {

// Whether ConstantOfShape (ai.onnx >= 9) can make zeros of this dtype at `opset`: bfloat16 from opset 20; strings
// and the 8- and 4-bit types stay real.
bool zeros_op_supports(int32_t data_type, int64_t opset) {
  if (opset < 9) return false;
  switch (data_type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::BOOL:
      return true;
    case onnx::TensorProto::BFLOAT16:
      return opset >= 20;
    default:
      return false;
  }
}

// `weight` as a ConstantOfShape node fed by a small int64 initializer holding its dims (both named after it).
void add_zeros_maker(const onnx::TensorProto& weight, std::deque<onnx::NodeProto>& nodes,
                     std::deque<onnx::TensorProto>& shapes) {
  onnx::TensorProto& shape = shapes.emplace_back();
  shape.set_name("onnxpipe_zeros_shape/" + weight.name());
  shape.set_data_type(onnx::TensorProto::INT64);
  shape.add_dims(weight.dims_size());
  for (const int64_t d : weight.dims()) shape.add_int64_data(d);

  onnx::NodeProto& node = nodes.emplace_back();
  node.set_name("onnxpipe_zeros/" + weight.name());
  node.set_op_type("ConstantOfShape");
  node.add_input(shape.name());
  node.add_output(weight.name());
  onnx::AttributeProto* value = node.add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto* zero = value->mutable_t();
  zero->set_data_type(weight.data_type());
  zero->add_dims(1);
  zero->set_raw_data(std::string(dtype_size(static_cast<DType>(weight.data_type())), '\0'));
}

}  // namespace

std::string Model::serialize(const std::vector<std::string>& extra_outputs, Weights weights) const {
  const auto& src = impl_->model;
  const auto& sg = src.graph();
  ModelWriter w;
  w.header = model_header(src);
  w.graph.set_name(sg.name());
  if (sg.has_doc_string()) w.graph.set_doc_string(sg.doc_string());

  // Which weights become zeros makers: the large ones (the small ones, shapes and indices among them, stay real).
  std::unordered_set<std::string> zeroed;
  if (weights == Weights::ZEROS) {
    const auto opset = impl_->desc.opsets.find("");
    for (const auto& t : sg.initializer())
      if (tensor_bytes(t) > static_cast<int64_t>(kSmallTensorBytes) && opset != impl_->desc.opsets.end() &&
          zeros_op_supports(t.data_type(), opset->second))
        zeroed.insert(t.name());
  }
  std::deque<onnx::NodeProto> zeros_makers;
  std::deque<onnx::TensorProto> zeros_shapes;

  // IR < 4 lists initializers among the inputs too: a zeroed one is a node output now, not an input.
  for (const auto& input : sg.input())
    if (!zeroed.count(input.name())) *w.graph.add_input() = input;
  *w.graph.mutable_output() = sg.output();
  *w.graph.mutable_value_info() = sg.value_info();
  *w.graph.mutable_quantization_annotation() = sg.quantization_annotation();
  std::unordered_set<std::string> outputs;
  for (const auto& o : sg.output()) outputs.insert(o.name());
  // ONNX Runtime accepts graph outputs declared by name only: it takes their type from the producing node.
  for (const auto& name : extra_outputs)
    if (outputs.insert(name).second) w.graph.add_output()->set_name(name);
  impl_->check_unchanged();
  for (const auto& t : sg.initializer()) {
    if (zeroed.count(t.name())) {
      add_zeros_maker(t, zeros_makers, zeros_shapes);
      w.initializers.push_back({&zeros_shapes.back(), std::nullopt});
      continue;
    }
    const auto it = impl_->deferred.find(t.name());
    w.initializers.push_back(
        {&t, it == impl_->deferred.end() || is_external(t)
                 ? std::nullopt
                 : std::optional<FileRange>(FileRange{impl_->desc.path, it->second.first, it->second.second})});
  }
  // The zeros makers come first: ORT orders execution by a depth-first walk back from the outputs that visits the
  // producers of a node's inputs by decreasing node index, so a low-index maker runs right before its first reader
  // instead of at the start (where every zeroed weight would be alive at once).
  for (const auto& n : zeros_makers) w.nodes.push_back(&n);
  for (const auto& n : sg.node()) w.nodes.push_back(&n);
  for (const auto& s : sg.sparse_initializer()) w.sparse_initializers.push_back(&s);

  const size_t size = w.byte_size();
  StringSink out(size);
  w.write(out);
  std::string bytes = out.take();
  if (bytes.size() != size)
    throw Error(ErrorCode::INTERNAL, impl_->desc.path + ": serialized size differs from the computed one");
  return bytes;
}

int64_t Model::write_piece(const PieceSpec& spec, const std::string& onnx_path) const {
  const auto& src = impl_->model;
  const auto& sg = src.graph();
  const int node_count = sg.node_size();
  ModelWriter w;
  w.header = model_header(src);
  w.graph.set_name(sg.name() + "_piece");
  // A value without a tensor dtype is a sequence, optional or map that shape inference typed: copy that type.
  const auto declare = [&](const ValueDesc& v) {
    if (v.dtype != DType::UNDEFINED) return value_info(v);
    const auto it = impl_->non_tensor_types.find(v.name);
    if (it == impl_->non_tensor_types.end())
      throw Error(ErrorCode::INVALID_MODEL, "value '" + v.name + "' crosses pieces but its type is unknown");
    onnx::ValueInfoProto info;
    info.set_name(v.name);
    *info.mutable_type() = it->second;
    return info;
  };
  for (const auto& v : spec.inputs) *w.graph.add_input() = declare(v);
  for (const auto& v : spec.outputs) *w.graph.add_output() = declare(v);

  std::unordered_set<std::string> produced, declared;
  for (const int i : spec.nodes) {
    if (i < 0 || i >= node_count)
      throw Error(ErrorCode::INTERNAL, onnx_path + ": piece node index " + std::to_string(i) + " out of range");
    w.nodes.push_back(&sg.node(i));
    for (const auto& o : sg.node(i).output()) produced.insert(o);
  }
  for (const auto& v : spec.inputs) declared.insert(v.name);
  for (const auto& v : spec.outputs) declared.insert(v.name);
  for (const auto& v : sg.value_info())
    if (produced.count(v.name()) && !declared.count(v.name())) *w.graph.add_value_info() = v;

  impl_->check_unchanged();
  std::optional<FileSink> data;
  if (!spec.data_file.empty()) data.emplace(join_path(dir_of(onnx_path), spec.data_file));
  std::deque<onnx::TensorProto> owned;  // metadata of tensors whose data is written apart from the source message
  int64_t written = 0;
  for (const auto& name : spec.weights) {
    const auto& weights = impl_->desc.weights;
    const auto wit = weights.find(name);
    if (wit != weights.end() && wit->second.constant_node >= 0) continue;  // comes with its Constant node
    if (const auto sit = impl_->sparse_initializers.find(name); sit != impl_->sparse_initializers.end()) {
      w.sparse_initializers.push_back(sit->second);
      written += wit->second.bytes;
      continue;
    }
    const auto it = impl_->initializers.find(name);
    if (it == impl_->initializers.end())
      throw Error(ErrorCode::INTERNAL, onnx_path + ": piece weight '" + name + "' is not an initializer of the model");
    const onnx::TensorProto& t = *it->second;
    const std::optional<FileRange> stored = impl_->stored_range(t);
    if (t.data_type() == onnx::TensorProto::STRING || (!data && !stored)) {
      w.initializers.push_back({&t, std::nullopt});  // borrowed, no copy
      written += tensor_bytes(t);
      continue;
    }
    onnx::TensorProto& meta = owned.emplace_back();
    meta.set_name(t.name());
    meta.set_data_type(t.data_type());
    *meta.mutable_dims() = t.dims();
    if (t.has_doc_string()) meta.set_doc_string(t.doc_string());
    if (!data) {  // embedded from disk
      w.initializers.push_back({&meta, stored});
      written += stored->length;
      continue;
    }
    if (stored) {
      begin_external(*data, spec.data_file, stored->length, &meta);
      data->range(*stored);
      written += stored->length;
    } else if (t.has_raw_data()) {
      begin_external(*data, spec.data_file, static_cast<int64_t>(t.raw_data().size()), &meta);
      data->bytes(t.raw_data().data(), t.raw_data().size());
      written += static_cast<int64_t>(t.raw_data().size());
    } else {
      std::string raw;
      append_typed_data(t, &raw);
      begin_external(*data, spec.data_file, static_cast<int64_t>(raw.size()), &meta);
      data->bytes(raw.data(), raw.size());
      written += static_cast<int64_t>(raw.size());
    }
    w.initializers.push_back({&meta, std::nullopt});
  }
  // A node whose attributes hold external tensors is copied with their data moved to this piece's data file, or
  // into the node when the piece has none: the source's locations do not resolve beside the piece.
  std::deque<onnx::NodeProto> owned_nodes;
  for (auto& node : w.nodes) {
    if (!node_has_external_tensor(*node)) continue;
    onnx::NodeProto& copy = owned_nodes.emplace_back(*node);
    for_each_attribute_tensor(&copy, [&](onnx::TensorProto* t) {
      if (!is_external(*t)) return;
      const FileRange stored = *impl_->stored_range(*t);
      if (data) {
        begin_external(*data, spec.data_file, stored.length, t);
        data->range(stored);
        return;
      }
      std::string raw(static_cast<size_t>(stored.length), '\0');
      read_range(stored, raw.data());
      t->clear_external_data();
      t->clear_data_location();
      t->set_raw_data(std::move(raw));
    });
    node = &copy;
  }
  if (data) data->close();

  // IR < 4 requires every initializer to be a graph input too.
  if (src.ir_version() < 4) {
    for (const auto& entry : w.initializers) {
      const onnx::TensorProto* t = entry.meta;
      ValueDesc v;
      v.name = t->name();
      v.dtype = static_cast<DType>(t->data_type());
      v.has_shape = true;
      for (const int64_t d : t->dims()) v.dims.push_back(Dim{d, ""});
      *w.graph.add_input() = value_info(v);
    }
  }
  w.byte_size();
  FileSink out(onnx_path);
  w.write(out);
  out.close();
  return written;
}

bool Model::check_file(const std::string& onnx_path) {
  // Reads the header fields and the graph's inputs and outputs only (nodes and weights are skipped) to decide whether
  // onnx 1.12 can check the model.
  onnx::ModelProto header;
  {
    Fd fd(::open(onnx_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(onnx_path));
    pbio::FileInputStream stream(fd.fd, 1 << 20);
    pbio::CodedInputStream in(&stream);
    in.SetTotalBytesLimit(INT_MAX);
    const auto fail = [&] { throw Error(ErrorCode::INVALID_MODEL, onnx_path + ": not an ONNX model or truncated"); };
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(tag);
      bool ok = true;
      if (field == onnx::ModelProto::kIrVersionFieldNumber) {
        uint64_t v = 0;
        ok = in.ReadVarint64(&v);
        header.set_ir_version(static_cast<int64_t>(v));
      } else if (field == onnx::ModelProto::kOpsetImportFieldNumber) {
        ok = WireFormatLite::ReadMessage(&in, header.add_opset_import());
      } else if (field == onnx::ModelProto::kFunctionsFieldNumber) {
        ok = WireFormatLite::ReadMessage(&in, header.add_functions());
      } else if (field == onnx::ModelProto::kGraphFieldNumber) {
        uint32_t length = 0;
        if (!in.ReadVarint32(&length)) fail();
        const auto limit = in.PushLimit(static_cast<int>(length));
        auto* g = header.mutable_graph();
        for (uint32_t gtag = in.ReadTag(); gtag != 0 && ok; gtag = in.ReadTag()) {
          const int gfield = WireFormatLite::GetTagFieldNumber(gtag);
          if (gfield == onnx::GraphProto::kInputFieldNumber)
            ok = WireFormatLite::ReadMessage(&in, g->add_input());
          else if (gfield == onnx::GraphProto::kOutputFieldNumber)
            ok = WireFormatLite::ReadMessage(&in, g->add_output());
          else
            ok = WireFormatLite::SkipField(&in, gtag);
        }
        ok = ok && in.ConsumedEntireMessage();
        in.PopLimit(limit);
      } else {
        ok = WireFormatLite::SkipField(&in, tag);
      }
      if (!ok) fail();
    }
  }
  if (header.ir_version() > onnx::IR_VERSION || !opsets_known(header.opset_import())) return false;
  for (const auto& f : header.functions())
    if (!opsets_known(f.opset_import())) return false;

  // onnx 1.12's checker demands a shape on every main-graph input and output, while the IR lets a value of unknown
  // rank go without one (pieces declare such crossing values that way). Such a model is checked through a copy, in
  // the same folder so that external data resolves, where those values carry an empty (never checked) shape.
  const auto shapeless = [](const onnx::ValueInfoProto& v) {
    return v.type().has_tensor_type() && !v.type().tensor_type().has_shape();
  };
  const auto& hg = header.graph();
  const bool needs_copy = std::any_of(hg.input().begin(), hg.input().end(), shapeless) ||
                          std::any_of(hg.output().begin(), hg.output().end(), shapeless);
  std::string checked = onnx_path;
  if (needs_copy) {
    onnx::ModelProto full;
    {
      Fd fd(::open(onnx_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(onnx_path));
      pbio::FileInputStream stream(fd.fd, 1 << 20);
      pbio::CodedInputStream in(&stream);
      in.SetTotalBytesLimit(INT_MAX);
      if (!full.ParseFromCodedStream(&in))
        throw Error(ErrorCode::INVALID_MODEL, onnx_path + ": not an ONNX model or truncated");
    }
    for (auto* values : {full.mutable_graph()->mutable_input(), full.mutable_graph()->mutable_output()})
      for (auto& v : *values)
        if (shapeless(v)) v.mutable_type()->mutable_tensor_type()->mutable_shape();
    checked = dir_of(onnx_path) + "/.onnxpipe_check_XXXXXX";
    const int fd = ::mkstemp(checked.data());
    if (fd < 0) throw Error(ErrorCode::IO, sys_error(checked));
    ::close(fd);
    std::ofstream out(checked, std::ios::binary | std::ios::trunc);
    if (!full.SerializeToOstream(&out) || !out.flush()) {
      std::remove(checked.c_str());
      throw Error(ErrorCode::IO, sys_error(checked));
    }
  }
  std::optional<std::string> failure;
  try {
    onnx::checker::check_model(checked);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (needs_copy) std::remove(checked.c_str());
  if (failure) throw Error(ErrorCode::INVALID_MODEL, onnx_path + ": onnx checker: " + *failure);
  return true;
}

namespace {

// One SHA-256 over the bytes of `paths`, one after the other, read in 1 MiB chunks.
std::string sha256_of(const std::vector<std::string>& paths) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ErrorCode::INTERNAL, "sha256: OpenSSL init failed");
  std::vector<char> buffer(1 << 20);
  for (const auto& path : paths) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(path));
    ::posix_fadvise(fd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
      const ssize_t n = ::read(fd.fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(ErrorCode::IO, sys_error(path));
      if (n == 0) break;
      EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &size);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string sha256_file(const std::string& path) { return sha256_of({path}); }

std::string sha256_model(const GraphDesc& graph) {
  std::vector<std::string> paths = {graph.path};
  paths.insert(paths.end(), graph.data_files.begin(), graph.data_files.end());
  return sha256_of(paths);
}

}  // namespace detail

Tensor read_tensor_pb(const std::string& path) {
  detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(ErrorCode::IO, detail::sys_error(path));
  onnx::TensorProto proto;
  {
    detail::pbio::FileInputStream stream(fd.fd, 1 << 20);
    detail::pbio::CodedInputStream in(&stream);
    in.SetTotalBytesLimit(INT_MAX);
    if (!proto.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      throw Error(ErrorCode::INVALID_MODEL, path + ": not a serialized onnx TensorProto or truncated");
  }
  try {
    return detail::to_tensor(proto);
  } catch (const Error& e) {
    throw e.with_context(path);
  }
}

}  // namespace onnxpipe
