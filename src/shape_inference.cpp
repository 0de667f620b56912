#include "shape_inference.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "graph.h"
#include "onnx_proto.h"

namespace onnxpipe::detail {

namespace {

// Adds `t` to the copy as initializer `name` without weight bytes: type and dims only when it is large or external
// (shape inference needs the data of small tensors only, Reshape shapes and the like).
void add_weightless_initializer(onnx::GraphProto* g, const onnx::TensorProto& t, const std::string& name) {
  auto* c = g->add_initializer();
  if (is_external(t) || t.ByteSizeLong() > kSmallTensorBytes) {
    c->set_data_type(t.data_type());
    *c->mutable_dims() = t.dims();
  } else {
    *c = t;  // small, or with its large raw_data left on disk: no weight bytes either way
  }
  c->set_name(name);
}

// The value of a Constant node that makes weight `w`, as a dense tensor (sparse ones: type and dims only).
onnx::TensorProto constant_value(const onnx::NodeProto& n, const WeightDesc& w) {
  const auto& a = n.attribute(0);
  onnx::TensorProto t;
  if (a.has_t()) return a.t();
  if (a.has_sparse_tensor()) {
    t.set_data_type(a.sparse_tensor().values().data_type());
    *t.mutable_dims() = a.sparse_tensor().dims();
    return t;
  }
  t.set_data_type(static_cast<int32_t>(w.dtype));
  for (const int64_t d : w.shape) t.add_dims(d);
  if (a.type() == onnx::AttributeProto::FLOAT) t.add_float_data(a.f());
  for (const float f : a.floats()) t.add_float_data(f);
  if (a.type() == onnx::AttributeProto::INT) t.add_int64_data(a.i());
  for (const int64_t v : a.ints()) t.add_int64_data(v);
  if (a.type() == onnx::AttributeProto::STRING) t.add_string_data(a.s());
  for (const auto& v : a.strings()) t.add_string_data(v);
  return t;
}

// Node indices in a topological order that keeps file order where it is valid (onnx 1.12 infers shapes in list
// order, so an unsorted graph would lose types). Nodes on a cycle follow in file order.
std::vector<int> inference_order(const GraphDesc& desc) {
  const int n = static_cast<int>(desc.nodes.size());
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : desc.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  std::vector<std::vector<int>> after(n);
  for (int i = 0; i < n; ++i) {
    const auto add = [&](const std::string& name) {
      const auto it = producer.find(name);
      if (it != producer.end() && it->second != i &&
          std::find(after[i].begin(), after[i].end(), it->second) == after[i].end())
        after[i].push_back(it->second);
    };
    for (const auto& in : desc.nodes[i].inputs) add(in);
    for (const auto& in : desc.nodes[i].implicit_inputs) add(in);
  }
  std::vector<int> order = stable_topological_order(after);
  std::vector<bool> placed(n, false);
  for (const int i : order) placed[i] = true;
  for (int i = 0; i < n; ++i)
    if (!placed[i]) order.push_back(i);
  return order;
}

// A copy of the model for shape inference: declarations, small weights, every weight as a dense initializer (onnx
// 1.12 ignores sparse initializers and reads only `value` Constants as data), nodes in inference order.
onnx::ModelProto weightless_copy(const Model::Impl& model) {
  const auto& sg = model.model.graph();
  onnx::ModelProto m = model_header(model.model);
  auto* g = m.mutable_graph();
  g->set_name(sg.name());
  *g->mutable_input() = sg.input();
  *g->mutable_output() = sg.output();
  *g->mutable_value_info() = sg.value_info();
  for (const auto& t : sg.initializer()) add_weightless_initializer(g, t, t.name());
  for (const auto& s : sg.sparse_initializer()) {
    onnx::TensorProto t;
    t.set_data_type(s.values().data_type());
    *t.mutable_dims() = s.dims();
    add_weightless_initializer(g, t, s.values().name());
  }
  for (const int i : inference_order(model.desc)) {
    const auto& n = sg.node(i);
    const auto w = model.desc.weights.find(n.output_size() == 1 ? n.output(0) : std::string());
    if (w == model.desc.weights.end() || w->second.constant_node != i)
      *g->add_node() = n;
    else
      add_weightless_initializer(g, constant_value(n, w->second), n.output(0));
  }
  return m;
}

// Fixes the dims named in `dims` of the copy's declarations; unnamed or unknown dims of graph inputs become 1.
void fix_dims(onnx::ModelProto* m, const std::map<std::string, int64_t>& dims, const GraphDesc& desc) {
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
  auto* g = m->mutable_graph();
  for (auto& v : *g->mutable_input())
    if (!desc.weights.count(v.name())) fix(v, true);
  for (auto& v : *g->mutable_output()) fix(v, false);
  for (auto& v : *g->mutable_value_info()) fix(v, false);
}

// The copy with inferred types added. Data propagation infers more (Shape -> Concat -> Reshape) but is the newest part
// of onnx 1.12: retry without it, and keep what is declared when both fail (newer opsets, unsupported constructs).
onnx::ModelProto inferred_copy(const Model::Impl& model, const std::map<std::string, int64_t>& dims) {
  const auto make_copy = [&] {
    onnx::ModelProto m = weightless_copy(model);
    if (!dims.empty()) fix_dims(&m, dims, model.desc);
    return m;
  };
  for (const bool propagate : {true, false}) {
    onnx::ModelProto inferred = make_copy();
    try {
      onnx::ShapeInferenceOptions options(false, 0, propagate);
      onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), options);
      return inferred;
    } catch (const std::exception&) {
      // fall through: retry, or return what is declared
    }
  }
  return make_copy();
}

