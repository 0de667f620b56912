// Graph on GraphDesc structs built in code: order, producers and readers, crossing sets, weights.
#include "graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {
namespace {

NodeDesc node(const std::string& name, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
              const std::string& op = "Op") {
  NodeDesc desc;
  desc.name = name;
  desc.op_type = op;
  desc.inputs = inputs;
  desc.outputs = outputs;
  return desc;
}

ValueDesc value(const std::string& name) {
  ValueDesc desc;
  desc.name = name;
  return desc;
}

GraphDesc graph_desc(const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                     const std::vector<NodeDesc>& nodes) {
  GraphDesc desc;
  for (const auto& name : inputs) desc.inputs.push_back(value(name));
  for (const auto& name : outputs) desc.outputs.push_back(value(name));
  desc.nodes = nodes;
  return desc;
}

void add_weight(GraphDesc& desc, const std::string& name, int64_t bytes, int constant_node = -1) {
  WeightDesc weight;
  weight.name = name;
  weight.bytes = bytes;
  weight.constant_node = constant_node;
  desc.weights[name] = weight;
}

std::vector<std::string> node_names(const Graph& graph) {
  std::vector<std::string> names;
  for (int index : graph.order()) names.push_back(graph.desc().nodes[index].name);
  return names;
}

// The error a construction throws, or a failure when it does not throw.
Error graph_error(const GraphDesc& desc) {
  try {
    Graph graph(desc);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "Graph accepted an invalid model";
  return Error(ErrorCode::INTERNAL, "no error");
}

using Names = std::vector<std::string>;

TEST(Graph, OrderKeepsFileOrderWhenItIsTopological) {
  GraphDesc desc = graph_desc(
      {"x"}, {"d"},
      {node("a", {"x"}, {"ta"}), node("b", {"x"}, {"tb"}), node("c", {"ta", "tb"}, {"tc"}), node("d", {"tc"}, {"d"})});
  Graph graph(desc);
  EXPECT_EQ(graph.order(), (std::vector<int>{0, 1, 2, 3}));
}

TEST(Graph, OrderSortsUnsortedNodesAndPrefersEarlierFileIndex) {
  // File order: n0 needs n2's output, n2 needs n1's; n3 is independent and stays behind the others it follows.
  GraphDesc desc = graph_desc(
      {"x"}, {"out", "u"},
      {node("n0", {"t2"}, {"out"}), node("n1", {"x"}, {"t1"}), node("n2", {"t1"}, {"t2"}), node("n3", {"x"}, {"u"})});
  Graph graph(desc);
  EXPECT_EQ(node_names(graph), (Names{"n1", "n2", "n0", "n3"}));
  EXPECT_EQ(graph.producer_position("t2"), 1);
  EXPECT_EQ(graph.producer_position("out"), 2);
  EXPECT_EQ(graph.producer_position("x"), -1);
}

TEST(Graph, DetectsCycleAndNamesANodeOnIt) {
  GraphDesc desc =
      graph_desc({"x"}, {"c2"},
                 {node("before", {"x"}, {"p"}), node("loop_a", {"p", "c2"}, {"c1"}), node("loop_b", {"c1"}, {"c2"})});
  Error error = graph_error(desc);
  EXPECT_EQ(error.code(), ErrorCode::INVALID_MODEL);
  std::string message = error.what();
  EXPECT_TRUE(message == "graph has a cycle through node 'loop_a'" ||
              message == "graph has a cycle through node 'loop_b'")
      << message;
}

TEST(Graph, DetectsNodeReadingItsOwnOutput) {
  GraphDesc desc = graph_desc({"x"}, {"y"}, {node("self", {"x", "y"}, {"y"})});
  Error error = graph_error(desc);
  EXPECT_EQ(error.code(), ErrorCode::INVALID_MODEL);
  EXPECT_STREQ(error.what(), "graph has a cycle through node 'self'");
}

TEST(Graph, DetectsInputNobodyProvides) {
  GraphDesc desc = graph_desc({"x"}, {"y"}, {node("a", {"x"}, {"t"}), node("b", {"t", "ghost"}, {"y"})});
  Error error = graph_error(desc);
  EXPECT_EQ(error.code(), ErrorCode::INVALID_MODEL);
  EXPECT_STREQ(error.what(), "node 'b' reads 'ghost', which no node, graph input or weight provides");
}

TEST(Graph, DetectsImplicitInputNobodyProvides) {
  NodeDesc branch = node("if", {"cond"}, {"y"}, "If");
  branch.implicit_inputs = {"outer"};
  branch.has_subgraph = true;
  Error error = graph_error(graph_desc({"cond"}, {"y"}, {branch}));
  EXPECT_EQ(error.code(), ErrorCode::INVALID_MODEL);
  EXPECT_STREQ(error.what(), "node 'if' reads 'outer', which no node, graph input or weight provides");
}

TEST(Graph, DetectsValueProducedTwice) {
  GraphDesc twice = graph_desc({"x"}, {"t"}, {node("a", {"x"}, {"t"}), node("b", {"x"}, {"t"})});
  EXPECT_EQ(graph_error(twice).code(), ErrorCode::INVALID_MODEL);
  GraphDesc overwrites_input = graph_desc({"x"}, {"x"}, {node("a", {"x"}, {"x"})});
  EXPECT_EQ(graph_error(overwrites_input).code(), ErrorCode::INVALID_MODEL);
  GraphDesc overwrites_weight = graph_desc({"x"}, {"w"}, {node("a", {"x"}, {"w"})});
  add_weight(overwrites_weight, "w", 4);
  EXPECT_EQ(graph_error(overwrites_weight).code(), ErrorCode::INVALID_MODEL);
}

TEST(Graph, ImplicitInputsMakeIfWaitForOuterValues) {
  NodeDesc branch = node("if", {"cond"}, {"y"}, "If");
  branch.implicit_inputs = {"h", "w"};  // read inside its branches only
  branch.has_subgraph = true;
  GraphDesc desc = graph_desc({"cond", "x"}, {"y"}, {branch, node("make_h", {"x"}, {"h"})});
  add_weight(desc, "w", 64);
  Graph graph(desc);
  EXPECT_EQ(node_names(graph), (Names{"make_h", "if"}));
  EXPECT_EQ(graph.reads(1), (Names{"cond", "h"}));
  EXPECT_EQ(graph.weights_read(1), (Names{"w"}));
  EXPECT_EQ(graph.last_reader("h"), 1);
  EXPECT_EQ(graph.crossing(1), (Names{"cond", "h"}));
}

TEST(Graph, ReadsAreUniqueAndSkipOmittedInputs) {
  GraphDesc desc = graph_desc({"x"}, {"y"}, {node("square", {"x", "x", "", "w", "w"}, {"y", ""})});
  add_weight(desc, "w", 8);
  Graph graph(desc);
  EXPECT_EQ(graph.reads(0), (Names{"x"}));
  EXPECT_EQ(graph.weights_read(0), (Names{"w"}));
}

TEST(Graph, CrossingSetsFollowSkipConnections) {
  // x -> a -> b -> c = f(b, a): a skips over b.
  GraphDesc desc =
      graph_desc({"x"}, {"c"}, {node("na", {"x"}, {"a"}), node("nb", {"a"}, {"b"}), node("nc", {"b", "a"}, {"c"})});
  Graph graph(desc);
  EXPECT_EQ(graph.crossing(0), (Names{"x"}));
  EXPECT_EQ(graph.crossing(1), (Names{"a"}));
  EXPECT_EQ(graph.crossing(2), (Names{"a", "b"}));
  EXPECT_EQ(graph.crossing(3), (Names{}));
  EXPECT_EQ(graph.last_reader("a"), 2);
  EXPECT_EQ(graph.last_reader("c"), -1);
}

TEST(Graph, MaskReadByEveryBlockCrossesEveryBoundary) {
  const int blocks = 6;
  std::vector<NodeDesc> nodes = {node("embed", {"ids"}, {"h0"})};
  for (int i = 1; i <= blocks; ++i)
    nodes.push_back(
        node("block" + std::to_string(i), {"h" + std::to_string(i - 1), "mask"}, {"h" + std::to_string(i)}));
  Graph graph(graph_desc({"ids", "mask"}, {"h" + std::to_string(blocks)}, nodes));
  ASSERT_EQ(graph.size(), blocks + 1);
  EXPECT_EQ(graph.crossing(0), (Names{"ids", "mask"}));
  for (int k = 1; k <= blocks; ++k)
    EXPECT_EQ(graph.crossing(k), (Names{"mask", "h" + std::to_string(k - 1)})) << "boundary " << k;
  EXPECT_EQ(graph.crossing(blocks + 1), (Names{}));
}

TEST(Graph, GraphOutputsCrossOnlyWhenALaterNodeReadsThem) {
  // "early" is an extra graph output nobody reads; "mid" is a graph output the last node reads.
  GraphDesc desc = graph_desc({"x"}, {"early", "mid", "y"},
                              {node("a", {"x"}, {"early", "t"}), node("b", {"t"}, {"mid"}), node("c", {"mid"}, {"y"})});
  Graph graph(desc);
  for (int k = 0; k <= graph.size(); ++k) {
    Names crossing = graph.crossing(k);
    EXPECT_EQ(std::count(crossing.begin(), crossing.end(), "early"), 0) << "boundary " << k;
  }
  EXPECT_EQ(graph.crossing(2), (Names{"mid"}));
  EXPECT_EQ(graph.last_reader("early"), -1);
}

TEST(Graph, CrossingBytesEqualsSummingCrossingSizes) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 20; ++trial) {
    // A random DAG: each node reads 1-3 earlier values (graph inputs included), listed in shuffled file order.
    std::vector<std::string> values = {"in0", "in1"};
    std::vector<NodeDesc> nodes;
    const int count = 5 + static_cast<int>(random() % 30);
    for (int i = 0; i < count; ++i) {
      std::vector<std::string> inputs;
      int reads = 1 + static_cast<int>(random() % 3);
      for (int r = 0; r < reads; ++r) inputs.push_back(values[random() % values.size()]);
      std::string output = "v" + std::to_string(i);
      nodes.push_back(node("n" + std::to_string(i), inputs, {output}));
      values.push_back(output);
    }
    std::shuffle(nodes.begin(), nodes.end(), random);
    GraphDesc desc = graph_desc({"in0", "in1"}, {values.back()}, nodes);
    Graph graph(desc);
    std::unordered_map<std::string, int64_t> bytes;
    for (const auto& name : values)
      if (random() % 5 != 0) bytes[name] = 1 + static_cast<int64_t>(random() % 1000);  // some stay unknown

    std::vector<int64_t> fast = graph.crossing_bytes(bytes);
    ASSERT_EQ(fast.size(), static_cast<size_t>(graph.size() + 1));
    for (int k = 0; k <= graph.size(); ++k) {
      int64_t expected = 0;
      for (const auto& name : graph.crossing(k)) expected += bytes.count(name) ? bytes.at(name) : 0;
      EXPECT_EQ(fast[k], expected) << "trial " << trial << ", boundary " << k;
    }
  }
}

