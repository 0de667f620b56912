// Cost models against hand-computed numbers: FLOPs from shapes, weight bytes, measured times, transfer units.
#include "cost.h"

#include <gtest/gtest.h>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {
namespace {

using Shapes = std::map<std::string, ValueDesc>;

NodeDesc node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  NodeDesc desc;
  desc.name = op + "_node";
  desc.op_type = op;
  desc.inputs = inputs;
  desc.outputs = outputs;
  return desc;
}

void add_shape(Shapes& shapes, const std::string& name, const std::vector<int64_t>& dims, DType dtype = DType::FLOAT) {
  ValueDesc desc;
  desc.name = name;
  desc.dtype = dtype;
  desc.has_shape = true;
  for (int64_t d : dims) desc.dims.push_back(Dim{d, ""});
  shapes[name] = desc;
}

TEST(Cost, ConvCountsTwoFlopsPerMultiplyAddPlusBias) {
  Shapes shapes;
  add_shape(shapes, "x", {1, 3, 32, 32});
  add_shape(shapes, "w", {16, 3, 3, 3});
  add_shape(shapes, "b", {16});
  add_shape(shapes, "y", {1, 16, 30, 30});
  // 2 * Cout * Cin * kh * kw * out_h * out_w * N + bias per output = 2 * 16*3*9 * 900 + 16*900
  EXPECT_DOUBLE_EQ(node_flops(node("Conv", {"x", "w", "b"}, {"y"}), shapes), 792000);
  EXPECT_DOUBLE_EQ(node_flops(node("Conv", {"x", "w"}, {"y"}), shapes), 777600);
}

TEST(Cost, GroupedConvDividesInputChannelsByGroup) {
  Shapes shapes;
  add_shape(shapes, "x", {2, 8, 10, 10});
  add_shape(shapes, "w", {8, 2, 3, 3});  // group 4: 8 / 4 input channels per output channel
  add_shape(shapes, "y", {2, 8, 8, 8});
  NodeDesc conv = node("Conv", {"x", "w"}, {"y"});
  conv.ints["group"] = {4};
  EXPECT_DOUBLE_EQ(node_flops(conv, shapes), 2.0 * (2 * 8 * 64) * (2 * 9));
}

TEST(Cost, ConvTransposeScattersEachInputElement) {
  Shapes shapes;
  add_shape(shapes, "x", {1, 4, 5, 5});
  add_shape(shapes, "w", {4, 2, 3, 3});
  add_shape(shapes, "y", {1, 2, 7, 7});
  EXPECT_DOUBLE_EQ(node_flops(node("ConvTranspose", {"x", "w"}, {"y"}), shapes), 2.0 * 100 * 18);
}

TEST(Cost, GemmHonoursTransposeAndBias) {
  Shapes shapes;
  add_shape(shapes, "a", {4, 8});
  add_shape(shapes, "b", {16, 8});
  add_shape(shapes, "c", {16});
  add_shape(shapes, "y", {4, 16});
  NodeDesc gemm = node("Gemm", {"a", "b", "c"}, {"y"});
  gemm.ints["transB"] = {1};
  EXPECT_DOUBLE_EQ(node_flops(gemm, shapes), 2.0 * 4 * 16 * 8 + 4 * 16);
}

TEST(Cost, MatMulBroadcastsBatchDims) {
  Shapes shapes;
  add_shape(shapes, "a", {2, 1, 5, 3});
  add_shape(shapes, "b", {4, 3, 7});
  add_shape(shapes, "y", {2, 4, 5, 7});
  // batch 2 x 4 broadcast, M 5, K 3, N 7
  EXPECT_DOUBLE_EQ(node_flops(node("MatMul", {"a", "b"}, {"y"}), shapes), 2.0 * 8 * 5 * 7 * 3);
  add_shape(shapes, "v", {3});
  add_shape(shapes, "m", {3, 7});
  EXPECT_DOUBLE_EQ(node_flops(node("MatMul", {"v", "m"}, {"vm"}), shapes), 2.0 * 7 * 3);
  NodeDesc fused = node("FusedMatMul", {"m", "m"}, {"mtm"});
  fused.domain = "com.microsoft";
  fused.ints["transA"] = {1};  // [7, 3] x [3, 7]
  EXPECT_DOUBLE_EQ(node_flops(fused, shapes), 2.0 * 7 * 7 * 3);
}

