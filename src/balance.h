#pragma once
// Balance that holds under noise, for measured node times (robust_times.h has the statistics): the node times are
// profiled in rounds, the partition takes near-equal bottlenecks as ties, more rounds are measured while the cut is
// close, and the candidate pieces themselves, timed as they will run, correct the node costs.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "analysis.h"
#include "partition.h"

namespace onnxpipe::detail {

// Profiles one more round of options.profile_runs runs on costs.device and makes the node costs of all rounds so far
// (times costs.scale).
void measure_round(const Model& model, const Graph& graph, const std::map<std::string, int64_t>& dims,
                   const SplitOptions& options, Costs& costs);

// The partition of `problem` (under options.placement when it has devices) that holds under the noise of measured
// node times: bottlenecks within tie_tolerance(noise) of the optimum are ties, broken on fewer crossing bytes; while
// more runs could move the cut (cut_is_close) another round of options.profile_runs is measured, up to kMaxRounds.
// Updates analysis.costs (node, rounds, noise) and problem.node_cost with them. Without measured rounds: the exact
// optimum.
Partition balanced_partition(Analysis& analysis, PartitionProblem& problem, const SplitOptions& options);

// Timing the candidate pieces: at most this many cut, time, correct passes; rounds over the pieces; runs per round.
constexpr int kPiecePasses = 3, kPieceRounds = 3, kPieceRuns = 3;

// The profile times nodes inside the whole model, on a core others share; the pieces, timed as they will run
// (time_pieces on costs.device, CPU time when it has one thread), correct it: each piece's node costs are scaled to
// its time (costs.scale) and the cut made again, until it stays or after kPiecePasses. `pieces` are those `write`
// wrote into `dir` for `first`; on return they are the returned partition's.
Partition timed_partition(Analysis& analysis, PartitionProblem& problem, const SplitOptions& options,
                          const std::string& dir, Partition first, std::vector<PieceDesc>& pieces,
                          const std::function<std::vector<PieceDesc>(const Partition&)>& write);

}  // namespace onnxpipe::detail