TEST(Graph, ConstantWeightsAreNotInTheOrder) {
  NodeDesc constant = node("const", {}, {"w"}, "Constant");
  GraphDesc desc = graph_desc({"x"}, {"y"}, {constant, node("mm", {"x", "w"}, {"y"}, "MatMul")});
  add_weight(desc, "w", 400, 0);
  Graph graph(desc);
  EXPECT_EQ(node_names(graph), (Names{"mm"}));
  EXPECT_TRUE(graph.is_weight("w"));
  EXPECT_EQ(graph.reads(0), (Names{"x"}));
  EXPECT_EQ(graph.weights_read(0), (Names{"w"}));
  EXPECT_EQ(graph.crossing(0), (Names{"x"}));
}

TEST(Graph, ConstantThatIsAGraphOutputIsAComputeNode) {
  NodeDesc constant = node("const", {}, {"k"}, "Constant");
  GraphDesc desc = graph_desc({"x"}, {"y", "k"}, {node("a", {"x", "k"}, {"y"}), constant});
  add_weight(desc, "k", 16, 1);
  Graph graph(desc);
  EXPECT_EQ(node_names(graph), (Names{"const", "a"}));
  EXPECT_FALSE(graph.is_weight("k"));
  EXPECT_EQ(graph.producer_position("k"), 0);
  EXPECT_EQ(graph.reads(1), (Names{"x", "k"}));
  EXPECT_TRUE(graph.weights_read(1).empty());
  EXPECT_EQ(graph.crossing(1), (Names{"x", "k"}));
}

