#include "piece_writer.h"

#include <deque>
#include <optional>
#include <unordered_set>

#include "onnx_proto.h"
#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

// A piece being assembled: the writer, the messages it owns (the rest is borrowed from the source), and the data
// file its weights stream to, if it has one.
struct PieceBuild {
  const Model::Impl& model;
  const PieceSpec& spec;
  const std::string& onnx_path;
  ModelWriter writer;
  std::optional<FileSink> data;
  std::deque<onnx::TensorProto> owned_tensors;  // metadata of tensors whose data is written apart from the source
  std::deque<onnx::NodeProto> owned_nodes;      // nodes whose attribute tensors moved
  int64_t written = 0;                          // weight bytes
};

// A value without a tensor dtype is a sequence, optional or map that shape inference typed: its type is copied.
onnx::ValueInfoProto declaration(const Model::Impl& model, const ValueDesc& v) {
  if (v.dtype != DType::UNDEFINED) return value_info(v);
  const auto it = model.non_tensor_types.find(v.name);
  if (it == model.non_tensor_types.end())
    throw Error(ErrorCode::INVALID_MODEL, "value '" + v.name + "' crosses pieces but its type is unknown");
  onnx::ValueInfoProto info;
  info.set_name(v.name);
  *info.mutable_type() = it->second;
  return info;
}

// Inputs and outputs as the spec gives them, the nodes, and the source's value_info of the values the nodes produce.
void add_graph(PieceBuild& b) {
  const auto& sg = b.model.model.graph();
  auto& graph = b.writer.graph;
  for (const auto& v : b.spec.inputs) *graph.add_input() = declaration(b.model, v);
  for (const auto& v : b.spec.outputs) *graph.add_output() = declaration(b.model, v);
  std::unordered_set<std::string> produced, declared;
  for (const int i : b.spec.nodes) {
    if (i < 0 || i >= sg.node_size())
      throw Error(ErrorCode::INTERNAL, b.onnx_path + ": piece node index " + std::to_string(i) + " out of range");
    b.writer.nodes.push_back(&sg.node(i));
    for (const auto& o : sg.node(i).output()) produced.insert(o);
  }
  for (const auto& v : b.spec.inputs) declared.insert(v.name);
  for (const auto& v : b.spec.outputs) declared.insert(v.name);
  for (const auto& v : sg.value_info())
    if (produced.count(v.name()) && !declared.count(v.name())) *graph.add_value_info() = v;
}

// Streams `length` bytes into the data file as an external tensor described by `meta`; `copy` writes them.
template <typename Copy>
void stream_external(PieceBuild& b, int64_t length, onnx::TensorProto* meta, const Copy& copy) {
  begin_external(*b.data, b.spec.data_file, length, meta);
  copy(*b.data);
  b.written += length;
}

// The link beside the piece of the source data file holding `stored`, if that file is linked.
const std::string* linked_file(const PieceBuild& b, const std::optional<FileRange>& stored) {
  if (!stored) return nullptr;
  const auto it = b.spec.linked_data.find(stored->path);
  return it == b.spec.linked_data.end() ? nullptr : &it->second;
}

