#include "support/model_builder.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace onnxpipe::test {
namespace {

int32_t elem_type(DType dtype) { return static_cast<int32_t>(dtype); }

void set_shape(onnx::ValueInfoProto* vi, const Shape& shape) {
  auto* s = vi->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (const DimSpec& d : shape) {
    auto* dim = s->add_dim();
    if (d.param.empty())
      dim->set_dim_value(d.value);
    else
      dim->set_dim_param(d.param);
  }
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  return n;
}

// Moves a tensor's typed fields into raw_data (save with external data needs raw bytes).
void to_raw(onnx::TensorProto* t) {
  if (t->has_raw_data()) return;
  std::string raw;
  if (t->data_type() == onnx::TensorProto::FLOAT) {
    raw.assign(reinterpret_cast<const char*>(t->float_data().data()), t->float_data_size() * sizeof(float));
    t->clear_float_data();
  } else if (t->data_type() == onnx::TensorProto::INT64) {
    raw.assign(reinterpret_cast<const char*>(t->int64_data().data()), t->int64_data_size() * sizeof(int64_t));
    t->clear_int64_data();
  } else {
    throw std::runtime_error("model_builder: external data for tensor '" + t->name() + "' of unsupported type");
  }
  t->set_raw_data(raw);
}

}  // namespace

onnx::TensorProto float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<float>& values, bool typed_fields) {
  if (element_count(dims) != static_cast<int64_t>(values.size()))
    throw std::runtime_error("float_tensor '" + name + "': values do not match dims");
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (const int64_t d : dims) t.add_dims(d);
  if (typed_fields) {
    for (const float v : values) t.add_float_data(v);
  } else {
    t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  }
  return t;
}

onnx::TensorProto int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& values) {
  if (element_count(dims) != static_cast<int64_t>(values.size()))
    throw std::runtime_error("int64_tensor '" + name + "': values do not match dims");
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (const int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)));
  return t;
}

onnx::TensorProto random_tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed, float scale) {
  std::vector<float> values(static_cast<size_t>(element_count(dims)));
  uint32_t state = seed * 2654435761u + 12345u;
  for (float& v : values) {
    state = state * 1664525u + 1013904223u;  // LCG: the same values on every platform
    v = (static_cast<float>(state >> 8) / 16777216.0f * 2.0f - 1.0f) * scale;
  }
  return float_tensor(name, dims, values);
}

onnx::TensorProto random_half_tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed,
                                     float scale) {
  const onnx::TensorProto values = random_tensor(name, dims, seed, scale);
  const std::string& raw = values.raw_data();
  std::string half(raw.size() / 2, '\0');
  for (size_t i = 0; i < raw.size() / 4; ++i) {
    float value;
    std::memcpy(&value, raw.data() + 4 * i, 4);
    const _Float16 rounded = static_cast<_Float16>(value);
    std::memcpy(&half[2 * i], &rounded, 2);
  }
  onnx::TensorProto tensor = values;
  tensor.set_data_type(onnx::TensorProto::FLOAT16);
  tensor.set_raw_data(half);
  return tensor;
}

onnx::AttributeProto attr_i(const std::string& name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto attr_f(const std::string& name, float value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

onnx::AttributeProto attr_s(const std::string& name, const std::string& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(value);
  return a;
}

onnx::AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a.add_ints(v);
  return a;
}

onnx::AttributeProto attr_floats(const std::string& name, const std::vector<float>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOATS);
  for (const float v : values) a.add_floats(v);
  return a;
}

onnx::AttributeProto attr_t(const std::string& name, const onnx::TensorProto& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::TENSOR);
  *a.mutable_t() = value;
  return a;
}

onnx::AttributeProto attr_g(const std::string& name, const onnx::GraphProto& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::GRAPH);
  *a.mutable_g() = value;
  return a;
}

onnx::ValueInfoProto value_info(const std::string& name, DType dtype, const Shape& shape) {
  onnx::ValueInfoProto vi = value_info_no_shape(name, dtype);
  set_shape(&vi, shape);
  return vi;
}

