#pragma once
// The placement of an analysed model (analysis.h) over devices with capacities: what split calls instead of the plain
// partition when it is given devices, and what plan_placement reports.
#include <vector>

#include "analysis.h"
#include "onnxpipe/placement.h"
#include "partition.h"

namespace onnxpipe::detail {

struct Placed {
  Partition partition;
  std::vector<StageMemory> stages;
};

// The fastest partition of `problem` (its costs, transfers, crossing bytes and forced cuts; parts = the devices)
// whose every piece fits its device. Throws Error(USAGE) naming the smallest shortfall when none does, or when the
// CPU stages together need more than the machine has available.
Placed place(const Analysis& analysis, const PartitionProblem& problem, const PlacementOptions& options);
inline Partition place_partition(const Analysis& analysis, const PartitionProblem& problem,
                                 const PlacementOptions& options) {
  return place(analysis, problem, options).partition;
}

}  // namespace onnxpipe::detail