// Every tensor type the inferred copy declares (one with a shape wins), the weights' own types, and the bytes of
// concrete shapes. Non-tensor types are kept in model.non_tensor_types.
std::map<std::string, ValueDesc> collect_types(const Model::Impl& model, const onnx::ModelProto& inferred) {
  std::map<std::string, ValueDesc> result;
  const auto add = [&](const onnx::ValueInfoProto& vi) {
    if (vi.has_type() && !vi.type().has_tensor_type()) model.non_tensor_types[vi.name()] = vi.type();
    ValueDesc v = value_desc(vi);
    if (v.dtype == DType::UNDEFINED) return;
    auto it = result.find(v.name);
    if (it != result.end() && (it->second.has_shape || !v.has_shape)) return;  // keep the one with a shape
    result[v.name] = std::move(v);
  };
  for (const auto& v : inferred.graph().input()) add(v);
  for (const auto& v : inferred.graph().output()) add(v);
  for (const auto& v : inferred.graph().value_info()) add(v);
  for (auto& [name, v] : result) {
    const int64_t size = static_cast<int64_t>(dtype_size(v.dtype));
    if (!v.has_shape || size == 0) continue;
    int64_t count = 1;
    for (const Dim& d : v.dims) count = d.value >= 0 ? count * d.value : -1;
    v.bytes = count >= 0 ? count * size : -1;
  }
  for (const auto& [name, w] : model.desc.weights) result[name] = ValueDesc::of_shape(name, w.dtype, w.shape);
  return result;
}

// Whether every node output has a dtype and, with `concrete`, a fully concrete shape.
bool every_output_typed(const GraphDesc& desc, const std::map<std::string, ValueDesc>& types, bool concrete) {
  for (const auto& n : desc.nodes) {
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      const auto it = types.find(o);
      if (it == types.end() || it->second.dtype == DType::UNDEFINED) return false;
      if (concrete && !it->second.is_concrete()) return false;
    }
  }
  return true;
}

}  // namespace

std::map<std::string, ValueDesc> infer_value_types(const Model::Impl& model, const std::map<std::string, int64_t>& dims,
                                                   bool* complete) {
  std::map<std::string, ValueDesc> result = collect_types(model, inferred_copy(model, dims));
  if (complete) *complete = every_output_typed(model.desc, result, !dims.empty());
  return result;
}

}  // namespace onnxpipe::detail
