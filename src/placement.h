#pragma once
// The placement of an analysed model (analysis.h) over devices with capacities: what split calls instead of the plain
// partition when it is given devices, and what plan_placement reports.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "analysis.h"
#include "onnxpipe/placement.h"
#include "partition.h"

namespace onnxpipe::detail {

// Measures the memory constants of the analysis on the CPU (memory_probe.h) when options.measure_memory and some
// device is a CPU, unless it has them (from costs.json). They apply to every stage: CUDA memory is not measured yet.
void measure_memory(Analysis& analysis, const PlacementOptions& options);

// Each piece's predicted resident weights and activation peak (PieceDesc), for the partition split writes.
void predict_piece_memory(const Analysis& analysis, const Partition& partition, std::vector<PieceDesc>& pieces);

struct Placed {
  Partition partition;
  std::vector<StageMemory> stages;
};

// Writes the pieces of a partition into the dry run's directory and describes them (write_pieces).
using PieceWriter = std::function<std::vector<PieceDesc>(const Partition&)>;

// The fastest partition of `problem` (its costs, transfers, crossing bytes and forced cuts; parts = the devices)
// whose every piece fits its device. Throws Error(DOES_NOT_FIT) naming the smallest shortfall when none does, or when
// the CPU stages together need more than the machine has available.
Placed place(const Analysis& analysis, const PartitionProblem& problem, const PlacementOptions& options);
inline Partition place_partition(const Analysis& analysis, const PartitionProblem& problem,
                                 const PlacementOptions& options) {
  return place(analysis, problem, options).partition;
}

// Dry runs of the pieces of `partition` (written as `pieces` in `dir`, each run on its stage's device kind with the
// analysis's dims and `inputs`, random where not given: runtime_memory.h) replace their static activation estimates:
// every position's estimate is scaled so that the piece holding it predicts what was measured
// (analysis.activation_scale), then the model is placed again. When the cut moves, the new pieces are written and
// measured in turn, up to kDryRunPasses. Returns the final placement, whose pieces `pieces` holds; throws
// Error(DOES_NOT_FIT) as place() when the measured figures fit no partition.
constexpr int kDryRunPasses = 3;
Placed measured_placement(Analysis& analysis, const PartitionProblem& problem, const PlacementOptions& options,
                          const std::map<std::string, Tensor>& inputs, const std::string& dir, Partition partition,
                          std::vector<PieceDesc>& pieces, const PieceWriter& write);

// The gpu_mem_limit of a CUDA stage's own arena from what the plan predicts the stage allocates while it runs:
// its activations and the values queued for it, plus half of that again and 64 MiB for what the prediction does not
// see (cuDNN workspaces, the arena's rounding). Weights are outside the limit: ORT reserves them in the arena without
// checking it (BFCArena::Reserve).
int64_t arena_limit(const StageMemory& stage);
// The CUDA provider options of a stage: `options` (the caller's), with gpu_mem_limit set to arena_limit(stage)
// unless the caller set it.
std::map<std::string, std::string> planned_provider_options(std::map<std::string, std::string> options,
                                                            const StageMemory& stage);

}  // namespace onnxpipe::detail
