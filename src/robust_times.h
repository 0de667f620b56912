#pragma once
// Node times that hold on a shared machine whose speed moves between runs (±15% from one window to the next): the
// costs are the nodes' shares of each profiled run (every node of one run ran at about one speed, so a speed change
// between runs cancels), their medians (a preempted run does not move them), and a noise estimate of the prediction
// that decides whether more runs are worth it.
#include <functional>
#include <vector>

namespace onnxpipe::detail {

// Profiled microseconds, one row per run (warm-up dropped), one column per position of Graph::order().
using RunTimes = std::vector<std::vector<double>>;

// The spread of `values` as a normal sigma: 1.4826 x the median absolute deviation (0 for fewer than 2 values).
double robust_sigma(const std::vector<double>& values);

// Per position: the median over runs of the node's share of its run, times the median run total.
std::vector<double> robust_node_costs(const RunTimes& runs);

// The relative standard error of the pieces' predicted costs, pieces [starts[k], starts[k+1]): per run each piece's
// share of the run; the error of its median (1.2533 sigma / sqrt(runs)) over that median; the largest over the
// pieces. 0 for fewer than 2 runs.
double piece_noise(const RunTimes& runs, const std::vector<int>& starts);

// How close to the optimum a bottleneck counts as a tie (PartitionProblem::tie_tolerance) under `noise`: twice the
// noise, at least kMinTieTolerance (what the profile cannot see: a piece runs with its own fusions and caches), at
// most kMaxTieTolerance (what balance may give up for stable cuts).
constexpr double kMinTieTolerance = 0.02, kMaxTieTolerance = 0.05;
double tie_tolerance(double noise);

// Whether more runs could move the cut. `solve(tolerance)` partitions the current costs with that tie tolerance and
// returns {starts, max cost}; `optimum` is the bottleneck with no tolerance. Close: the chosen partition's bottleneck
// lies within 2 x noise of the tie band's top (a little more noise pushes it out), or widening the band by 2 x noise
// picks other cuts (a partition with fewer crossing bytes lies just outside).
struct Solved {
  std::vector<int> starts;
  double max_cost = 0;
};
bool cut_is_close(const std::function<Solved(double tolerance)>& solve, double optimum, double noise);

// Profiled runs per measurement: start with `runs`, double while the cut is close, up to kMaxRunsFactor x `runs`.
constexpr int kMaxRunsFactor = 4;

}  // namespace onnxpipe::detail