TEST(Cost, EinsumMultipliesAllLetterSizes) {
  Shapes shapes;
  add_shape(shapes, "a", {2, 3, 4});
  add_shape(shapes, "b", {2, 4, 5});
  NodeDesc einsum = node("Einsum", {"a", "b"}, {"y"});
  einsum.strings["equation"] = "bij, bjk -> bik";
  EXPECT_DOUBLE_EQ(node_flops(einsum, shapes), 2.0 * 2 * 3 * 4 * 5);
  einsum.strings["equation"] = "...ij,...jk->...ik";
  EXPECT_DOUBLE_EQ(node_flops(einsum, shapes), 2.0 * 2 * 3 * 4 * 5);
}

TEST(Cost, ElementwiseReductionsAndSoftmaxScaleWithElements) {
  Shapes shapes;
  add_shape(shapes, "x", {4, 6});
  add_shape(shapes, "y", {4, 6});
  add_shape(shapes, "r", {4, 1});
  double add = node_flops(node("Add", {"x", "x"}, {"y"}), shapes);
  EXPECT_DOUBLE_EQ(add, 24);
  EXPECT_GT(node_flops(node("Erf", {"x"}, {"y"}), shapes), add);
  EXPECT_GT(node_flops(node("Softmax", {"x"}, {"y"}), shapes), add);
  EXPECT_DOUBLE_EQ(node_flops(node("ReduceSum", {"x"}, {"r"}), shapes), 24);  // per input element
  EXPECT_GT(node_flops(node("LayerNormalization", {"x", "s", "b"}, {"y"}), shapes), add);
}

TEST(Cost, PoolingCountsKernelPerOutputAndGlobalPoolEveryInput) {
  Shapes shapes;
  add_shape(shapes, "x", {1, 2, 7, 7});
  add_shape(shapes, "y", {1, 2, 4, 4});
  add_shape(shapes, "g", {1, 2, 1, 1});
  NodeDesc pool = node("MaxPool", {"x"}, {"y"});
  pool.ints["kernel_shape"] = {3, 3};
  EXPECT_DOUBLE_EQ(node_flops(pool, shapes), 32.0 * 9);
  EXPECT_DOUBLE_EQ(node_flops(node("GlobalAveragePool", {"x"}, {"g"}), shapes), 98);
}

TEST(Cost, LstmCountsBothProjectionsPerStep) {
  Shapes shapes;
  add_shape(shapes, "x", {5, 2, 8});   // seq 5, batch 2, input 8
  add_shape(shapes, "w", {1, 64, 8});  // 4 gates * hidden 16
  add_shape(shapes, "r", {1, 64, 16});
  // 2 * (input + hidden) multiply-adds per gate value and step, plus ~10 elementwise operations per gate value
  EXPECT_DOUBLE_EQ(node_flops(node("LSTM", {"x", "w", "r"}, {"y"}), shapes), 10.0 * 64 * (2 * 24 + 10));
}

TEST(Cost, DataMovementCostsBytesOverFour) {
  Shapes shapes;
  add_shape(shapes, "x", {2, 3, 4});
  add_shape(shapes, "t", {4, 3, 2});
  add_shape(shapes, "s", {3}, DType::INT64);
  EXPECT_DOUBLE_EQ(node_flops(node("Transpose", {"x"}, {"t"}), shapes), 24);
  EXPECT_DOUBLE_EQ(node_flops(node("Shape", {"x"}, {"s"}), shapes), 6);
}

