// partition_min_max: optimal bottleneck, tie-break on crossing bytes, forced cuts, errors. partition_under_caps: the
// same with per-stage speeds and memory capacities, against brute force.
#include "partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <random>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {
namespace {

PartitionProblem problem_of(std::vector<double> node_cost, int parts) {
  PartitionProblem problem;
  problem.transfer_cost.assign(node_cost.size() + 1, 0);
  problem.crossing_bytes.assign(node_cost.size() + 1, 0);
  problem.node_cost = std::move(node_cost);
  problem.parts = parts;
  return problem;
}

double piece_cost(const PartitionProblem& problem, int a, int b) {
  double cost = problem.transfer_cost[a];
  for (int i = a; i < b; ++i) cost += problem.node_cost[i];
  return cost;
}

// Checks the partition's own consistency: boundaries, forced cuts, reported costs and bytes.
void expect_consistent(const PartitionProblem& problem, const Partition& partition) {
  const int n = static_cast<int>(problem.node_cost.size());
  ASSERT_EQ(partition.starts.size(), static_cast<size_t>(problem.parts + 1));
  EXPECT_EQ(partition.starts.front(), 0);
  EXPECT_EQ(partition.starts.back(), n);
  for (int j = 0; j < problem.parts; ++j) EXPECT_LT(partition.starts[j], partition.starts[j + 1]);
  for (int cut : problem.forced)
    EXPECT_TRUE(std::binary_search(partition.starts.begin(), partition.starts.end(), cut)) << "forced " << cut;
  ASSERT_EQ(partition.piece_cost.size(), static_cast<size_t>(problem.parts));
  double max_cost = 0;
  int64_t bytes = 0;
  for (int j = 0; j < problem.parts; ++j) {
    double expected = piece_cost(problem, partition.starts[j], partition.starts[j + 1]);
    EXPECT_NEAR(partition.piece_cost[j], expected, 1e-9 * std::max(1.0, expected));
    max_cost = std::max(max_cost, partition.piece_cost[j]);
    if (j > 0) bytes += problem.crossing_bytes[partition.starts[j]];
  }
  EXPECT_EQ(partition.max_cost, max_cost);
  EXPECT_EQ(partition.cut_bytes, bytes);
}

struct BruteForce {
  double max_cost = std::numeric_limits<double>::infinity();
  int64_t cut_bytes = 0;
};

// Every set of parts-1 inner boundaries that contains the forced cuts.
BruteForce brute_force(const PartitionProblem& problem) {
  const int n = static_cast<int>(problem.node_cost.size());
  std::vector<std::pair<double, int64_t>> candidates;
  for (uint32_t mask = 0; mask < (1u << (n - 1)); ++mask) {
    std::vector<int> starts = {0};
    for (int b = 1; b < n; ++b)
      if (mask & (1u << (b - 1))) starts.push_back(b);
    starts.push_back(n);
    if (static_cast<int>(starts.size()) != problem.parts + 1) continue;
    bool forced_ok = true;
    for (int cut : problem.forced) forced_ok = forced_ok && std::binary_search(starts.begin(), starts.end(), cut);
    if (!forced_ok) continue;
    double max_cost = 0;
    int64_t bytes = 0;
    for (int j = 0; j < problem.parts; ++j) {
      max_cost = std::max(max_cost, piece_cost(problem, starts[j], starts[j + 1]));
      if (j > 0) bytes += problem.crossing_bytes[starts[j]];
    }
    candidates.emplace_back(max_cost, bytes);
  }
  BruteForce best;
  for (const auto& [max_cost, bytes] : candidates) best.max_cost = std::min(best.max_cost, max_cost);
  best.cut_bytes = std::numeric_limits<int64_t>::max();
  for (const auto& [max_cost, bytes] : candidates)
    if (max_cost <= best.max_cost * (1 + 1e-9)) best.cut_bytes = std::min(best.cut_bytes, bytes);
  return best;
}

// A random instance; integer costs make exact ties common, so the tie-break is exercised.
PartitionProblem random_problem(std::mt19937& random, int n, int parts, bool integer_costs) {
  auto cost = [&](int range) {
    double x = std::uniform_real_distribution<double>(0, range)(random);
    return integer_costs ? std::floor(x) : x;
  };
  PartitionProblem problem;
  problem.parts = parts;
  for (int i = 0; i < n; ++i) problem.node_cost.push_back(cost(10));
  for (int k = 0; k <= n; ++k) {
    problem.crossing_bytes.push_back(static_cast<int64_t>(random() % 6));
    problem.transfer_cost.push_back(random() % 3 == 0 ? cost(6) : 0);
  }
  // Up to parts-1 forced cuts, ascending, strictly inside (0, n).
  std::vector<int> inner;
  for (int b = 1; b < n; ++b) inner.push_back(b);
  std::shuffle(inner.begin(), inner.end(), random);
  int forced = std::min<int>(static_cast<int>(random() % 3), parts - 1);
  problem.forced.assign(inner.begin(), inner.begin() + std::min<int>(forced, static_cast<int>(inner.size())));
  std::sort(problem.forced.begin(), problem.forced.end());
  return problem;
}

ErrorCode error_code_of(const PartitionProblem& problem, std::string* message = nullptr) {
  try {
    partition_min_max(problem);
  } catch (const Error& error) {
    if (message) *message = error.what();
    return error.code();
  }
  ADD_FAILURE() << "partition_min_max accepted an invalid problem";
  return ErrorCode::INTERNAL;
}

TEST(Partition, BottleneckIsOptimalOnChain) {
  PartitionProblem problem = problem_of({1, 1, 1, 1, 1, 1}, 3);
  Partition partition = partition_min_max(problem);
  expect_consistent(problem, partition);
  EXPECT_EQ(partition.starts, (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(partition.max_cost, 2);
}

TEST(Partition, HeavyNodeBoundsTheBottleneck) {
  PartitionProblem problem = problem_of({1, 1, 10, 1, 1}, 3);
  Partition partition = partition_min_max(problem);
  expect_consistent(problem, partition);
  EXPECT_EQ(partition.max_cost, 10);
}

TEST(Partition, OnePieceAndOnePiecePerNode) {
  PartitionProblem whole = problem_of({3, 4, 5}, 1);
  whole.transfer_cost[0] = 2;
  Partition one = partition_min_max(whole);
  EXPECT_EQ(one.starts, (std::vector<int>{0, 3}));
  EXPECT_EQ(one.max_cost, 14);  // the first piece pays for receiving the graph inputs too
  PartitionProblem each = problem_of({3, 4, 5}, 3);
  EXPECT_EQ(partition_min_max(each).starts, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Partition, TransferCostCountsInTheBottleneck) {
  // Cutting in the middle would balance compute, but the piece after it must receive a large crossing set.
  PartitionProblem problem = problem_of({1, 1, 1, 1}, 2);
  problem.transfer_cost = {0, 0, 10, 0, 0};
  Partition partition = partition_min_max(problem);
  expect_consistent(problem, partition);
  EXPECT_EQ(partition.max_cost, 3);
  EXPECT_NE(partition.starts[1], 2);
}

TEST(Partition, TieBreakPrefersFewerCrossingBytes) {
  // Cuts at 1, 2 and 3 all give a bottleneck of 1; boundary 2 carries the fewest bytes.
  PartitionProblem problem = problem_of({1, 0, 0, 1}, 2);
  problem.crossing_bytes = {0, 50, 10, 30, 0};
  Partition partition = partition_min_max(problem);
  expect_consistent(problem, partition);
  EXPECT_EQ(partition.starts, (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(partition.cut_bytes, 10);
}

TEST(Partition, ComparableBytesKeepSevenSignificantBits) {
  for (int64_t bytes : {0, 1, 64, 127}) EXPECT_EQ(comparable_bytes(bytes), bytes);
  EXPECT_EQ(comparable_bytes(24576), 24576);
  EXPECT_EQ(comparable_bytes(24640), 24576);  // GPT-2: a residual cut with its 64-byte mask beside one without
  EXPECT_EQ(comparable_bytes(49152), 49152);
  int64_t previous = 0;
  for (int64_t bytes = 0; bytes < 100000; bytes += 37) {
    EXPECT_GE(comparable_bytes(bytes), previous);
    EXPECT_LE(std::abs(comparable_bytes(bytes) - bytes), std::max<int64_t>(1, bytes / 128));
    previous = comparable_bytes(bytes);
  }
}

TEST(Partition, TieBreakIgnoresByteDifferencesBelowTheirResolution) {
  // All three cuts lie in the band; boundary 3 carries 64 bytes fewer than the others, less than the bytes'
  // resolution, so the even cut at 2 wins. 20000 bytes at boundary 3 is a real difference and wins.
  PartitionProblem problem = problem_of({2, 1, 1, 2}, 2);
  problem.tie_tolerance = 0.34;
  problem.crossing_bytes = {0, 24640, 24640, 24576, 0};
  EXPECT_EQ(partition_min_max(problem).starts, (std::vector<int>{0, 2, 4}));
  problem.crossing_bytes[3] = 20000;
  const Partition partition = partition_min_max(problem);
  EXPECT_EQ(partition.starts, (std::vector<int>{0, 3, 4}));
  EXPECT_EQ(partition.cut_bytes, 20000);  // reported exactly
}

TEST(Partition, CostedPartitionMatchesTheSolversCosts) {
  std::mt19937 random(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + static_cast<int>(random() % 30);
    PartitionProblem problem = random_problem(random, n, 1 + static_cast<int>(random() % std::min(4, n)), false);
    const Partition solved = partition_min_max(problem);
    const Partition costed = costed_partition(problem, solved.starts);
    expect_consistent(problem, costed);
    EXPECT_NEAR(costed.max_cost, solved.max_cost, 1e-9 * std::max(1.0, solved.max_cost));
    EXPECT_EQ(costed.cut_bytes, solved.cut_bytes);
  }
}

TEST(Partition, ForcedCutsAreHonoured) {
  PartitionProblem problem = problem_of({1, 1, 1, 1, 1, 1, 1, 1}, 2);
  problem.forced = {1};
  Partition forced_only = partition_min_max(problem);
  EXPECT_EQ(forced_only.starts, (std::vector<int>{0, 1, 8}));
  EXPECT_EQ(forced_only.max_cost, 7);

  problem.parts = 3;  // one free cut: the best split of the 7 nodes after the forced cut
  Partition with_free = partition_min_max(problem);
  expect_consistent(problem, with_free);
  EXPECT_EQ(with_free.starts[1], 1);
  EXPECT_EQ(with_free.max_cost, 4);
}

TEST(Partition, MatchesBruteForceOnRandomSmallInstances) {
  std::mt19937 random(2024);
  for (int trial = 0; trial < 3000; ++trial) {
    int n = 1 + static_cast<int>(random() % 12);
    int parts = 1 + static_cast<int>(random() % std::min(4, n));
    bool integer_costs = trial % 2 == 0;
    PartitionProblem problem = random_problem(random, n, parts, integer_costs);
    BruteForce expected = brute_force(problem);
    Partition partition = partition_min_max(problem);
    SCOPED_TRACE("trial " + std::to_string(trial) + ", n " + std::to_string(n) + ", parts " + std::to_string(parts));
    expect_consistent(problem, partition);
    EXPECT_NEAR(partition.max_cost, expected.max_cost, 1e-9 * std::max(1.0, expected.max_cost));
    EXPECT_EQ(partition.cut_bytes, expected.cut_bytes);
  }
}

// The textbook O(parts * n^2) DP over the same piece costs, for instances too large to enumerate.
double quadratic_dp_bottleneck(const PartitionProblem& problem) {
  const int n = static_cast<int>(problem.node_cost.size());
  std::vector<double> prefix(n + 1, 0);
  for (int i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + problem.node_cost[i];
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> best(n + 1, inf), next(n + 1);
  best[0] = 0;
  for (int j = 1; j <= problem.parts; ++j) {
    std::fill(next.begin(), next.end(), inf);
    for (int b = 1; b <= n; ++b)
      for (int a = 0; a < b; ++a)
        next[b] = std::min(next[b], std::max(best[a], (prefix[b] - prefix[a]) + problem.transfer_cost[a]));
    std::swap(best, next);
  }
  return best[n];
}

TEST(Partition, MatchesQuadraticDpOnMediumInstances) {
  std::mt19937 random(99);
  for (int trial = 0; trial < 30; ++trial) {
    int n = 50 + static_cast<int>(random() % 250);
    int parts = 1 + static_cast<int>(random() % 9);
    PartitionProblem problem = random_problem(random, n, parts, false);
    problem.forced.clear();
    Partition partition = partition_min_max(problem);
    expect_consistent(problem, partition);
    double expected = quadratic_dp_bottleneck(problem);
    EXPECT_NEAR(partition.max_cost, expected, 1e-9 * expected) << "trial " << trial;
  }
}

TEST(Partition, LargeInstanceIsSolvedAndBalanced) {
  std::mt19937 random(5);
  const int n = 3000, parts = 8;
  PartitionProblem problem = random_problem(random, n, parts, false);
  problem.forced.clear();
  auto start = std::chrono::steady_clock::now();
  Partition partition = partition_min_max(problem);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("milliseconds", std::to_string(ms));
  expect_consistent(problem, partition);
  double total = 0;
  for (double cost : problem.node_cost) total += cost;
  // Small node costs: the bottleneck is within one node plus one transfer of the ideal share.
  EXPECT_GE(partition.max_cost, total / parts);
  EXPECT_LE(partition.max_cost, total / parts + 10 + 6);
}

TEST(Partition, RejectsImpossibleRequests) {
  std::string message;
  EXPECT_EQ(error_code_of(problem_of({1, 2, 3}, 0)), ErrorCode::USAGE);
  EXPECT_EQ(error_code_of(problem_of({1, 2, 3}, 4), &message), ErrorCode::USAGE);
  EXPECT_EQ(message, "cannot split 3 nodes into 4 pieces: at most 3");

  PartitionProblem too_many_forced = problem_of({1, 2, 3, 4}, 2);
  too_many_forced.forced = {1, 2};
  EXPECT_EQ(error_code_of(too_many_forced), ErrorCode::USAGE);

  for (int outside : {0, 4, -1, 9}) {
    PartitionProblem problem = problem_of({1, 2, 3, 4}, 2);
    problem.forced = {outside};
    EXPECT_EQ(error_code_of(problem), ErrorCode::USAGE) << outside;
  }
  PartitionProblem descending = problem_of({1, 2, 3, 4}, 3);
  descending.forced = {3, 1};
  EXPECT_EQ(error_code_of(descending), ErrorCode::USAGE);
  PartitionProblem repeated = problem_of({1, 2, 3, 4}, 3);
  repeated.forced = {2, 2};
  EXPECT_EQ(error_code_of(repeated), ErrorCode::USAGE);
}

TEST(Partition, RejectsMalformedCosts) {
  PartitionProblem short_transfer = problem_of({1, 2}, 1);
  short_transfer.transfer_cost.pop_back();
  EXPECT_EQ(error_code_of(short_transfer), ErrorCode::INTERNAL);
  PartitionProblem negative = problem_of({1, -2}, 1);
  EXPECT_EQ(error_code_of(negative), ErrorCode::INTERNAL);
}

// Stages of random speeds and random caps over a random chain: weights shared between positions, live bytes, crossing
// bytes and transfers.
PlacementProblem random_placement(std::mt19937& rng, int n, int stages) {
  std::uniform_int_distribution<int> small(0, 9), weights(1, 4);
  const double speeds[] = {0.5, 1, 1.5, 2, 3};  // costs stay exact in binary, so sums in any order agree
  PlacementProblem problem;
  std::vector<double> base(n);
  for (double& cost : base) cost = 1 + small(rng);
  for (int s = 0; s < stages; ++s) {
    const double factor = speeds[rng() % 5];
    std::vector<double> costs;
    for (double cost : base) costs.push_back(cost * factor);
    problem.node_cost.push_back(costs);
  }
  for (int b = 0; b <= n; ++b) {
    problem.crossing_bytes.push_back(small(rng));
    problem.transfer_cost.push_back(0.25 * small(rng));
  }
  const int weight_count = weights(rng) + n / 2;
  for (int w = 0; w < weight_count; ++w) problem.memory.weight_bytes.push_back(10 * (1 + small(rng)));
  for (int p = 0; p < n; ++p) {
    std::vector<int> read;
    for (int k = small(rng) % 3; k > 0; --k) read.push_back(static_cast<int>(rng() % weight_count));
    problem.memory.weights_read.push_back(read);
    problem.memory.live.push_back(small(rng) * 3);
  }
  problem.memory.in_flight_depth = small(rng) % 3;
  for (int s = 0; s < stages; ++s) {
    problem.memory.overhead.push_back(small(rng));
    problem.capacity.push_back(small(rng) == 0 ? -1 : 30 + 20 * small(rng));
  }
  if (n > 3 && small(rng) < 3) problem.forced.push_back(1 + static_cast<int>(rng() % (n - 1)));
  return problem;
}

struct CappedBruteForce {
  bool feasible = false;
  double max_cost = std::numeric_limits<double>::infinity();
  int64_t cut_bytes = std::numeric_limits<int64_t>::max();
  int64_t worst_overflow = std::numeric_limits<int64_t>::max();  // when infeasible
};

// Every composition of the positions into the stages' pieces, costed with each stage's own speed and memory.
CappedBruteForce brute_force(const PlacementProblem& problem) {
  const int n = static_cast<int>(problem.transfer_cost.size()) - 1;
  const int stages = static_cast<int>(problem.node_cost.size());
  struct Candidate {
    bool fits;
    double max_cost;
    int64_t bytes, overflow;
  };
  std::vector<Candidate> candidates;
  for (uint32_t mask = 0; mask < (1u << (n - 1)); ++mask) {
    std::vector<int> starts = {0};
    for (int b = 1; b < n; ++b)
      if (mask & (1u << (b - 1))) starts.push_back(b);
    starts.push_back(n);
    if (static_cast<int>(starts.size()) != stages + 1) continue;
    bool forced_ok = true;
    for (int cut : problem.forced) forced_ok = forced_ok && std::binary_search(starts.begin(), starts.end(), cut);
    if (!forced_ok) continue;
    Candidate candidate{true, 0, 0, std::numeric_limits<int64_t>::min()};
    for (int s = 0; s < stages; ++s) {
      double cost = problem.transfer_cost[starts[s]];
      for (int i = starts[s]; i < starts[s + 1]; ++i) cost += problem.node_cost[s][i];
      candidate.max_cost = std::max(candidate.max_cost, cost);
      if (s > 0) candidate.bytes += problem.crossing_bytes[starts[s]];
      const int64_t need = piece_memory(problem.memory, problem.crossing_bytes, starts[s], starts[s + 1], s).total();
      if (problem.capacity[s] >= 0) {
        candidate.overflow = std::max(candidate.overflow, need - problem.capacity[s]);
        candidate.fits = candidate.fits && need <= problem.capacity[s];
      }
    }
    candidates.push_back(candidate);
  }
  CappedBruteForce best;
  for (const Candidate& c : candidates) {
    best.worst_overflow = std::min(best.worst_overflow, c.overflow);
    if (c.fits) {
      best.feasible = true;
      best.max_cost = std::min(best.max_cost, c.max_cost);
    }
  }
  for (const Candidate& c : candidates)
    if (c.fits && c.max_cost <= best.max_cost * (1 + 1e-9)) best.cut_bytes = std::min(best.cut_bytes, c.bytes);
  return best;
}

TEST(PartitionUnderCaps, MatchesBruteForceWithRandomCapsAndSpeeds) {
  std::mt19937 rng(8);
  int feasible = 0, infeasible = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 11);
    const int stages = 1 + static_cast<int>(rng() % std::min(n, 4));
    PlacementProblem problem = random_placement(rng, n, stages);
    if (!problem.forced.empty() && stages < 2) problem.forced.clear();
    const CappedBruteForce expected = brute_force(problem);
    const PlacedPartition placed = partition_under_caps(problem);
    ASSERT_EQ(placed.feasible, expected.feasible) << "trial " << trial;
    const Partition& partition = placed.partition;
    ASSERT_EQ(partition.starts.size(), static_cast<size_t>(stages + 1));
    for (int cut : problem.forced)
      EXPECT_TRUE(std::binary_search(partition.starts.begin(), partition.starts.end(), cut)) << "trial " << trial;
    ASSERT_EQ(placed.memory.size(), static_cast<size_t>(stages));
    int64_t worst = std::numeric_limits<int64_t>::min();
    for (int s = 0; s < stages; ++s) {
      const PieceMemory memory =
          piece_memory(problem.memory, problem.crossing_bytes, partition.starts[s], partition.starts[s + 1], s);
      EXPECT_EQ(placed.memory[s].total(), memory.total()) << "trial " << trial;
      if (problem.capacity[s] >= 0) worst = std::max(worst, memory.total() - problem.capacity[s]);
    }
    if (expected.feasible) {
      ++feasible;
      EXPECT_EQ(partition.max_cost, expected.max_cost) << "trial " << trial;
      EXPECT_EQ(partition.cut_bytes, expected.cut_bytes) << "trial " << trial;
      EXPECT_LE(worst, 0) << "trial " << trial;
    } else {
      ++infeasible;
      EXPECT_EQ(worst, expected.worst_overflow) << "trial " << trial;
      ASSERT_GE(placed.short_stage, 0) << "trial " << trial;
      EXPECT_EQ(placed.memory[placed.short_stage].total() - problem.capacity[placed.short_stage], worst);
    }
  }
  EXPECT_GT(feasible, 100);
  EXPECT_GT(infeasible, 50);
}

// Without caps and with equal speeds, the capped solver is the plain one.
TEST(PartitionUnderCaps, WithoutCapsEqualsThePlainSolver) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 30);
    const int stages = 1 + static_cast<int>(rng() % std::min(n, 5));
    PlacementProblem capped = random_placement(rng, n, stages);
    for (auto& costs : capped.node_cost) costs = capped.node_cost[0];
    capped.capacity.assign(stages, -1);
    if (stages < 2) capped.forced.clear();
    PartitionProblem plain;
    plain.node_cost = capped.node_cost[0];
    plain.transfer_cost = capped.transfer_cost;
    plain.crossing_bytes = capped.crossing_bytes;
    plain.forced = capped.forced;
    plain.parts = stages;
    const PlacedPartition placed = partition_under_caps(capped);
    const Partition expected = partition_min_max(plain);
    ASSERT_TRUE(placed.feasible);
    EXPECT_EQ(placed.partition.max_cost, expected.max_cost) << "trial " << trial;
    EXPECT_EQ(placed.partition.cut_bytes, expected.cut_bytes) << "trial " << trial;
  }
}

// A chain whose weights sit at the front: time balance cuts in the middle, the small first device pushes the cut
// forward; when no partition fits, the smallest overflow is named with the fewest pieces that would fit.
TEST(PartitionUnderCaps, CapsMoveTheCutAndInfeasibleCapsNameTheShortfall) {
  PlacementProblem problem;
  const int n = 6;
  problem.node_cost.assign(2, std::vector<double>(n, 1.0));
  problem.transfer_cost.assign(n + 1, 0);
  problem.crossing_bytes.assign(n + 1, 0);
  problem.memory.weight_bytes = {100, 100, 100, 10, 10, 10};
  for (int p = 0; p < n; ++p) problem.memory.weights_read.push_back({p});
  problem.memory.live.assign(n, 0);
  problem.memory.overhead = {0, 0};
  problem.capacity = {-1, -1};
  EXPECT_EQ(partition_under_caps(problem).partition.starts, (std::vector<int>{0, 3, 6}));
  problem.capacity = {150, -1};
  const PlacedPartition uneven = partition_under_caps(problem);
  ASSERT_TRUE(uneven.feasible);
  EXPECT_EQ(uneven.partition.starts, (std::vector<int>{0, 1, 6}));
  EXPECT_EQ(uneven.memory[1].weights, 230);

  problem.capacity = {150, 150};
  const PlacedPartition short_of = partition_under_caps(problem);
  ASSERT_FALSE(short_of.feasible);
  EXPECT_EQ(short_of.short_stage, 0);
  EXPECT_EQ(short_of.memory[0].total(), 200);  // the smallest worst overflow: [0,2) 50 over, [2,6) fits
  EXPECT_EQ(short_of.min_pieces, 3);           // 100 | 100 | 100+30

  problem.capacity = {50, 60};
  EXPECT_EQ(partition_under_caps(problem).min_pieces, 0);  // a 100-byte node fits nowhere
}

}  // namespace
}  // namespace onnxpipe::detail
