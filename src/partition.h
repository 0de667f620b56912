#pragma once
// Choosing N-1 boundaries that minimise the slowest piece (the pipeline's bottleneck), transfers included; and the
// same on stages of their own speed and memory, every piece fitting its stage's capacity.
#include <cstdint>
#include <vector>

namespace onnxpipe::detail {

struct PartitionProblem {
  std::vector<double> node_cost;  // per position, n entries
  std::vector<double>
      transfer_cost;  // per boundary, n+1 entries: cost for a piece starting there to receive its inputs
  std::vector<int64_t> crossing_bytes;  // per boundary, n+1 entries: tie-break, fewer is better
  std::vector<int> forced;              // boundaries in (0, n) that must be cuts, ascending
  std::vector<char> blocked;            // per boundary, n+1 entries or empty: 1 = no cut unless forced (fusion_guard.h)
  int parts = 1;
  // Bottlenecks within this (relative) of the optimum are ties, broken on fewer crossing bytes: measured costs pass
  // their noise here, so that of near-equal cuts the same one wins from one measurement to the next.
  double tie_tolerance = 1e-9;
};

struct Partition {
  std::vector<int> starts;         // parts+1 entries: 0 = starts[0] < starts[1] < ... < starts[parts] = n
  std::vector<double> piece_cost;  // compute + transfer in
  double max_cost = 0;
  int64_t cut_bytes = 0;  // sum of crossing bytes over the inner cuts
};

// Crossing bytes as the tie-break compares them: rounded to 7 significant bits (under 128 bytes exact), so that a
// 64-byte mask crossing beside a 24 KiB activation (GPT-2's residual cuts) does not outweigh the evenness of the cuts.
int64_t comparable_bytes(int64_t bytes);

// Exact min-max partition into `parts` non-empty consecutive pieces: bisection on the bottleneck with an exact
// feasibility test over prefix sums, then a DP that breaks ties (bottlenecks within the tie tolerance) on fewer
// crossing bytes. Throws Error(USAGE) when parts < 1, parts > n, or the forced cuts cannot be met.
Partition partition_min_max(const PartitionProblem& problem);

// The partition at `starts` (parts+1 entries, 0 ... n) with its costs and crossing bytes under `problem`.
Partition costed_partition(const PartitionProblem& problem, const std::vector<int>& starts);

// What a piece [a, b) holds on stage s: the weights its nodes read (each once), the largest activation footprint of
// its nodes, the values queued for it (in_flight_depth x the bytes crossing into it), and the stage's fixed overhead.
struct MemoryTerms {
  std::vector<std::vector<int>> weights_read;  // per position: ids into weight_bytes
  std::vector<int64_t> weight_bytes;           // per weight id
  std::vector<int64_t> live;                   // per position: activation bytes live while that node runs
  std::vector<int64_t> overhead;               // per stage
  int in_flight_depth = 0;
};
struct PieceMemory {
  int64_t weights = 0, activations = 0, in_flight = 0, overhead = 0;
  int64_t total() const { return weights + activations + in_flight + overhead; }
};
PieceMemory piece_memory(const MemoryTerms& terms, const std::vector<int64_t>& crossing_bytes, int a, int b, int stage);

struct PlacementProblem {
  std::vector<std::vector<double>> node_cost;  // per stage (one per piece), n entries each: stages differ in speed
  std::vector<double> transfer_cost;           // per boundary, n+1 entries
  std::vector<int64_t> crossing_bytes;         // per boundary, n+1 entries: tie-break, fewer is better
  std::vector<int> forced;                     // boundaries in (0, n) that must be cuts, ascending
  std::vector<char> blocked;                   // as PartitionProblem's
  MemoryTerms memory;
  std::vector<int64_t> capacity;  // per stage: bytes piece s may need at most; -1 unbounded
  double tie_tolerance = 1e-9;    // as PartitionProblem's
};

struct PlacedPartition {
  bool feasible = false;
  // Feasible: the optimum. Else the partition whose worst overflow (need - capacity) is the smallest.
  Partition partition;
  std::vector<PieceMemory> memory;  // per piece
  int short_stage = -1;             // infeasible: the piece of that partition that overflows most
  // Infeasible: the fewest pieces that fit when every stage has the largest capacity given (with its overhead; -1 is
  // the largest); 0 when even one node alone does not fit there.
  int min_pieces = 0;
};

// Exact min-max partition with per-stage costs under per-stage capacities: a DP over boundary x stage for the
// bottleneck, a second one for the fewest crossing bytes among the optima (within the tie tolerance), O(stages x n^2).
// Throws Error(USAGE) as partition_min_max does for impossible counts and cuts.
PlacedPartition partition_under_caps(const PlacementProblem& problem);

}  // namespace onnxpipe::detail
