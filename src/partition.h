#pragma once
// Choosing N-1 boundaries that minimise the slowest piece (the pipeline's bottleneck), transfers included.
#include <cstdint>
#include <vector>

namespace onnxpipe::detail {

struct PartitionProblem {
  std::vector<double> node_cost;  // per position, n entries
  std::vector<double>
      transfer_cost;  // per boundary, n+1 entries: cost for a piece starting there to receive its inputs
  std::vector<int64_t> crossing_bytes;  // per boundary, n+1 entries: tie-break, fewer is better
  std::vector<int> forced;              // boundaries in (0, n) that must be cuts, ascending
  int parts = 1;
};

struct Partition {
  std::vector<int> starts;         // parts+1 entries: 0 = starts[0] < starts[1] < ... < starts[parts] = n
  std::vector<double> piece_cost;  // compute + transfer in
  double max_cost = 0;
  int64_t cut_bytes = 0;  // sum of crossing bytes over the inner cuts
};

// Exact min-max partition into `parts` non-empty consecutive pieces: bisection on the bottleneck with an exact
// feasibility test over prefix sums, then a DP that breaks ties (bottlenecks within a relative 1e-9) on fewer
// crossing bytes. Throws Error(USAGE) when parts < 1, parts > n, or the forced cuts cannot be met.
Partition partition_min_max(const PartitionProblem& problem);

}  // namespace onnxpipe::detail