// A dense initializer: borrowed when its bytes are in memory and stay in the .onnx (small ones always: ORT's shape
// inference reads shapes and split sizes only from data inside the model); else its metadata is copied and it points
// into a linked data file, or its bytes are embedded from disk or streamed to the piece's data file.
void add_initializer(PieceBuild& b, const onnx::TensorProto& t) {
  const std::optional<FileRange> stored = b.model.stored_range(t);
  const std::string* link = is_external(t) ? linked_file(b, stored) : nullptr;
  const bool small = !stored && tensor_bytes(t) <= static_cast<int64_t>(kSmallTensorBytes);
  if (t.data_type() == onnx::TensorProto::STRING || (!stored && (!b.data || small))) {
    b.writer.initializers.push_back({&t, std::nullopt});  // borrowed, no copy
    b.written += tensor_bytes(t);
    return;
  }
  onnx::TensorProto& meta = b.owned_tensors.emplace_back();
  meta.set_name(t.name());
  meta.set_data_type(t.data_type());
  *meta.mutable_dims() = t.dims();
  if (t.has_doc_string()) meta.set_doc_string(t.doc_string());
  if (link) {  // no byte copied
    set_external(*link, stored->offset, stored->length, &meta);
    b.writer.initializers.push_back({&meta, std::nullopt});
    b.written += stored->length;
    return;
  }
  if (!b.data) {  // embedded from disk
    b.writer.initializers.push_back({&meta, stored});
    b.written += stored->length;
    return;
  }
  if (stored) {
    stream_external(b, stored->length, &meta, [&](FileSink& data) { data.range(*stored); });
  } else if (t.has_raw_data()) {
    stream_external(b, static_cast<int64_t>(t.raw_data().size()), &meta,
                    [&](FileSink& data) { data.bytes(t.raw_data().data(), t.raw_data().size()); });
  } else {
    std::string raw;
    append_typed_data(t, &raw);
    stream_external(b, static_cast<int64_t>(raw.size()), &meta,
                    [&](FileSink& data) { data.bytes(raw.data(), raw.size()); });
  }
  b.writer.initializers.push_back({&meta, std::nullopt});
}

void add_weights(PieceBuild& b) {
  const auto& weights = b.model.desc.weights;
  for (const auto& name : b.spec.weights) {
    const auto wit = weights.find(name);
    if (wit != weights.end() && wit->second.constant_node >= 0) continue;  // comes with its Constant node
    if (const auto sit = b.model.sparse_initializers.find(name); sit != b.model.sparse_initializers.end()) {
      b.writer.sparse_initializers.push_back(sit->second);
      b.written += wit->second.bytes;
      continue;
    }
    const auto it = b.model.initializers.find(name);
    if (it == b.model.initializers.end())
      throw Error(ErrorCode::INTERNAL,
                  b.onnx_path + ": piece weight '" + name + "' is not an initializer of the model");
    add_initializer(b, *it->second);
  }
}

// A node whose attributes hold external tensors is copied with their data pointing into a linked data file, or moved
// to this piece's data file, or into the node when the piece has none: the source's locations do not resolve beside
// the piece.
void relocate_attribute_tensors(PieceBuild& b) {
  for (auto& node : b.writer.nodes) {
    if (!node_has_external_tensor(*node)) continue;
    onnx::NodeProto& copy = b.owned_nodes.emplace_back(*node);
    for_each_attribute_tensor(&copy, [&](onnx::TensorProto* t) {
      if (!is_external(*t)) return;
      const FileRange stored = *b.model.stored_range(*t);
      if (const std::string* link = linked_file(b, stored)) {
        set_external(*link, stored.offset, stored.length, t);
        return;
      }
      if (b.data) {
        begin_external(*b.data, b.spec.data_file, stored.length, t);
        b.data->range(stored);
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
}

// IR < 4 requires every initializer to be a graph input too.
void list_initializers_as_inputs(ModelWriter& w) {
  for (const auto& entry : w.initializers) {
    const onnx::TensorProto* t = entry.meta;
    const ValueDesc v = ValueDesc::of_shape(t->name(), static_cast<DType>(t->data_type()),
                                            std::vector<int64_t>(t->dims().begin(), t->dims().end()));
    *w.graph.add_input() = value_info(v);
  }
}

}  // namespace

int64_t write_model_piece(const Model::Impl& model, const PieceSpec& spec, const std::string& onnx_path) {
  const auto& src = model.model;
  PieceBuild b{model, spec, onnx_path, {}, {}, {}, {}, 0};
  b.writer.header = model_header(src);
  b.writer.graph.set_name(src.graph().name() + "_piece");
  add_graph(b);

  model.check_unchanged();
  if (!spec.data_file.empty()) b.data.emplace(join_path(dir_of(onnx_path), spec.data_file));
  add_weights(b);
  relocate_attribute_tensors(b);
  if (b.data) b.data->close();

  if (src.ir_version() < 4) list_initializers_as_inputs(b.writer);
  b.writer.byte_size();
  FileSink out(onnx_path);
  b.writer.write(out);
  out.close();
  return b.written;
}

}  // namespace onnxpipe::detail
