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

// Per position, over one round's runs: the node's low quantile.
std::vector<double> round_node_costs(const RunTimes& runs);
// Per position: the median over rounds of the node's share of its round (round_node_costs), times the median round
// total.
std::vector<double> robust_node_costs(const std::vector<RunTimes>& rounds);

// Per position, the factor that makes each piece's node costs sum to its measured time (pieces [starts[k],
// starts[k+1]) cut with `costs`): what the pieces themselves, timed as they will run (their own fusions, caches, and
// on one thread CPU time that other work on the core does not inflate), say the profile got wrong.
std::vector<double> piece_scale(const std::vector<double>& costs, const std::vector<int>& starts,
                                const std::vector<double>& measured);

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

// The rounds of profiled runs a measurement takes, each in a fresh session after the one before (so that
// the rounds sample different windows of the machine's speed and load): at least kMinRounds, more while the cut is
// close, at most kMaxRounds.
constexpr int kMinRounds = 2, kMaxRounds = 4;

// The runs of all rounds, one after the other.
RunTimes pooled(const std::vector<RunTimes>& rounds);

// The relative standard error of the pieces' costs between rounds: per round each piece's share of that round's
// robust_node_costs; the standard deviation of those over the rounds, over sqrt(rounds), over their mean; the
// largest over the pieces. It sees what changes from one window to the next (load on the other cores slowing
// memory-bound nodes more than the others), which the runs of one round share. 0 for fewer than 2 rounds.
double round_noise(const std::vector<RunTimes>& rounds, const std::vector<int>& starts);

}  // namespace onnxpipe::detail