onnx::ValueInfoProto value_info_no_shape(const std::string& name, DType dtype) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  vi.mutable_type()->mutable_tensor_type()->set_elem_type(elem_type(dtype));
  return vi;
}

onnx::ValueInfoProto sequence_info(const std::string& name, DType dtype) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  vi.mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(
      elem_type(dtype));
  return vi;
}

onnx::NodeProto make_node(const std::string& op_type, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::vector<onnx::AttributeProto>& attrs,
                          const std::string& domain) {
  onnx::NodeProto n;
  n.set_op_type(op_type);
  if (!domain.empty()) n.set_domain(domain);
  for (const auto& i : inputs) n.add_input(i);
  for (const auto& o : outputs) n.add_output(o);
  for (const auto& a : attrs) *n.add_attribute() = a;
  return n;
}

GraphBuilder::GraphBuilder(const std::string& name) { graph_.set_name(name); }

void GraphBuilder::input(const std::string& name, DType dtype, const Shape& shape) {
  *graph_.add_input() = test::value_info(name, dtype, shape);
}

void GraphBuilder::input_no_shape(const std::string& name, DType dtype) {
  *graph_.add_input() = value_info_no_shape(name, dtype);
}

void GraphBuilder::output(const std::string& name, DType dtype, const Shape& shape) {
  *graph_.add_output() = test::value_info(name, dtype, shape);
}

void GraphBuilder::output_no_shape(const std::string& name, DType dtype) {
  *graph_.add_output() = value_info_no_shape(name, dtype);
}

void GraphBuilder::value_info(const std::string& name, DType dtype, const Shape& shape) {
  *graph_.add_value_info() = test::value_info(name, dtype, shape);
}

void GraphBuilder::initializer(const onnx::TensorProto& tensor) { *graph_.add_initializer() = tensor; }

void GraphBuilder::sparse_initializer(const onnx::TensorProto& values, const std::vector<int64_t>& indices,
                                      const std::vector<int64_t>& dims) {
  auto* s = graph_.add_sparse_initializer();
  *s->mutable_values() = values;
  *s->mutable_indices() = int64_tensor(values.name() + "_indices", {static_cast<int64_t>(indices.size())}, indices);
  for (const int64_t d : dims) s->add_dims(d);
}

onnx::NodeProto& GraphBuilder::node(const std::string& op_type, const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs,
                                    const std::vector<onnx::AttributeProto>& attrs, const std::string& domain,
                                    const std::string& name) {
  auto* n = graph_.add_node();
  *n = make_node(op_type, inputs, outputs, attrs, domain);
  if (!name.empty()) n->set_name(name);
  return *n;
}

onnx::NodeProto& GraphBuilder::constant(const onnx::TensorProto& tensor) {
  onnx::TensorProto value = tensor;
  value.clear_name();
  return node("Constant", {}, {tensor.name()}, {attr_t("value", value)});
}

ModelBuilder::ModelBuilder(int64_t opset, int64_t ir_version) : GraphBuilder("main") {
  model_.set_ir_version(ir_version);
  model_.set_producer_name("onnxpipe-tests");
  auto* o = model_.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
}

void ModelBuilder::opset(const std::string& domain, int64_t version) {
  for (auto& o : *model_.mutable_opset_import()) {
    if (o.domain() == domain) {
      o.set_version(version);
      return;
    }
  }
  auto* o = model_.add_opset_import();
  o->set_domain(domain);
  o->set_version(version);
}

void ModelBuilder::ir_version(int64_t version) { model_.set_ir_version(version); }

void ModelBuilder::metadata(const std::string& key, const std::string& value) {
  auto* kv = model_.add_metadata_props();
  kv->set_key(key);
  kv->set_value(value);
}

void ModelBuilder::function(const std::string& domain, const std::string& name, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::vector<onnx::NodeProto>& body) {
  bool imported = false;
  int64_t onnx_opset = 17;
  for (const auto& o : model_.opset_import()) {
    imported = imported || o.domain() == domain;
    if (o.domain().empty()) onnx_opset = o.version();
  }
  if (!imported) opset(domain, 1);
  auto* f = model_.add_functions();
  f->set_name(name);
  f->set_domain(domain);
  for (const auto& i : inputs) f->add_input(i);
  for (const auto& o : outputs) f->add_output(o);
  for (const auto& n : body) *f->add_node() = n;
  auto* o = f->add_opset_import();
  o->set_domain("");
  o->set_version(onnx_opset);
}

