// Placement: the memory model of a stage (placement.h), the capacities of the devices, the partition under them, and
// the check of a saved plan.
#include "onnxpipe/placement.h"

#include <algorithm>

#include "analysis.h"
#include "log.h"
#include "memory_probe.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "partition.h"
#include "placement.h"
#include "runtime_cuda.h"
#include "runtime_memory.h"
#include "staging.h"
#include "weight_links.h"

namespace onnxpipe {

namespace {

using detail::Analysis;
using detail::PieceMemory;

int64_t overhead_of(const DeviceSpec& device, const PlacementOptions& options) {
  return device.is_cuda() ? options.cuda_overhead : options.cpu_overhead;
}

int64_t overhead_of(const DeviceSpec& device, const PlacementOptions& options,
                    const detail::MemoryConstants& measured) {
  if (!device.is_cuda() && measured.measured()) return measured.session_overhead;
  return overhead_of(device, options);
}

// The memory terms of the analysis: weights by id as ORT holds them (times the factor measured for the op types that
// read them), and per position the bytes crossing into it plus what its node makes (the most a node's run can hold
// live that the plan's dims tell), scaled by what dry runs measured unless `estimate`.
detail::MemoryTerms memory_terms(const Analysis& analysis, const PlacementOptions& options, bool estimate = false) {
  const detail::Graph& graph = analysis.graph;
  const auto& bytes = analysis.sizes.bytes;  // unknown sizes estimated, as the partition counts them
  const auto& factors = analysis.memory.weight_factor;
  detail::MemoryTerms terms;
  std::map<std::string, int> ids;
  std::vector<double> factor;  // per weight id: the largest of its readers'
  for (int position = 0; position < graph.size(); ++position) {
    const auto op = factors.find(graph.desc().nodes[graph.order()[position]].op_type);
    const double held = op == factors.end() ? 1.0 : op->second;
    std::vector<int> read;
    for (const auto& name : graph.weights_read(position)) {
      const auto [it, added] = ids.emplace(name, static_cast<int>(factor.size()));
      if (added) factor.push_back(held);
      factor[it->second] = std::max(factor[it->second], held);
      read.push_back(it->second);
    }
    terms.weights_read.push_back(std::move(read));
    int64_t live = analysis.crossing_bytes[position];
    for (const auto& name : graph.desc().nodes[graph.order()[position]].outputs) {
      const auto found = bytes.find(name);
      if (found != bytes.end()) live += found->second;
    }
    if (!estimate && !analysis.activation_scale.empty())
      live = static_cast<int64_t>(double(live) * analysis.activation_scale[position]);
    terms.live.push_back(live);
  }
  terms.weight_bytes.resize(factor.size());
  for (const auto& [name, id] : ids)
    terms.weight_bytes[id] = static_cast<int64_t>(factor[id] * double(graph.desc().weights.at(name).bytes));
  for (const DeviceSpec& device : options.devices)
    terms.overhead.push_back(overhead_of(device, options, analysis.memory));
  terms.in_flight_depth = options.queue_depth;
  return terms;
}

std::string without_capacity(DeviceSpec device) {
  device.capacity = -1;
  return device.to_string();
}

std::string piece_needs(int piece, int64_t need, const DeviceSpec& device, int64_t capacity) {
  return "piece " + std::to_string(piece) + " needs " + bytes_text(need) + " on " + without_capacity(device) +
         " (cap " + bytes_text(capacity) + ")";
}

// The CPU stages share the machine's memory: their sum must fit what it has available.
void check_host(const std::vector<StageMemory>& stages, const std::vector<DeviceSpec>& devices, int64_t available) {
  int64_t cpu_total = 0;
  for (size_t i = 0; i < stages.size(); ++i)
    if (!devices[i].is_cuda()) cpu_total += stages[i].total;
  if (available >= 0 && cpu_total > available)
    throw Error(ErrorCode::DOES_NOT_FIT, "the CPU stages need " + bytes_text(cpu_total) +
                                             " together, and this machine has " + bytes_text(available) + " available");
}

void check_devices(const PlacementOptions& options, int parts) {
  if (static_cast<int>(options.devices.size()) != parts)
    throw Error(ErrorCode::USAGE, std::to_string(parts) + " pieces need one device each, got " +
                                      std::to_string(options.devices.size()) + " devices");
  if (options.queue_depth < 0 || options.margin < 0)
    throw Error(ErrorCode::USAGE, "the queue depth and the margin must be >= 0");
}

}  // namespace

std::vector<int64_t> device_capacities(const PlacementOptions& options) {
  std::vector<int64_t> capacities;
  for (const DeviceSpec& device : options.devices) {
    int64_t capacity = device.capacity;
    if (capacity < 0 && device.is_cuda()) {
      const int64_t free_bytes = detail::cuda_device_memory(device.device_id).first;
      if (free_bytes >= 0) capacity = std::max<int64_t>(0, free_bytes - options.margin);
    }
    capacities.push_back(capacity);
  }
  return capacities;
}

namespace detail {

int64_t arena_limit(const StageMemory& stage) {
  const int64_t planned = stage.activations + stage.in_flight;
  return planned + planned / 2 + (int64_t(64) << 20);
}

std::map<std::string, std::string> planned_provider_options(std::map<std::string, std::string> options,
                                                            const StageMemory& stage) {
  options.emplace("gpu_mem_limit", std::to_string(arena_limit(stage)));
  return options;
}

void measure_memory(Analysis& analysis, const PlacementOptions& options) {
  const auto& devices = options.devices;
  const bool cpu = std::any_of(devices.begin(), devices.end(), [](const DeviceSpec& d) { return !d.is_cuda(); });
  if (!options.measure_memory) return;
  if (cpu && !analysis.memory.measured()) analysis.memory = measure_memory_constants(analysis, "cpu:1");
}

Placed place(const Analysis& analysis, const PartitionProblem& plain, const PlacementOptions& options) {
  check_devices(options, plain.parts);
  const Graph& graph = analysis.graph;
  PlacementProblem problem;
  for (const DeviceSpec& device : options.devices) problem.node_cost.push_back(analysis.costs.on(device));
  problem.tie_tolerance = plain.tie_tolerance;
  problem.transfer_cost = plain.transfer_cost;
  problem.crossing_bytes = plain.crossing_bytes;
  problem.forced = plain.forced;
  problem.blocked = plain.blocked;
  problem.memory = memory_terms(analysis, options);
  problem.capacity = device_capacities(options);
  const PlacedPartition placed = partition_under_caps(problem);

  if (!placed.feasible) {
    const int piece = placed.short_stage;
    std::string message =
        piece_needs(piece, placed.memory[piece].total(), options.devices[piece], problem.capacity[piece]);
    const int fewest = placed.min_pieces;
    if (fewest == 0)
      message += "; a single node needs more than the largest cap";
    else if (fewest > plain.parts)
      message += "; with these caps the model needs at least " + std::to_string(fewest) + " devices";
    else
      message += "; " + std::to_string(fewest) + (fewest == 1 ? " device" : " devices") +
                 " as large as the largest would do: reorder or resize the caps";
    throw Error(ErrorCode::DOES_NOT_FIT, message);
  }

  const MemoryTerms estimate = memory_terms(analysis, options, true);
  Placed result;
  result.partition = placed.partition;
  for (int s = 0; s < plain.parts; ++s) {
    const int a = placed.partition.starts[s], b = placed.partition.starts[s + 1];
    const PieceMemory& memory = placed.memory[s];
    StageMemory stage;
    stage.index = s;
    stage.device = without_capacity(options.devices[s]);
    stage.node_count = b - a;
    stage.first_node = graph.desc().nodes[graph.order()[a]].name;
    stage.last_node = graph.desc().nodes[graph.order()[b - 1]].name;
    stage.cost = placed.partition.piece_cost[s];
    stage.weights = memory.weights;
    stage.activations = memory.activations;
    if (!analysis.activation_scale.empty())
      stage.activations_estimate = piece_memory(estimate, analysis.crossing_bytes, a, b, s).activations;
    stage.in_flight = memory.in_flight;
    stage.overhead = memory.overhead;
    stage.total = memory.total();
    stage.capacity = problem.capacity[s];
    result.stages.push_back(std::move(stage));
  }
  check_host(result.stages, options.devices, host_memory_available());
  return result;
}

namespace {

// Scales the estimate of every position of piece k of `partition` so that the piece predicts measured[k] (-1: not
// measured, left as it is).
void correct_activations(Analysis& analysis, const PlacementOptions& options, const Partition& partition,
                         const std::vector<int64_t>& measured) {
  const MemoryTerms terms = memory_terms(analysis, options);
  analysis.activation_scale.resize(analysis.graph.size(), 1.0);
  for (size_t k = 0; k < measured.size(); ++k) {
    const int a = partition.starts[k], b = partition.starts[k + 1];
    const int64_t predicted = piece_memory(terms, analysis.crossing_bytes, a, b, int(k)).activations;
    if (measured[k] < 0 || predicted <= 0) continue;
    for (int position = a; position < b; ++position)
      analysis.activation_scale[position] *= double(measured[k]) / double(predicted);
  }
}

std::string mib_list(const std::vector<int64_t>& bytes) {
  std::string text;
  for (int64_t b : bytes) text += (text.empty() ? "" : " / ") + (b < 0 ? std::string("?") : bytes_text(b));
  return text;
}

}  // namespace

Placed measured_placement(Analysis& analysis, const PartitionProblem& problem, const PlacementOptions& options,
                          const std::map<std::string, Tensor>& inputs, const std::string& dir, Partition partition,
                          std::vector<PieceDesc>& pieces, const PieceWriter& write) {
  std::vector<SessionConfig> configs;
  for (const DeviceSpec& device : options.devices) {
    SessionConfig config;
    config.device = device.is_cuda() ? without_capacity(device) : "cpu:1";  // one thread: the arena is the same
    configs.push_back(std::move(config));
  }
  VerifyOptions random;
  random.dims = analysis.dims;
  random.inputs = inputs;
  const std::map<std::string, Tensor> values = make_inputs(analysis.graph.desc().inputs, random);
  for (int pass = 1;; ++pass) {
    const std::vector<RunMemory> runs = measure_piece_memory(dir, pieces, configs, values);
    std::vector<int64_t> measured, estimated;
    const MemoryTerms terms = memory_terms(analysis, options);
    for (size_t k = 0; k < runs.size(); ++k) {
      measured.push_back(runs[k].activations(!options.devices[k].is_cuda()));
      estimated.push_back(
          piece_memory(terms, analysis.crossing_bytes, partition.starts[k], partition.starts[k + 1], int(k))
              .activations);
    }
    log(LogLevel::INFO, "dry run " + std::to_string(pass) + ": activations " + mib_list(measured) + " (predicted " +
                            mib_list(estimated) + ")");
    correct_activations(analysis, options, partition, measured);
    Placed placed = place(analysis, problem, options);
    const bool moved = placed.partition.starts != partition.starts;
    if (moved) pieces = write(placed.partition);
    if (!moved || pass == kDryRunPasses) return placed;
    partition = placed.partition;
  }
}

void predict_piece_memory(const Analysis& analysis, const Partition& partition, std::vector<PieceDesc>& pieces) {
  PlacementOptions options;
  options.devices.assign(pieces.size(), DeviceSpec());
  const MemoryTerms terms = memory_terms(analysis, options);
  for (size_t k = 0; k < pieces.size(); ++k) {
    const PieceMemory memory =
        piece_memory(terms, analysis.crossing_bytes, partition.starts[k], partition.starts[k + 1], int(k));
    pieces[k].resident_weight_bytes = memory.weights;
    pieces[k].activation_bytes = memory.activations;
    if (analysis.memory.measured()) pieces[k].cpu_overhead_bytes = analysis.memory.session_overhead;
  }
}

}  // namespace detail

PlacementReport plan_placement(const std::string& model_path, const SplitOptions& split,
                               const PlacementOptions& options) {
  check_devices(options, split.parts);
  SplitOptions on_devices = split;
  on_devices.placement = options;  // node costs per distinct device
  auto analysis = detail::analyse(model_path, split.balance, on_devices);
  const detail::Graph& graph = analysis->graph;
  detail::PartitionProblem problem;
  problem.node_cost = analysis->costs.node;
  problem.transfer_cost = analysis->transfer_cost;
  problem.crossing_bytes = analysis->crossing_bytes;
  problem.blocked = analysis->fused;
  problem.parts = split.parts;
  for (const auto& tensor : split.cuts) {
    const int boundary = graph.boundary_after(tensor);
    if ((!problem.forced.empty() && boundary <= problem.forced.back()) || boundary >= graph.size())
      throw Error(ErrorCode::USAGE, "cut '" + tensor + "': not after the previous cut, or made by the last node",
                  ArgumentContext{"cuts", tensor, "not a cut inside the model in execution order"});
    problem.forced.push_back(boundary);
  }
  detail::measure_memory(*analysis, options);
  if (split.progress) split.progress("placing", 0, 0);
  detail::Placed placed = detail::place(*analysis, problem, options);
  if (options.measure_memory) {
    // Pieces to dry-run, pointing into links of the source's data files where it has them: nothing big is copied.
    const detail::TempDir dir("plan");
    const auto links = detail::link_data_files(graph.desc(), WeightStorage::AUTO, dir.path());
    int64_t duplicated = 0;
    const detail::PieceWriter write = [&](const detail::Partition& cut) {
      return detail::write_pieces(*analysis, cut, dir.path(), split, links, &duplicated);
    };
    std::vector<PieceDesc> pieces = write(placed.partition);
    if (split.progress) split.progress("dry runs", 0, 0);
    placed = detail::measured_placement(*analysis, problem, options, split.inputs, dir.str(), placed.partition, pieces,
                                        write);
  }

  PlacementReport report;
  report.balance = analysis->costs.balance;
  report.cost_unit = analysis->costs.unit;
  report.predicted_max_cost = placed.partition.max_cost;
  report.host_available = host_memory_available();
  report.stages = std::move(placed.stages);
  return report;
}

std::vector<StageMemory> check_plan_fits(const Plan& plan, const PlacementOptions& options) {
  check_devices(options, plan.parts());
  const std::vector<int64_t> capacities = device_capacities(options);
  auto sum = [](const std::vector<ValueDesc>& values) {
    int64_t total = 0;
    for (const ValueDesc& value : values) total += std::max<int64_t>(0, value.bytes);
    return total;
  };
  std::vector<StageMemory> stages;
  for (const PieceDesc& piece : plan.pieces) {
    StageMemory stage;
    stage.index = piece.index;
    stage.device = without_capacity(options.devices[piece.index]);
    stage.node_count = piece.node_count;
    stage.cost = piece.cost;
    stage.weights = piece.resident_weight_bytes >= 0 ? piece.resident_weight_bytes : piece.weight_bytes;
    stage.in_flight = options.queue_depth * sum(piece.inputs);
    stage.activations = piece.activation_bytes >= 0 ? piece.activation_bytes : sum(piece.inputs) + sum(piece.outputs);
    const DeviceSpec& device = options.devices[piece.index];
    stage.overhead =
        !device.is_cuda() && piece.cpu_overhead_bytes >= 0 ? piece.cpu_overhead_bytes : overhead_of(device, options);
    stage.total = stage.weights + stage.activations + stage.in_flight + stage.overhead;
    stage.capacity = capacities[piece.index];
    if (stage.capacity >= 0 && stage.total > stage.capacity)
      throw Error(ErrorCode::DOES_NOT_FIT,
                  piece_needs(piece.index, stage.total, options.devices[piece.index], stage.capacity) +
                      ": the plan does not fit these devices");
    stages.push_back(std::move(stage));
  }
  check_host(stages, options.devices, host_memory_available());
  return stages;
}

}  // namespace onnxpipe
