// Model I/O on onnx 1.12 / protobuf 3.21: loading a model (parsed by proto_stream, described in the plain structs of
// model_io.h) and hashing it. Shape inference, serialization and piece writing are in their own files, on the
// Model::Impl of model_impl.h.
#include "model_io.h"

#include <fcntl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <set>
#include <unordered_set>

#include "model_impl.h"
#include "onnx_proto.h"
#include "onnxpipe/error.h"
#include "piece_writer.h"
#include "serialize.h"
#include "shape_inference.h"

namespace onnxpipe::detail {

void Model::Impl::check_unchanged() const {
  struct stat now {};
  if (deferred.empty()) return;
  if (::stat(desc.path.c_str(), &now) != 0) throw Error(ErrorCode::IO, sys_error(desc.path));
  if (now.st_size != file_stat.st_size || now.st_mtim.tv_sec != file_stat.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != file_stat.st_mtim.tv_nsec)
    throw Error(ErrorCode::IO, desc.path + ": changed since it was loaded");
}

std::optional<FileRange> Model::Impl::stored_range(const onnx::TensorProto& t) const {
  if (!is_external(t)) return deferred_range(t.name());
  ExternalRef ref;
  const int64_t length = external_length(t, &ref);
  return FileRange{join_path(dir, ref.location), ref.offset, length};
}

std::optional<FileRange> Model::Impl::deferred_range(const std::string& initializer) const {
  const auto it = deferred.find(initializer);
  if (it == deferred.end()) return std::nullopt;
  return FileRange{desc.path, it->second.first, it->second.second};
}

int64_t Model::Impl::external_length(const onnx::TensorProto& t, ExternalRef* ref) const {
  *ref = external_ref(t);
  return ref->length >= 0 ? ref->length : tensor_bytes(t);
}

namespace {

// Checks that every external tensor (initializers, and top-level nodes' tensor attributes: a Constant's value) lies
// inside its file, and lists the files in desc.data_files.
void check_external_data(Model::Impl* impl) {
  std::unordered_map<std::string, int64_t> sizes;
  const auto check = [&](const onnx::TensorProto& t) {
    if (!is_external(t)) return;
    ExternalRef ref;
    const int64_t length = impl->external_length(t, &ref);
    const std::string file = join_path(impl->dir, ref.location);
    auto it = sizes.find(file);
    if (it == sizes.end()) {
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0)
        throw Error(ErrorCode::IO, file + ": external data of tensor '" + t.name() + "': " + std::strerror(errno));
      it = sizes.emplace(file, static_cast<int64_t>(st.st_size)).first;
      impl->desc.data_files.push_back(file);
    }
    if (ref.offset < 0 || length < 0 || ref.offset + length > it->second)
      throw Error(ErrorCode::INVALID_MODEL, file + ": tensor '" + t.name() + "' at offset " +
                                                std::to_string(ref.offset) + " length " + std::to_string(length) +
                                                " exceeds the file (" + std::to_string(it->second) + " bytes)");
  };
  for (const auto& t : impl->model.graph().initializer()) check(t);
  for (const auto& n : impl->model.graph().node())
    for (const auto& a : n.attribute())
      if (a.has_t()) check(a.t());
  std::sort(impl->desc.data_files.begin(), impl->desc.data_files.end());
}

// Empty and repeated node names become OP_INDEX (with a suffix when that is taken).
void make_node_names_unique(onnx::GraphProto* graph) {
  auto* nodes = graph->mutable_node();
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

// Dense and sparse initializers as weights, indexed by name in impl.
void describe_initializers(Model::Impl* impl) {
  GraphDesc& desc = impl->desc;
  for (const auto& t : impl->model.graph().initializer()) {
    impl->initializers[t.name()] = &t;
    WeightDesc w;
    w.name = t.name();
    w.dtype = static_cast<DType>(t.data_type());
    w.shape.assign(t.dims().begin(), t.dims().end());
    w.bytes = tensor_bytes(t);
    w.external = is_external(t);
    desc.external_data = desc.external_data || w.external;
    desc.weights[w.name] = w;
  }
  for (const auto& s : impl->model.graph().sparse_initializer()) {
    impl->sparse_initializers[s.values().name()] = &s;
    WeightDesc w;
    w.name = s.values().name();
    w.dtype = static_cast<DType>(s.values().data_type());
    w.shape.assign(s.dims().begin(), s.dims().end());
    w.bytes = tensor_bytes(s.values()) + tensor_bytes(s.indices());
    w.sparse = true;
    desc.weights[w.name] = w;
  }
}

// A node's plain description: its attributes of plain types, and the outer names its subgraphs read.
NodeDesc describe_node(const onnx::NodeProto& n) {
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
  return nd;
}

// The weight an input-less Constant node `i` makes; nullopt for other nodes, and for a Constant whose attribute is
// unknown (newer onnx): it stays an ordinary compute node.
std::optional<WeightDesc> constant_weight(const onnx::NodeProto& n, int i) {
  if (n.op_type() != "Constant" || !normalize_domain(n.domain()).empty() || n.input_size() != 0 ||
      n.output_size() != 1 || n.output(0).empty() || n.attribute_size() != 1)
    return std::nullopt;
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
    return std::nullopt;
  }
  return w;
}

// Fills impl->desc (and the initializer indexes) from the parsed model.
void describe(Model::Impl* impl) {
  const auto& m = impl->model;
  const auto& g = m.graph();
  GraphDesc& desc = impl->desc;
  desc.ir_version = m.ir_version();
  desc.producer_name = m.producer_name();
  for (const auto& o : m.opset_import()) desc.opsets[normalize_domain(o.domain())] = o.version();
  desc.function_count = m.functions_size();

  describe_initializers(impl);
  for (const auto& v : g.input())
    if (!desc.weights.count(v.name())) desc.inputs.push_back(value_desc(v));
  for (const auto& v : g.output()) desc.outputs.push_back(value_desc(v));
  for (const auto& v : g.value_info()) desc.value_infos[v.name()] = value_desc(v);

  desc.nodes.reserve(g.node_size());
  for (int i = 0; i < g.node_size(); ++i) {
    desc.nodes.push_back(describe_node(g.node(i)));
    if (std::optional<WeightDesc> w = constant_weight(g.node(i), i)) {
      desc.external_data = desc.external_data || w->external;
      desc.weights[w->name] = *w;
    }
  }
}

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
  parse_model(fd.fd, path, static_cast<int64_t>(st.st_size), &impl->model, &impl->deferred);
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
  make_node_names_unique(impl->model.mutable_graph());
  describe(impl.get());
  check_external_data(impl.get());
  return Model(std::move(impl));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const GraphDesc& Model::graph() const { return impl_->desc; }

std::map<std::string, ValueDesc> Model::infer_shapes(const std::map<std::string, int64_t>& dims, bool* complete) const {
  return infer_value_types(*impl_, dims, complete);
}

std::string Model::serialize(const std::vector<std::string>& extra_outputs, Weights weights,
                             const std::vector<std::string>& shape_outputs,
                             const std::map<std::string, DType>& typed) const {
  return serialize_model(*impl_, extra_outputs, weights, shape_outputs, typed);
}

std::string shape_output_name(const std::string& value) { return "onnxpipe_shape/" + value; }

int64_t Model::write_piece(const PieceSpec& spec, const std::string& onnx_path) const {
  return write_model_piece(*impl_, spec, onnx_path);
}

std::string sha256_file(const std::string& path) { return sha256_of({path}); }

std::string sha256_model(const GraphDesc& graph) {
  std::vector<std::string> paths = {graph.path};
  paths.insert(paths.end(), graph.data_files.begin(), graph.data_files.end());
  return sha256_of(paths);
}

}  // namespace onnxpipe::detail
