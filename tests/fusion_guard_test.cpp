// Which boundaries a fused node blocks, from what an optimised graph keeps; and the partition's respect for blocked
// boundaries, against brute force.
#include "fusion_guard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

#include "partition.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe::detail {
namespace {

// x -> a -> b -> c -> d -> e (Relu chain), plus f = Neg(x) read by e: positions a=0 b=1 c=2 d=3 f=4 e=5 in file
// order (f is listed after d).
struct Chain {
  explicit Chain(const test::TempDir& dir) : model(Model::load(save(dir))), graph(model.graph()) {}
  static std::string save(const test::TempDir& dir) {
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {2});
    b.node("Relu", {"x"}, {"a"});
    b.node("Relu", {"a"}, {"b"});
    b.node("Relu", {"b"}, {"c"});
    b.node("Relu", {"c"}, {"d"});
    b.node("Neg", {"x"}, {"f"});
    b.node("Add", {"d", "f"}, {"e"});
    b.output("e", DType::FLOAT, {2});
    return b.save(dir.file("chain.onnx"));
  }
  Model model;
  Graph graph;
};

TEST(FusionGuard, FusedNodesBlockTheBoundariesTheySpan) {
  const test::TempDir dir;
  const Chain chain(dir);
  const Graph& graph = chain.graph;
  ASSERT_EQ(graph.size(), 6);
  // b vanished into c's node; d and e are outputs of one node (as SkipLayerNormalization makes its sum too); f folded.
  const std::vector<int> fused = fused_groups(graph, {{"a", 0}, {"c", 1}, {"d", 2}, {"e", 2}}, {"f"});
  EXPECT_EQ(fused[1], fused[2]);
  EXPECT_EQ(fused[3], fused[5]);
  EXPECT_NE(fused[0], fused[1]);
  EXPECT_NE(fused[4], fused[3]);
  EXPECT_EQ(blocked_boundaries(graph, fused, fused), (std::vector<char>{0, 0, 1, 0, 1, 1, 0}));
  // Nothing fused: every boundary open.
  const std::vector<int> alone = fused_groups(graph, {{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}, {"e", 4}, {"f", 5}}, {});
  EXPECT_EQ(blocked_boundaries(graph, alone, alone), std::vector<char>(7, 0));
}

// A fusion that does not happen once its result is a graph output (b+c unfused when exposed): c may not cross a cut
// either, so the boundary between c and its reader d is blocked too.
TEST(FusionGuard, FusionsUndoneByExposingTheirResultBlockWhereItCrosses) {
  const test::TempDir dir;
  const Chain chain(dir);
  const std::vector<int> fused = fused_groups(chain.graph, {{"a", 0}, {"c", 1}, {"d", 2}, {"e", 3}, {"f", 4}}, {});
  const std::vector<int> exposed =
      fused_groups(chain.graph, {{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}, {"e", 4}, {"f", 5}}, {});
  EXPECT_EQ(blocked_boundaries(chain.graph, fused, exposed), (std::vector<char>{0, 0, 1, 1, 0, 0, 0}));
}

double piece_cost(const PartitionProblem& problem, int a, int b) {
  double cost = problem.transfer_cost[a];
  for (int i = a; i < b; ++i) cost += problem.node_cost[i];
  return cost;
}

// The least bottleneck over every partition that cuts only at open or forced boundaries.
double brute_force(const PartitionProblem& problem) {
  const int n = static_cast<int>(problem.node_cost.size());
  double best = std::numeric_limits<double>::infinity();
  std::vector<int> starts = {0};
  auto allowed = [&](int b) {
    return !problem.blocked[b] || std::count(problem.forced.begin(), problem.forced.end(), b) > 0;
  };
  auto search = [&](auto&& self, int next) -> void {
    if (static_cast<int>(starts.size()) == problem.parts) {
      starts.push_back(n);
      for (int cut : problem.forced)
        if (!std::binary_search(starts.begin(), starts.end(), cut)) {
          starts.pop_back();
          return;
        }
      double worst = 0;
      for (int j = 0; j < problem.parts; ++j) worst = std::max(worst, piece_cost(problem, starts[j], starts[j + 1]));
      best = std::min(best, worst);
      starts.pop_back();
      return;
    }
    for (int b = next; b < n; ++b) {
      if (!allowed(b)) continue;
      starts.push_back(b);
      self(self, b + 1);
      starts.pop_back();
    }
  };
  search(search, 1);
  return best;
}

TEST(FusionGuard, PartitionNeverCutsABlockedBoundary) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> cost(0, 10);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 3 + trial % 9;
    PartitionProblem problem;
    for (int i = 0; i < n; ++i) problem.node_cost.push_back(cost(rng));
    problem.transfer_cost.assign(n + 1, 0);
    problem.crossing_bytes.assign(n + 1, 0);
    problem.blocked.assign(n + 1, 0);
    for (int b = 1; b < n; ++b) problem.blocked[b] = rng() % 2;
    if (trial % 3 == 0) problem.forced = {1 + int(rng() % (n - 1))};
    int open = 0;
    for (int b = 1; b < n; ++b) open += !problem.blocked[b] || problem.forced == std::vector<int>{b};
    problem.parts = std::max<int>(problem.forced.size() + 1, std::min(open + 1, 2 + int(rng() % 3)));
    const Partition partition = partition_min_max(problem);
    for (size_t j = 1; j + 1 < partition.starts.size(); ++j) {
      const int b = partition.starts[j];
      EXPECT_TRUE(!problem.blocked[b] || problem.forced == std::vector<int>{b}) << "trial " << trial << " cut " << b;
    }
    // Prefix sums and the brute force add in another order: equal up to rounding.
    EXPECT_NEAR(partition.max_cost, brute_force(problem), 1e-9 * partition.max_cost) << "trial " << trial;

    // The same under caps (unbounded, one speed): the same bottleneck.
    PlacementProblem placement;
    placement.node_cost.assign(problem.parts, problem.node_cost);
    placement.transfer_cost = problem.transfer_cost;
    placement.crossing_bytes = problem.crossing_bytes;
    placement.forced = problem.forced;
    placement.blocked = problem.blocked;
    placement.memory.weights_read.assign(n, {});
    placement.memory.live.assign(n, 0);
    placement.memory.overhead.assign(problem.parts, 0);
    placement.capacity.assign(problem.parts, -1);
    const PlacedPartition placed = partition_under_caps(placement);
    ASSERT_TRUE(placed.feasible);
    EXPECT_NEAR(placed.partition.max_cost, partition.max_cost, 1e-9 * partition.max_cost) << "trial " << trial;
  }
}

// With fewer open boundaries than cuts needed, the blocks yield: a split that rounds differently beats none.
TEST(FusionGuard, BlocksYieldWhenTooFewBoundariesStayOpen) {
  PartitionProblem problem;
  problem.node_cost = {1, 1, 1, 1};
  problem.transfer_cost.assign(5, 0);
  problem.crossing_bytes.assign(5, 0);
  problem.blocked = {0, 1, 1, 1, 0};
  problem.parts = 2;
  EXPECT_EQ(partition_min_max(problem).starts, (std::vector<int>{0, 2, 4}));
  problem.blocked = {0, 0, 1, 1, 0};
  EXPECT_EQ(partition_min_max(problem).starts, (std::vector<int>{0, 1, 4}));
}

}  // namespace
}  // namespace onnxpipe::detail