std::string ModelBuilder::save(const std::string& path, bool external_data) {
  onnx::ModelProto m = model_;
  *m.mutable_graph() = proto();
  if (external_data) {
    const std::string data_path = path + ".data";
    const std::string location = data_path.substr(data_path.find_last_of('/') + 1);
    std::ofstream data(data_path, std::ios::binary | std::ios::trunc);
    int64_t offset = 0;
    for (auto& t : *m.mutable_graph()->mutable_initializer()) {
      to_raw(&t);
      const int64_t aligned = (offset + 4095) / 4096 * 4096;
      data.write(std::string(static_cast<size_t>(aligned - offset), '\0').data(), aligned - offset);
      data.write(t.raw_data().data(), static_cast<std::streamsize>(t.raw_data().size()));
      const auto add = [&t](const std::string& key, const std::string& value) {
        auto* kv = t.add_external_data();
        kv->set_key(key);
        kv->set_value(value);
      };
      add("location", location);
      add("offset", std::to_string(aligned));
      add("length", std::to_string(t.raw_data().size()));
      offset = aligned + static_cast<int64_t>(t.raw_data().size());
      t.clear_raw_data();
      t.set_data_location(onnx::TensorProto::EXTERNAL);
    }
    if (!data.flush()) throw std::runtime_error("cannot write " + data_path);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!m.SerializeToOstream(&out) || !out.flush()) throw std::runtime_error("cannot write " + path);
  return path;
}

// ---- ready-made models ----

// x[batch,8] -> three MatMul blocks with residual Adds, plus a long skip from x to the last Add (8 nodes).
std::string skip_connections(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  for (int i = 1; i <= 3; ++i) b.initializer(random_tensor("w" + std::to_string(i), {8, 8}, i));
  b.node("MatMul", {"x", "w1"}, {"h1"});
  b.node("Relu", {"h1"}, {"r1"});
  b.node("Add", {"r1", "x"}, {"s1"});
  b.node("MatMul", {"s1", "w2"}, {"h2"});
  b.node("Tanh", {"h2"}, {"r2"});
  b.node("Add", {"r2", "s1"}, {"s2"});
  b.node("MatMul", {"s2", "w3"}, {"h3"});
  b.node("Add", {"h3", "x"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/skip_connections.onnx");
}

std::string half_mlp(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT16, {"batch", 64});
  std::string value = "x";
  for (int i = 1; i <= 3; ++i) {
    const std::string block = std::to_string(i);
    std::string weight = "w" + block;
    if (i < 3) {
      b.initializer(random_half_tensor(weight, {64, 64}, uint32_t(i), 0.25f));
    } else {  // the last weight stored as float and cast, as mixed-precision exports do
      b.initializer(random_tensor(weight + "_fp32", {64, 64}, uint32_t(i), 0.25f));
      b.node("Cast", {weight + "_fp32"}, {weight}, {attr_i("to", 10)});
    }
    b.node("MatMul", {value, weight}, {"h" + block});
    value = i == 3 ? "y" : "t" + block;
    b.node("Tanh", {"h" + block}, {value});
  }
  b.output("y", DType::FLOAT16, {"batch", 64});
  return b.save(dir + "/half_mlp.onnx");
}

// Transformer-like: x[batch,4,8] through 3 blocks (MatMul, Mul by mask, residual Add); the mask input [batch,1,8] is
// read by every block and by the final Mul, so no single tensor separates two blocks (10 nodes).
std::string mask_read_by_every_block(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4, 8});
  b.input("mask", DType::FLOAT, {"batch", 1, 8});
  std::string prev = "x";
  for (int i = 1; i <= 3; ++i) {
    const std::string k = std::to_string(i);
    b.initializer(random_tensor("w" + k, {8, 8}, 10 + i));
    b.node("MatMul", {prev, "w" + k}, {"h" + k});
    b.node("Mul", {"h" + k, "mask"}, {"m" + k});
    b.node("Add", {"m" + k, prev}, {"x" + k});
    prev = "x" + k;
  }
  b.node("Mul", {prev, "mask"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4, 8});
  return b.save(dir + "/mask_read_by_every_block.onnx");
}

