#pragma once
// Builds small ONNX models in code for tests, and the ready-made graphs the split tests run through every N <= 4.
//
//   ModelBuilder b;                                   // opset 17, IR 8
//   b.input("x", DType::FLOAT, {"batch", 4});
//   b.initializer(random_tensor("w", {4, 4}));
//   b.node("MatMul", {"x", "w"}, {"y"});
//   b.output("y", DType::FLOAT, {"batch", 4});
//   std::string path = b.save(dir + "/m.onnx");
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "onnxpipe/tensor.h"

namespace onnxpipe::test {

// One dimension of a declared shape: a number or a symbolic name ({"batch", 4}).
struct DimSpec {
  DimSpec(int64_t v) : value(v) {}                 // NOLINT: implicit on purpose, for brace lists
  DimSpec(int v) : value(v) {}                     // NOLINT
  DimSpec(const char* p) : param(p) {}             // NOLINT
  DimSpec(std::string p) : param(std::move(p)) {}  // NOLINT
  int64_t value = -1;
  std::string param;
};
using Shape = std::vector<DimSpec>;

// Tensors (onnx protos) for initializers and Constant nodes. Data is stored as raw_data unless typed_fields is set.
onnx::TensorProto float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<float>& values, bool typed_fields = false);
onnx::TensorProto int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& values);
// Deterministic pseudo-random values in [-scale, scale).
onnx::TensorProto random_tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed = 1,
                                float scale = 0.5f);

// random_tensor's values stored as float16.
onnx::TensorProto random_half_tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed = 1,
                                     float scale = 0.5f);

// Attributes for node().
onnx::AttributeProto attr_i(const std::string& name, int64_t value);
onnx::AttributeProto attr_f(const std::string& name, float value);
onnx::AttributeProto attr_s(const std::string& name, const std::string& value);
onnx::AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& values);
onnx::AttributeProto attr_floats(const std::string& name, const std::vector<float>& values);
onnx::AttributeProto attr_t(const std::string& name, const onnx::TensorProto& value);
onnx::AttributeProto attr_g(const std::string& name, const onnx::GraphProto& value);

onnx::ValueInfoProto value_info(const std::string& name, DType dtype, const Shape& shape);
onnx::ValueInfoProto value_info_no_shape(const std::string& name, DType dtype);
// A value of type seq(tensor(dtype)), elements of unknown shape.
onnx::ValueInfoProto sequence_info(const std::string& name, DType dtype);

// A graph: the main graph of a ModelBuilder, or a subgraph (If branch, Loop body) passed to attr().
class GraphBuilder {
 public:
  explicit GraphBuilder(const std::string& name = "graph");

  void input(const std::string& name, DType dtype, const Shape& shape);
  void input_no_shape(const std::string& name, DType dtype);
  void output(const std::string& name, DType dtype, const Shape& shape);
  void output_no_shape(const std::string& name, DType dtype);
  void value_info(const std::string& name, DType dtype, const Shape& shape);
  void initializer(const onnx::TensorProto& tensor);
  // A sparse initializer: `values` (its name is the weight's name) at flat `indices` of a tensor of shape `dims`.
  void sparse_initializer(const onnx::TensorProto& values, const std::vector<int64_t>& indices,
                          const std::vector<int64_t>& dims);
  // Adds a node; an empty name stays empty (the loader names it). Returns it for further edits.
  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::vector<onnx::AttributeProto>& attrs = {},
                        const std::string& domain = "", const std::string& name = "");
  // A Constant node holding `tensor` (the output is named after the tensor).
  onnx::NodeProto& constant(const onnx::TensorProto& tensor);

  onnx::GraphProto& proto() { return graph_; }
  const onnx::GraphProto& proto() const { return graph_; }

 private:
  onnx::GraphProto graph_;
};

class ModelBuilder : public GraphBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17, int64_t ir_version = 8);

  // Imports (or changes the version of) an opset domain; "" is ai.onnx.
  void opset(const std::string& domain, int64_t version);
  void ir_version(int64_t version);
  void metadata(const std::string& key, const std::string& value);
  // A model-local function: its domain is imported (version 1) when not yet imported; its body uses ai.onnx at the
  // model's opset.
  void function(const std::string& domain, const std::string& name, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, const std::vector<onnx::NodeProto>& body);

  onnx::ModelProto& model() { return model_; }

  // Writes the model to `path` and returns the path. With external_data, every initializer's data goes to
  // `<path>.data` (location: that file name), aligned to 4096 bytes.
  std::string save(const std::string& path, bool external_data = false);

 private:
  onnx::ModelProto model_;
};

// A node proto for function bodies.
onnx::NodeProto make_node(const std::string& op_type, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::vector<onnx::AttributeProto>& attrs = {},
                          const std::string& domain = "");

// Ready-made models for the split tests: each writes `<dir>/<name>.onnx` and returns its path. All run on ONNX
// Runtime's CPU provider (opset 17 unless said) with float inputs (any values) and symbolic dimension "batch" where
// noted.
std::string skip_connections(const std::string& dir);
std::string mask_read_by_every_block(const std::string& dir);
std::string shared_weight_first_last(const std::string& dir);
std::string early_extra_output(const std::string& dir);
std::string if_reads_outer_values(const std::string& dir);
std::string unsorted_nodes(const std::string& dir);
std::string constant_node_weights(const std::string& dir);
std::string model_local_function(const std::string& dir);
std::string custom_domain(const std::string& dir);
std::string unknown_shapes(const std::string& dir);
std::string several_inputs_outputs_with_optional_empty_input(const std::string& dir);
std::string external_data(const std::string& dir);
std::string sparse_initializer(const std::string& dir);
std::string loop_emitting_sequences(const std::string& dir);
std::string sequence_empty_read_later(const std::string& dir);
// Not in all_models(): random integer inputs make its sizing run fail (see the .cpp); verify it with index = {0, 0, 0}.
std::string shape_only_a_run_with_valid_indices_tells(const std::string& dir);
// float16 throughout: x[batch,64] through 3 MatMul/Tanh blocks to y (7 nodes); the first two weights are float16,
// the last is stored as float and cast to float16. ORT on CPU computes
// it in fp32 (its fp16 kernels are few: Casts are inserted, and removed between nodes), a cut stores the crossing value
// as float16: a split rounds where the whole model does not, so it cannot be bitwise. Not in all_models().
std::string half_mlp(const std::string& dir);

// Every ready-made model above, by name.
struct NamedModel {
  std::string name;
  std::string (*make)(const std::string& dir);
};
const std::vector<NamedModel>& all_models();
inline void PrintTo(const NamedModel& model, std::ostream* out) { *out << model.name; }

// A fresh empty directory under the system temp dir for one test (removed by the caller or left for inspection).
std::string temp_dir(const std::string& prefix);

}  // namespace onnxpipe::test