TEST(Cost, UnknownOpsAndMissingShapesCostOne) {
  Shapes shapes;
  add_shape(shapes, "x", {100, 100});
  EXPECT_EQ(node_flops(node("MyCustomOp", {"x"}, {"y"}), shapes), 1);
  EXPECT_EQ(node_flops(node("MatMul", {"x", "unknown"}, {"y"}), shapes), 1);
  ValueDesc symbolic;
  symbolic.has_shape = true;
  symbolic.dims = {Dim{-1, "batch"}, Dim{100, ""}};
  shapes["sym"] = symbolic;
  EXPECT_EQ(node_flops(node("MatMul", {"sym", "x"}, {"y"}), shapes), 1);
}

TEST(Cost, IfCostsOnePerOutputElement) {
  Shapes shapes;
  add_shape(shapes, "y", {3, 5});
  NodeDesc branch = node("If", {"cond"}, {"y"});
  branch.has_subgraph = true;
  EXPECT_DOUBLE_EQ(node_flops(branch, shapes), 15);
}

// A graph in unsorted file order, to check costs come out per position of the order.
GraphDesc two_node_graph() {
  GraphDesc desc;
  ValueDesc x, y;
  x.name = "x";
  y.name = "y";
  desc.inputs = {x};
  desc.outputs = {y};
  desc.nodes = {node("MatMul", {"h", "w"}, {"y"}), node("Gather", {"w", "x"}, {"h"})};
  desc.nodes[0].name = "head";
  desc.nodes[1].name = "embed";
  WeightDesc w;
  w.name = "w";
  w.bytes = 1000;
  desc.weights["w"] = w;
  return desc;
}

TEST(Cost, WeightBytesCountASharedWeightForEachReader) {
  GraphDesc desc = two_node_graph();
  desc.nodes[0].inputs.push_back("bias");
  WeightDesc bias;
  bias.name = "bias";
  bias.bytes = 40;
  desc.weights["bias"] = bias;
  Graph graph(desc);
  EXPECT_EQ(weight_bytes_costs(graph), (std::vector<double>{1000, 1040}));
}

TEST(Cost, FlopsCostsFollowTheOrder) {
  GraphDesc desc = two_node_graph();
  Graph graph(desc);
  Shapes shapes;
  add_shape(shapes, "x", {1, 4}, DType::INT64);
  add_shape(shapes, "w", {8, 8});
  add_shape(shapes, "h", {1, 4, 8});
  add_shape(shapes, "y", {1, 4, 8});
  std::vector<double> costs = flops_costs(graph, shapes);
  ASSERT_EQ(costs.size(), 2u);
  EXPECT_DOUBLE_EQ(costs[0], 32);               // Gather: 32 floats moved, 128 bytes / 4
  EXPECT_DOUBLE_EQ(costs[1], 2.0 * 4 * 8 * 8);  // MatMul [1,4,8] x [8,8]
}

TEST(Cost, TimeCostsMapNamesToPositionsAndFusedNodesCostZero) {
  GraphDesc desc = two_node_graph();
  Graph graph(desc);
  EXPECT_EQ(time_costs(graph, {{"head", 7.5}}), (std::vector<double>{0, 7.5}));
  EXPECT_EQ(time_costs(graph, {{"embed", 1}, {"head", 2}}), (std::vector<double>{1, 2}));
  try {
    time_costs(graph, {{"something_else", 3}});
    ADD_FAILURE() << "no node matched, yet no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::INTERNAL);
  }
}

TEST(Cost, TimeOfANodeOrtRenamedForItsNchwcLayoutLandsOnTheNodeMakingThatOutput) {
  GraphDesc desc = two_node_graph();  // embed makes h, head makes y
  Graph graph(desc);
  EXPECT_EQ(time_costs(graph, {{"h_nchwc", 4}, {"y_nchwc", 6}, {"ReorderOutput", 1}}), (std::vector<double>{4, 6}));
}

TEST(Cost, TransferCostPerByteByUnit) {
  EXPECT_EQ(transfer_cost_per_byte("bytes"), 1);
  EXPECT_EQ(transfer_cost_per_byte("flops"), 10);
  EXPECT_DOUBLE_EQ(transfer_cost_per_byte("us"), 1e-4);
  try {
    transfer_cost_per_byte("joules");
    ADD_FAILURE() << "unknown unit accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::INTERNAL);
  }
}

}  // namespace
}  // namespace onnxpipe::detail