// One weight w[8,8] read by the first and the last MatMul (tied embeddings), 5 nodes.
std::string shared_weight_first_last(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(random_tensor("w", {8, 8}, 21));
  b.node("MatMul", {"x", "w"}, {"a"});
  b.node("Relu", {"a"}, {"r"});
  b.node("Sigmoid", {"r"}, {"s"});
  b.node("Add", {"s", "r"}, {"d"});
  b.node("MatMul", {"d", "w"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/shared_weight_first_last.onnx");
}

// A chain of 6 nodes whose second value r1 is also a graph output (it must leave from the piece that makes it).
std::string early_extra_output(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  for (int i = 1; i <= 3; ++i) b.initializer(random_tensor("w" + std::to_string(i), {8, 8}, 30 + i));
  b.node("MatMul", {"x", "w1"}, {"h1"});
  b.node("Relu", {"h1"}, {"r1"});
  b.node("MatMul", {"r1", "w2"}, {"h2"});
  b.node("Tanh", {"h2"}, {"t"});
  b.node("MatMul", {"t", "w3"}, {"h3"});
  b.node("Sigmoid", {"h3"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  b.output("r1", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/early_extra_output.onnx");
}

// An If whose branches read outer values without listing them: the then branch reads a, b and the initializer w;
// the else branch holds a nested If that reads cond and x from the main graph and e from the else branch.
// Implicit inputs of the If: a, b, cond, w, x. 7 top-level nodes; inputs in [0,1) take the then branch.
std::string if_reads_outer_values(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.initializer(random_tensor("w", {4}, 41));
  b.initializer(float_tensor("zero", {}, {0.0f}));
  b.node("Relu", {"x"}, {"a"});
  b.node("Sigmoid", {"x"}, {"b"});
  b.node("ReduceSum", {"x"}, {"s"}, {attr_i("keepdims", 0)});
  b.node("Greater", {"s", "zero"}, {"cond"});

  GraphBuilder then_branch("then");
  then_branch.node("Add", {"a", "w"}, {"t1"});
  then_branch.node("Mul", {"t1", "b"}, {"then_out"});
  then_branch.output_no_shape("then_out", DType::FLOAT);

  GraphBuilder inner_then("inner_then");
  inner_then.node("Add", {"e", "x"}, {"inner_then_out"});
  inner_then.output_no_shape("inner_then_out", DType::FLOAT);
  GraphBuilder inner_else("inner_else");
  inner_else.node("Sub", {"e", "x"}, {"inner_else_out"});
  inner_else.output_no_shape("inner_else_out", DType::FLOAT);
  GraphBuilder else_branch("else");
  else_branch.node("Sub", {"b", "a"}, {"e"});
  else_branch.node("If", {"cond"}, {"else_out"},
                   {attr_g("then_branch", inner_then.proto()), attr_g("else_branch", inner_else.proto())});
  else_branch.output_no_shape("else_out", DType::FLOAT);

  b.node("If", {"cond"}, {"branch"},
         {attr_g("then_branch", then_branch.proto()), attr_g("else_branch", else_branch.proto())});
  b.node("Add", {"branch", "a"}, {"sum"});
  b.node("Tanh", {"sum"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4});
  return b.save(dir + "/if_reads_outer_values.onnx");
}

// The 6 nodes of a small residual chain stored out of topological order (y = Sigmoid(MatMul(Relu(x w1) w2) + x w1) *
// Relu(x w1)); file order: d, y, a, e, c, b.
std::string unsorted_nodes(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(random_tensor("w1", {8, 8}, 51));
  b.initializer(random_tensor("w2", {8, 8}, 52));
  b.node("Add", {"c", "a"}, {"d"});
  b.node("Mul", {"e", "b"}, {"y"});
  b.node("MatMul", {"x", "w1"}, {"a"});
  b.node("Sigmoid", {"d"}, {"e"});
  b.node("MatMul", {"b", "w2"}, {"c"});
  b.node("Relu", {"a"}, {"b"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/unsorted_nodes.onnx");
}

// Weights in Constant nodes: a tensor cw[8,8] (read by the first and the last MatMul), a value_float scale and a
// value_ints Reshape shape; 3 Constant + 5 compute nodes.
std::string constant_node_weights(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.constant(random_tensor("cw", {8, 8}, 61));
  b.node("Constant", {}, {"scale"}, {attr_f("value_float", 0.5f)});
  b.node("Constant", {}, {"shape"}, {attr_ints("value_ints", {-1, 8})});
  b.node("MatMul", {"x", "cw"}, {"a"});
  b.node("Mul", {"a", "scale"}, {"m"});
  b.node("Relu", {"m"}, {"r"});
  b.node("Reshape", {"r", "shape"}, {"rs"});
  b.node("MatMul", {"rs", "cw"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/constant_node_weights.onnx");
}

// A model-local function local.AddRelu(X, Y) = Relu(X + Y) called twice; 5 nodes.
std::string model_local_function(const std::string& dir) {
  ModelBuilder b;
  b.function("local", "AddRelu", {"X", "Y"}, {"Z"},
             {make_node("Add", {"X", "Y"}, {"T"}), make_node("Relu", {"T"}, {"Z"})});
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(random_tensor("w1", {8, 8}, 71));
  b.initializer(random_tensor("w2", {8, 8}, 72));
  b.node("MatMul", {"x", "w1"}, {"h1"});
  b.node("AddRelu", {"h1", "x"}, {"a"}, {}, "local");
  b.node("MatMul", {"a", "w2"}, {"h2"});
  b.node("AddRelu", {"h2", "a"}, {"c"}, {}, "local");
  b.node("Sigmoid", {"c"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/model_local_function.onnx");
}

// A custom domain com.example whose op ScaledTanh(X) = Tanh(2 X) is a model-local function (ONNX Runtime inlines it),
// plus unused opset imports (ai.onnx.ml, com.unused) that must pass through; 5 nodes.
std::string custom_domain(const std::string& dir) {
  ModelBuilder b;
  b.opset("ai.onnx.ml", 3);
  b.opset("com.unused", 1);
  b.function("com.example", "ScaledTanh", {"X"}, {"Y"},
             {make_node("Constant", {}, {"two"}, {attr_f("value_float", 2.0f)}), make_node("Mul", {"X", "two"}, {"T"}),
              make_node("Tanh", {"T"}, {"Y"})});
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(random_tensor("w", {8, 8}, 81));
  b.node("MatMul", {"x", "w"}, {"a"});
  b.node("ScaledTanh", {"a"}, {"b"}, {}, "com.example");
  b.node("Relu", {"b"}, {"c"});
  b.node("ScaledTanh", {"c"}, {"d"}, {}, "com.example");
  b.node("Add", {"d", "x"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/custom_domain.onnx");
}

// Shapes shape inference cannot tell: Reshape to Abs(Shape(x)) (rank 2, dims unknown: Abs stops data propagation),
// then Squeeze without axes (rank unknown while batch is symbolic), back to x's shape; 7 nodes.
std::string unknown_shapes(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(random_tensor("w", {8, 4}, 91));
  b.node("Shape", {"x"}, {"s"});
  b.node("Abs", {"s"}, {"s_abs"});
  b.node("Reshape", {"x", "s_abs"}, {"r"});
  b.node("Squeeze", {"r"}, {"q"});
  b.node("Relu", {"q"}, {"q_relu"});
  b.node("Reshape", {"q_relu", "s"}, {"back"});
  b.node("MatMul", {"back", "w"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4});
  return b.save(dir + "/unknown_shapes.onnx");
}

// Three inputs, three outputs; Clip with its optional min omitted (""), Split into two outputs, Dropout with its
// optional mask output omitted; 8 nodes.
std::string several_inputs_outputs_with_optional_empty_input(const std::string& dir) {
  ModelBuilder b;
  b.input("a", DType::FLOAT, {"batch", 4});
  b.input("b", DType::FLOAT, {"batch", 4});
  b.input("c", DType::FLOAT, {"batch", 4});
  b.initializer(float_tensor("max", {}, {0.8f}));
  b.node("Add", {"a", "b"}, {"s"});
  b.node("Clip", {"s", "", "max"}, {"clipped"});
  b.node("Mul", {"clipped", "b"}, {"m"});
  b.node("Split", {"m"}, {"p", "q"}, {attr_i("axis", 1)});
  b.node("Relu", {"p"}, {"o1"});
  b.node("Sigmoid", {"q"}, {"o2"});
  b.node("Add", {"clipped", "c"}, {"sum"});
  b.node("Dropout", {"sum"}, {"o3"});
  b.output("o1", DType::FLOAT, {"batch", 2});
  b.output("o2", DType::FLOAT, {"batch", 2});
  b.output("o3", DType::FLOAT, {"batch", 4});
  return b.save(dir + "/several_inputs_outputs_with_optional_empty_input.onnx");
}

// Weights (three MatMul matrices and a bias, 16 KiB each or less) in external_data.onnx.data; 6 nodes.
std::string external_data(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 64});
  b.initializer(random_tensor("w1", {64, 64}, 101));
  b.initializer(random_tensor("bias", {64}, 102));
  b.initializer(random_tensor("w2", {64, 64}, 103));
  b.initializer(random_tensor("w3", {64, 32}, 104));
  b.node("MatMul", {"x", "w1"}, {"a"});
  b.node("Add", {"a", "bias"}, {"ab"});
  b.node("Relu", {"ab"}, {"r"});
  b.node("MatMul", {"r", "w2"}, {"d"});
  b.node("Tanh", {"d"}, {"t"});
  b.node("MatMul", {"t", "w3"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 32});
  return b.save(dir + "/external_data.onnx", true);
}

// A sparse initializer sw[8,8] (4 non-zeros) and a dense one stored in typed fields (float_data); 4 nodes.
std::string sparse_initializer(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.sparse_initializer(float_tensor("sw", {4}, {0.5f, -1.0f, 2.0f, 0.25f}), {0, 9, 18, 63}, {8, 8});
  b.initializer(float_tensor("bias", {8}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f}, true));
  b.node("MatMul", {"x", "sw"}, {"a"});
  b.node("Add", {"a", "bias"}, {"ab"});
  b.node("Relu", {"ab"}, {"r"});
  b.node("Add", {"r", "x"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 8});
  return b.save(dir + "/sparse_initializer.onnx");
}

const std::vector<NamedModel>& all_models() {
  static const std::vector<NamedModel> models = {
      {"skip_connections", skip_connections},
      {"mask_read_by_every_block", mask_read_by_every_block},
      {"shared_weight_first_last", shared_weight_first_last},
      {"early_extra_output", early_extra_output},
      {"if_reads_outer_values", if_reads_outer_values},
      {"unsorted_nodes", unsorted_nodes},
      {"constant_node_weights", constant_node_weights},
      {"model_local_function", model_local_function},
      {"custom_domain", custom_domain},
      {"unknown_shapes", unknown_shapes},
      {"several_inputs_outputs_with_optional_empty_input", several_inputs_outputs_with_optional_empty_input},
      {"external_data", external_data},
      {"sparse_initializer", sparse_initializer},
      {"loop_emitting_sequences", loop_emitting_sequences},
      {"sequence_empty_read_later", sequence_empty_read_later},
  };
  return models;
}

// A Loop that carries two sequences (each gets `a` appended, twice), concatenated after it; 7 nodes. Cutting right
// after the Loop passes only the two sequences, cutting after the first MatMul only the tensor `a`: with bytes
// balance both leave the same node costs on each side.
std::string loop_emitting_sequences(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.initializer(random_tensor("w1", {4, 4}, 111));
  b.initializer(random_tensor("w2", {4, 4}, 112));
  b.initializer(int64_tensor("trips", {}, {2}));
  GraphBuilder body("body");
  body.input("i", DType::INT64, {});
  body.input("cond", DType::BOOL, {});
  *body.proto().add_input() = sequence_info("sa_in", DType::FLOAT);
  *body.proto().add_input() = sequence_info("sb_in", DType::FLOAT);
  body.node("Identity", {"cond"}, {"cond_out"});
  body.node("SequenceInsert", {"sa_in", "a"}, {"sa_out"});
  body.node("SequenceInsert", {"sb_in", "a"}, {"sb_out"});
  body.output("cond_out", DType::BOOL, {});
  *body.proto().add_output() = sequence_info("sa_out", DType::FLOAT);
  *body.proto().add_output() = sequence_info("sb_out", DType::FLOAT);
  b.node("MatMul", {"x", "w1"}, {"a"});
  b.node("SequenceConstruct", {"a"}, {"s0"});
  b.node("Loop", {"trips", "", "s0", "s0"}, {"s1", "s2"}, {attr_g("body", body.proto())});
  b.node("ConcatFromSequence", {"s1"}, {"c1"}, {attr_i("axis", 0)});
  b.node("ConcatFromSequence", {"s2"}, {"c2"}, {attr_i("axis", 0)});
  b.node("Add", {"c1", "c2"}, {"d"});
  b.node("MatMul", {"d", "w2"}, {"y"});
  b.output("y", DType::FLOAT, {"rows", 4});
  return b.save(dir + "/loop_emitting_sequences.onnx");
}

// A SequenceEmpty (file order first) read by the second and the fourth node: y = ((x w1 as seq) w2 as seq) w3;
// 6 compute nodes, the SequenceEmpty recomputed where it is read.
std::string sequence_empty_read_later(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.initializer(random_tensor("w1", {4, 4}, 121));
  b.initializer(random_tensor("w2", {4, 4}, 122));
  b.initializer(random_tensor("w3", {4, 4}, 123));
  b.node("SequenceEmpty", {}, {"empty"}, {attr_i("dtype", 1)});
  b.node("MatMul", {"x", "w1"}, {"a"});
  b.node("SequenceInsert", {"empty", "a"}, {"sa"});
  b.node("ConcatFromSequence", {"sa"}, {"ca"}, {attr_i("axis", 0)});
  b.node("MatMul", {"ca", "w2"}, {"b"});
  b.node("SequenceInsert", {"empty", "b"}, {"sb"});
  b.node("ConcatFromSequence", {"sb"}, {"cb"}, {attr_i("axis", 0)});
  b.node("MatMul", {"cb", "w3"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4});
  return b.save(dir + "/sequence_empty_read_later.onnx");
}

// x tiled by table[index] rows, with a one-entry table: shape inference cannot tell the tiled shape (it depends on
// values), and the sizing run on random indices in [0, 10) reads out of the table and fails, so `tiled` stays of
// unknown size; 6 nodes.
std::string shape_only_a_run_with_valid_indices_tells(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.input("index", DType::INT64, {3});
  b.initializer(int64_tensor("table", {1}, {2}));
  b.initializer(int64_tensor("one", {1}, {1}));
  b.initializer(random_tensor("w", {8, 4}, 131));
  b.node("Gather", {"table", "index"}, {"picked"});
  b.node("ReduceMax", {"picked"}, {"rows"}, {attr_ints("axes", {0}), attr_i("keepdims", 1)});
  b.node("Concat", {"rows", "one"}, {"repeats"}, {attr_i("axis", 0)});
  b.node("Tile", {"x", "repeats"}, {"tiled"});
  b.node("Relu", {"tiled"}, {"r"});
  b.node("MatMul", {"r", "w"}, {"y"});
  b.output("y", DType::FLOAT, {"n", 4});
  return b.save(dir + "/shape_only_a_run_with_valid_indices_tells.onnx");
}

std::string temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/onnxpipe_" + prefix + "_XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

}  // namespace onnxpipe::test
