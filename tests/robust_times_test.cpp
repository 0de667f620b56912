// Robust node times: shares per run cancel a machine that changes speed between runs, medians drop preempted runs,
// the noise estimate sees what changes between rounds, and the tie band keeps the same cuts from one noisy measurement
// to the next.
#include "robust_times.h"

#include <gtest/gtest.h>

#include <random>

#include "partition.h"

namespace onnxpipe::detail {
namespace {

TEST(RobustTimes, SigmaIsTheScaledMedianAbsoluteDeviation) {
  EXPECT_DOUBLE_EQ(robust_sigma({1, 2, 3, 4, 100}), 1.4826);  // deviations from 3: 2 1 0 1 97, median 1
  EXPECT_DOUBLE_EQ(robust_sigma({5, 5, 5}), 0);
  EXPECT_DOUBLE_EQ(robust_sigma({7}), 0);
}

TEST(RobustTimes, NodeCostsCancelSpeedChangesAndIgnoreAPreemptedRun) {
  const std::vector<double> base = {10, 20, 30};
  RunTimes runs;
  for (double speed : {1.0, 1.15, 0.85}) runs.push_back({base[0] * speed, base[1] * speed, base[2] * speed});
  runs.push_back({10, 120, 30});  // node 1 preempted in this run
  const std::vector<double> costs = robust_node_costs({runs});
  ASSERT_EQ(costs.size(), 3u);
  EXPECT_NEAR(costs[1] / costs[0], 2.0, 1e-12);
  EXPECT_NEAR(costs[2] / costs[0], 3.0, 1e-12);
  EXPECT_TRUE(robust_node_costs({}).empty());
}

TEST(RobustTimes, RoundNoiseSeesWhatChangesBetweenRounds) {
  const RunTimes round = {{10, 20, 30}, {11, 22, 33}};
  EXPECT_DOUBLE_EQ(round_noise({round}, {0, 2, 3}), 0);          // one round tells nothing of the next
  EXPECT_DOUBLE_EQ(round_noise({round, round}, {0, 2, 3}), 0);   // nor do rounds alike
  const RunTimes slower_first = {{12, 20, 30}, {13.2, 22, 33}};  // node 0 slowed down in this window
  EXPECT_GT(round_noise({round, slower_first}, {0, 2, 3}), 0.01);
  EXPECT_EQ(pooled({round, slower_first}).size(), 4u);
}

TEST(RobustTimes, PieceScaleMakesEachPieceSumToItsMeasuredTime) {
  const std::vector<double> costs = {10, 30, 20, 20};
  const std::vector<double> scale = piece_scale(costs, {0, 2, 4}, {80, 20});
  EXPECT_EQ(scale, (std::vector<double>{2, 2, 0.5, 0.5}));
  EXPECT_EQ(piece_scale(costs, {0, 2, 4}, {0, 20}).front(), 1.0);  // nothing measured: unchanged
}

TEST(RobustTimes, TieToleranceIsTwiceTheNoiseWithinItsBounds) {
  EXPECT_DOUBLE_EQ(tie_tolerance(0), kMinTieTolerance);
  EXPECT_DOUBLE_EQ(tie_tolerance(0.015), 0.03);
  EXPECT_DOUBLE_EQ(tie_tolerance(0.2), kMaxTieTolerance);
}

TEST(RobustTimes, CutIsCloseWhenTheChoiceSitsAtTheBandsTopOrJustOutside) {
  // A solver whose answer changes at tolerance 0.05 and whose band pick costs `chosen` (relative to optimum 1).
  auto solver = [](double chosen) {
    return [chosen](double tolerance) {
      return tolerance < 0.05 ? Solved{{0, 5, 10}, chosen} : Solved{{0, 4, 10}, 1.0};
    };
  };
  EXPECT_FALSE(cut_is_close(solver(1.0), 1.0, 0.001));   // band 0.02 (+0.002): well inside, nothing outside near
  EXPECT_TRUE(cut_is_close(solver(1.0), 1.0, 0.013));    // band 0.026 widened by 0.026 reaches the other cut
  EXPECT_TRUE(cut_is_close(solver(1.019), 1.0, 0.001));  // the pick sits at the band's top
  EXPECT_FALSE(cut_is_close(solver(1.01), 1.0, 0.001));
}

// Six heavy nodes with a light one between each two (H L H L ... H), split in 3: cutting before or after a light node
// changes the bottleneck by about the light node's time, less than the noise of a heavy one, so the exact optimum
// follows the noise; after a light node few bytes cross (after a heavy one, many). Measured five times under ±15%
// speed changes between runs, 5% jitter per node and a preempted run, the tie band holds the same cuts each time,
// after light nodes, within the band of the optimum.
TEST(RobustTimes, TieBandKeepsTheSameCutsAcrossNoisyMeasurements) {
  const int n = 11;
  PartitionProblem problem;
  problem.parts = 3;
  problem.transfer_cost.assign(n + 1, 0.0);
  for (int b = 0; b <= n; ++b) problem.crossing_bytes.push_back(b % 2 == 0 ? 1000 : 3000);  // b even: after a light
  std::vector<std::vector<int>> banded, exact;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::mt19937 random(seed);
    std::normal_distribution<double> jitter(1.0, 0.05);
    std::uniform_real_distribution<double> speed(0.85, 1.15);
    RunTimes runs;
    for (int r = 0; r < 20; ++r) {
      const double s = speed(random);
      std::vector<double> run;
      for (int i = 0; i < n; ++i)
        run.push_back((i % 2 == 0 ? 100 : 1) * s * jitter(random) * (r == 3 && i == 4 ? 5 : 1));
      runs.push_back(std::move(run));
    }
    const std::vector<RunTimes> rounds = {RunTimes(runs.begin(), runs.begin() + 10),
                                          RunTimes(runs.begin() + 10, runs.end())};
    problem.node_cost = robust_node_costs(rounds);
    problem.tie_tolerance = PartitionProblem().tie_tolerance;
    const Partition best = partition_min_max(problem);
    exact.push_back(best.starts);
    problem.tie_tolerance = tie_tolerance(round_noise(rounds, best.starts));
    const Partition chosen = partition_min_max(problem);
    EXPECT_LE(chosen.max_cost, best.max_cost * (1 + problem.tie_tolerance));
    banded.push_back(chosen.starts);
  }
  for (const auto& starts : banded) EXPECT_EQ(starts, (std::vector<int>{0, 4, 8, 11}));
  bool exact_wanders = false;
  for (const auto& starts : exact) exact_wanders = exact_wanders || starts != exact.front();
  EXPECT_TRUE(exact_wanders) << "the exact optimum should follow the noise here, else this test shows nothing";
}

}  // namespace
}  // namespace onnxpipe::detail