// Nodes that read only weights (a shape) and each other are run again by their readers: not in the order, never
// crossing; their weights count as read by the reader.
TEST(Graph, CheapChainOverWeightsIsRecomputedByEachReader) {
  GraphDesc desc =
      graph_desc({"x"}, {"y"},
                 {node("fill", {"shape"}, {"zeros"}, "ConstantOfShape"), node("cast", {"zeros"}, {"bias"}, "Cast"),
                  node("empty", {}, {"seq"}, "SequenceEmpty"), node("a", {"x", "bias"}, {"h"}, "Add"),
                  node("relu", {"h"}, {"h2"}, "Relu"), node("b", {"h2", "bias", "seq"}, {"y"}, "Op")});
  add_weight(desc, "shape", 16);
  Graph graph(desc);
  EXPECT_EQ(node_names(graph), (Names{"a", "relu", "b"}));
  EXPECT_EQ(graph.reads(0), (Names{"x"}));
  EXPECT_EQ(graph.weights_read(0), (Names{"shape"}));
  EXPECT_EQ(graph.recomputed(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(graph.recomputed(2), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(graph.recomputed(1).empty());
  EXPECT_TRUE(graph.is_recomputed("bias"));
  EXPECT_TRUE(graph.is_recomputed("seq"));
  EXPECT_FALSE(graph.is_recomputed("h"));
  for (int k = 0; k <= graph.size(); ++k) {
    Names crossing = graph.crossing(k);
    EXPECT_EQ(std::count(crossing.begin(), crossing.end(), "bias"), 0);
    EXPECT_EQ(std::count(crossing.begin(), crossing.end(), "seq"), 0);
  }
  EXPECT_EQ(graph.value_names(), (Names{"h", "h2", "x", "y"}));
}

// Random ops would draw other numbers in each copy, a custom domain may hide state, a node reading a graph input is
// not a constant, a graph output leaves from one piece, heavy ops cost more than the transfer they save.
TEST(Graph, RandomCustomHeavyAndInputReadingNodesAreNotRecomputed) {
  NodeDesc custom = node("custom", {}, {"c"}, "Counter");
  custom.domain = "com.example";
  GraphDesc desc = graph_desc(
      {"x"}, {"y", "k"},
      {node("noise", {}, {"n"}, "RandomNormal"), custom, node("shape", {"x"}, {"s"}, "Shape"),
       node("k", {}, {"k"}, "ConstantOfShape"), node("mm", {"w", "w"}, {"m"}, "MatMul"),
       node("bern", {"w"}, {"bits"}, "Bernoulli"), node("y", {"n", "c", "s", "m", "bits", "k"}, {"y"}, "Op")});
  add_weight(desc, "w", 16);
  Graph graph(desc);
  EXPECT_EQ(graph.size(), 7);
  for (int position = 0; position < graph.size(); ++position) EXPECT_TRUE(graph.recomputed(position).empty());
}

TEST(CheapAndPure, RefusesRandomOpsAndOtherDomains) {
  EXPECT_TRUE(cheap_and_pure(node("e", {}, {"e"}, "EyeLike")));
  for (const char* op : {"RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Multinomial",
                         "Bernoulli", "Dropout"})
    EXPECT_FALSE(cheap_and_pure(node("r", {}, {"r"}, op))) << op;
  NodeDesc ms = node("m", {}, {"m"}, "Range");
  ms.domain = "com.microsoft";
  EXPECT_FALSE(cheap_and_pure(ms));
  NodeDesc loop = node("l", {}, {"l"}, "Loop");
  loop.has_subgraph = true;
  EXPECT_FALSE(cheap_and_pure(loop));
}

TEST(Graph, SharedWeightIsReadByEachNodeAndNeverCrosses) {
  GraphDesc desc = graph_desc({"ids"}, {"logits"},
                              {node("embed", {"wte", "ids"}, {"h"}, "Gather"), node("block", {"h"}, {"h2"}),
                               node("head", {"h2", "wte"}, {"logits"}, "MatMul")});
  add_weight(desc, "wte", 1000);
  Graph graph(desc);
  EXPECT_EQ(graph.weights_read(0), (Names{"wte"}));
  EXPECT_EQ(graph.weights_read(2), (Names{"wte"}));
  for (int k = 0; k <= graph.size(); ++k) {
    Names crossing = graph.crossing(k);
    EXPECT_EQ(std::count(crossing.begin(), crossing.end(), "wte"), 0);
  }
  EXPECT_TRUE(graph.is_graph_input("ids"));
  EXPECT_FALSE(graph.is_graph_input("wte"));
}

TEST(Graph, BoundaryAfterIsRightAfterTheProducer) {
  GraphDesc desc =
      graph_desc({"x"}, {"c"}, {node("b", {"a"}, {"b"}), node("a", {"x", "w"}, {"a"}), node("c", {"b"}, {"c"})});
  add_weight(desc, "w", 4);
  Graph graph(desc);
  EXPECT_EQ(graph.boundary_after("a"), 1);
  EXPECT_EQ(graph.boundary_after("b"), 2);
  for (std::string name : {"x", "w", "nope"}) {
    try {
      graph.boundary_after(name);
      ADD_FAILURE() << name << " accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::USAGE);
      EXPECT_EQ(std::string(error.what()).rfind("cut at '" + name + "': no node produces it", 0), 0u) << error.what();
    }
  }
}

TEST(Graph, HundredThousandNodeChainWithSkipCompletes) {
  // Listed in reverse file order so the heap does all the sorting; the last node also reads the first output.
  const int count = 100000;
  GraphDesc desc;
  desc.inputs.push_back(value("x"));
  desc.outputs.push_back(value("t" + std::to_string(count - 1)));
  std::unordered_map<std::string, int64_t> bytes = {{"x", 4}};
  for (int i = count - 1; i >= 0; --i) {
    std::vector<std::string> inputs = {i == 0 ? "x" : "t" + std::to_string(i - 1)};
    if (i == count - 1) inputs.push_back("t0");
    desc.nodes.push_back(node("n" + std::to_string(i), inputs, {"t" + std::to_string(i)}));
    bytes["t" + std::to_string(i)] = 4;
  }
  Graph graph(desc);
  ASSERT_EQ(graph.size(), count);
  EXPECT_EQ(graph.desc().nodes[graph.order().front()].name, "n0");
  std::vector<int64_t> crossing = graph.crossing_bytes(bytes);
  EXPECT_EQ(crossing[0], 4);  // x
  EXPECT_EQ(crossing[1], 4);  // t0
  EXPECT_EQ(crossing[2], 8);  // t0 (the skip) and t1
  EXPECT_EQ(crossing[count / 2], 8);
  EXPECT_EQ(crossing[count], 0);  // the graph output leaves from the last node
  EXPECT_EQ(graph.crossing(count - 1), (Names{"t0", "t" + std::to_string(count - 2)}));
}

TEST(StableTopologicalOrder, KeepsIndexOrderWhereValidAndMovesOnlyWhatMustWait) {
  // 0 must follow 2; 1 and 3 are free: the lowest ready index is taken each time.
  EXPECT_EQ(stable_topological_order({{2}, {}, {}, {}}), (std::vector<int>{1, 2, 0, 3}));
  EXPECT_EQ(stable_topological_order({{}, {0}, {0, 0, 1}}), (std::vector<int>{0, 1, 2}));  // repeats allowed
}

TEST(StableTopologicalOrder, LeavesOutSkippedNodesAndCyclesWithWhatFollowsThem) {
  EXPECT_EQ(stable_topological_order({{}, {}, {}}, {0, 1, 0}), (std::vector<int>{0, 2}));
  // 1 and 2 wait on each other, 3 follows 2; 0 and 4 are free.
  EXPECT_EQ(stable_topological_order({{}, {2}, {1}, {2}, {}}), (std::vector<int>{0, 4}));
  EXPECT_EQ(stable_topological_order({{0}}), std::vector<int>{});  // a node that reads itself
}

}  // namespace
}  // namespace onnxpipe::detail
