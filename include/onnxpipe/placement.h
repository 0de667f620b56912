#pragma once
// Placement: pieces that fit their devices' memory. Each device may carry a capacity (DeviceSpec::capacity, the
// `=CAP` of its text); the partition is the fastest whose every piece fits its device, and a plan can be checked
// against the devices before any session loads.
//
// The memory a stage needs, per piece: its weights (each weight it reads once, duplicates included), the activation
// peak, the values queued for it (queue_depth x the bytes crossing into it), and a fixed overhead per device kind
// (session, arena chunks; on CUDA the context and library handles). The activation peak is measured when memory is
// measured (PlacementOptions::measure_memory): a dry run of each placed piece with the planned dims, the session
// arena's peak in use plus its inputs; the model is placed again with the measured figures. Otherwise (and for
// partitions not dry-run, scaled by what the dry runs found) it is the static liveness estimate: the largest bytes
// live while one of its nodes runs, the values crossing into that node's position plus what the node makes.
#include <cstdint>
#include <string>
#include <vector>

#include "onnxpipe/device.h"
#include "onnxpipe/plan.h"

namespace onnxpipe {

struct SplitOptions;  // split.h, which holds PlacementOptions

struct PlacementOptions {
  std::vector<DeviceSpec> devices;    // one per piece, in pipeline order
  int64_t margin = int64_t(1) << 30;  // a CUDA device without a capacity gets its free memory minus this
  int queue_depth = 2;                // values in flight per stage (the pipeline's queue between stages)
  int64_t cpu_overhead = 16 << 20;    // per CPU session: ORT's session state and the arena's first chunks
  int64_t cuda_overhead = 400 << 20;  // per CUDA session: context, cuBLAS/cuDNN handles and workspace
  // Measure on this machine's CPU what ORT holds per weight byte of each op type and per session, unless the
  // costs file has it, and dry-run the placed pieces for their activations; false: weights count once, a CPU
  // session cpu_overhead, activations the static estimate.
  bool measure_memory = true;
};

// The capacity a stage may use on each device: its own when given; for CUDA without one the device's free memory
// minus the margin when the CUDA runtime can tell it; else -1 (unbounded).
std::vector<int64_t> device_capacities(const PlacementOptions& options);

struct StageMemory {
  int index = 0;
  std::string device;
  int64_t node_count = 0;
  std::string first_node, last_node;
  double cost = 0;  // in the cost unit, transfers in included
  int64_t weights = 0, activations = 0, in_flight = 0, overhead = 0, total = 0;
  // Where a dry run measured the activations: the static liveness estimate they replace; else -1.
  int64_t activations_estimate = -1;
  int64_t capacity = -1;  // -1: unbounded
  int64_t headroom() const { return capacity < 0 ? -1 : capacity - total; }
};

struct PlacementReport {
  std::string balance, cost_unit;
  std::vector<StageMemory> stages;
  double predicted_max_cost = 0;  // the bottleneck, which bounds throughput at 1 / max cost
  int64_t host_available = -1;    // MemAvailable when the plan was made; -1 unknown
};

// The fastest partition of MODEL over options.devices (split.parts is their count) whose every piece fits its device,
// explicit split.cuts honoured. Writes nothing. Throws Error(DOES_NOT_FIT) when no partition fits, naming the smallest
// shortfall ("piece 2 needs 5.1 GiB on cuda:1 (cap 4 GiB); with these caps the model needs at least 3 devices"), or
// when the CPU stages together need more than the machine's available memory.
PlacementReport plan_placement(const std::string& model_path, const SplitOptions& split,
                               const PlacementOptions& options);

// Checks a split plan against the devices before anything loads: weights, in-flight inputs and overhead as the plan
// records them, and at least the piece's inputs and outputs as activations (a lower bound: the plan does not record
// the peak). Throws Error(DOES_NOT_FIT) naming the first piece that does not fit, or the CPU stages' sum over the
// machine's available memory; returns the stages' memory otherwise.
std::vector<StageMemory> check_plan_fits(const Plan& plan, const PlacementOptions& options);

}  // namespace onnxpipe
