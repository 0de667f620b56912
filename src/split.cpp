// The splitter's data flow, in one pass: model -> graph -> value types -> costs -> partition -> pieces -> plan.
#include "onnxpipe/split.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <unordered_map>

#include "analysis.h"
#include "balance.h"
#include "cancel.h"
#include "cost.h"
#include "enum_names.h"
#include "fusion_guard.h"
#include "graph.h"
#include "log.h"
#include "measure.h"
#include "model_io.h"
#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "partition.h"
#include "placement.h"
#include "staging.h"
#include "weight_links.h"

namespace fs = std::filesystem;

namespace onnxpipe {

constexpr std::array<const char*, 4> kBalanceNames = {"auto", "bytes", "flops", "time"};

Balance balance_from_name(const std::string& name) {
  if (auto balance = detail::enum_from_name<Balance>(kBalanceNames, name)) return *balance;
  throw Error(ErrorCode::USAGE,
              "unknown balance criterion '" + name + "' (" + detail::enum_names_text(kBalanceNames) + ")");
}

const char* balance_name(Balance balance) { return detail::enum_name(kBalanceNames, balance); }

namespace detail {
namespace {

void report(const ProgressFn& progress, const std::string& what, int64_t done, int64_t total) {
  if (progress) progress(what, done, total);
}

void warn(const std::string& message) { log(LogLevel::WARN, message); }

// Symbolic dims a user did not set default to 1, as the CLI promises.
std::map<std::string, int64_t> dims_with_defaults(const GraphDesc& graph, std::map<std::string, int64_t> dims) {
  check_dim_names(graph.inputs, dims);
  for (const auto& input : graph.inputs)
    for (const auto& dim : input.dims)
      if (!dim.param.empty()) dims.emplace(dim.param, 1);
  return dims;
}

int64_t bytes_of(const ValueDesc& desc) {
  if (!desc.has_shape || desc.dtype == DType::STRING || dtype_size(desc.dtype) == 0) return -1;
  int64_t count = 1;
  for (const auto& dim : desc.dims) {
    if (dim.value < 0) return -1;
    count *= dim.value;
  }
  return count * static_cast<int64_t>(dtype_size(desc.dtype));
}

bool fully_known(const ValueDesc& desc) { return desc.dtype != DType::UNDEFINED && bytes_of(desc) >= 0; }

// "'a', 'b'": inputs as messages name them.
std::string quoted_names(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "'" : ", '") + name + "'";
  return text;
}

ValueTypes value_types(const Model& model, const Graph& graph, const std::map<std::string, int64_t>& dims,
                       const std::map<std::string, Tensor>& given, const std::map<std::string, ValueDesc>& measured) {
  ValueTypes types;
  bool symbolic_complete = false, concrete_complete = false;
  types.declared = model.infer_shapes({}, &symbolic_complete);
  types.concrete = model.infer_shapes(dims, &concrete_complete);
  types.measured = measured;
  for (const auto& [name, desc] : measured) types.concrete[name] = desc;
  std::vector<std::string> missing;
  for (int position = 0; position < graph.size(); ++position)
    for (const auto& name : graph.desc().nodes[graph.order()[position]].outputs)
      if (!name.empty() && !(types.concrete.count(name) && fully_known(types.concrete.at(name))))
        missing.push_back(name);
  const std::vector<std::string> unshaped = inputs_needing_values(graph.desc(), given);
  if (!missing.empty() && !unshaped.empty()) {
    warn("sizes of " + std::to_string(missing.size()) + " values stay unknown: no run without values for inputs " +
         quoted_names(unshaped) + " (they have no declared shape)");
  } else if (!missing.empty()) {
    // Shape inference could not size everything (a newer opset, a custom op, data-dependent shapes): ask ONNX
    // Runtime. Random inputs may not suit the model (indices out of range): then what inference found must do.
    try {
      for (auto& [name, desc] : run_value_types(model, dims, given, missing)) {
        types.concrete[name] = desc;
        types.measured[name] = std::move(desc);
      }
    } catch (const Error& error) {
      if (error.code() != ErrorCode::RUNTIME) throw;
      warn("sizes of " + std::to_string(missing.size()) +
           " values stay unknown (a run on random inputs failed: " + error.what() + ")");
    }
  }
  return types;
}

// Inputs and outputs declared for a piece: symbolic shape when inference knows it, else dtype only.
ValueDesc declaration(const std::string& name, const ValueTypes& types) {
  ValueDesc desc;
  auto declared = types.declared.find(name);
  auto concrete = types.concrete.find(name);
  if (declared != types.declared.end() && declared->second.dtype != DType::UNDEFINED) {
    desc = declared->second;
  } else if (concrete != types.concrete.end() && concrete->second.dtype != DType::UNDEFINED) {
    desc.dtype = concrete->second.dtype;
    desc.has_shape = false;
  }  // else not a tensor (a sequence...): model_io declares it with the type inference gave it
  desc.name = name;
  desc.bytes = concrete != types.concrete.end() ? bytes_of(concrete->second) : -1;
  return desc;
}

// costs.json: what running the model taught (node costs by node name, and the sizes of values shape inference could
// not tell, for the dims used), so that a later split can reuse it instead of measuring again.
nlohmann::json value_json(const ValueDesc& desc) {
  return {{"dtype", dtype_name(desc.dtype)}, {"shape", desc.concrete_shape()}};
}

nlohmann::json nodes_json(const std::vector<double>& node, const Graph& graph) {
  nlohmann::json nodes = nlohmann::json::object();
  for (int position = 0; position < graph.size(); ++position)
    nodes[graph.desc().nodes[graph.order()[position]].name] = node[position];
  return nodes;
}

// "devices": node costs on the other placement devices, by device_cost_key; "noise", "tie_band" and "runs": of the
// measured times and the band of near-optimal bottlenecks the cut was chosen in.
void save_costs(const Costs& costs, const Graph& graph, const std::map<std::string, int64_t>& dims,
                const std::map<std::string, ValueDesc>& measured, const MemoryConstants& memory, const fs::path& path) {
  nlohmann::json values = nlohmann::json::object(), devices = nlohmann::json::object();
  for (const auto& [name, desc] : measured) values[name] = value_json(desc);
  for (const auto& [key, node] : costs.by_device) devices[key] = nodes_json(node, graph);
  nlohmann::json doc = {{"balance", costs.balance},
                        {"unit", costs.unit},
                        {"device", costs.device},
                        {"dims", dims},
                        {"nodes", nodes_json(costs.node, graph)},
                        {"values", values},
                        {"noise", costs.noise},
                        {"tie_band", costs.tie_band},
                        {"runs", pooled(costs.rounds).size()},
                        {"devices", devices}};
  if (memory.measured())  // what placement measured: a later plan or split reuses it
    doc["memory"] = {{"device", memory.device},
                     {"session_overhead", memory.session_overhead},
                     {"weight_factor", memory.weight_factor}};
  std::ofstream out(path);
  out << doc.dump(1) << "\n";
  if (!out) throw Error(ErrorCode::IO, "cannot write " + path.string());
}

struct SavedCosts {
  Costs costs;
  std::map<std::string, ValueDesc> values;
  MemoryConstants memory;
};

SavedCosts load_costs(const Graph& graph, const std::string& path, const std::map<std::string, int64_t>& dims) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::IO, "cannot read " + path);
  SavedCosts saved;
  try {
    nlohmann::json doc = nlohmann::json::parse(in);
    if (doc.at("dims").get<std::map<std::string, int64_t>>() != dims)
      throw Error(ErrorCode::USAGE, path + " was measured with other dimension values: " + doc.at("dims").dump());
    saved.costs.balance = doc.at("balance").get<std::string>();
    saved.costs.unit = doc.at("unit").get<std::string>();
    saved.costs.device = doc.value("device", "");
    saved.costs.noise = doc.value("noise", 0.0);
    saved.costs.node = time_costs(graph, doc.at("nodes").get<std::map<std::string, double>>());
    for (const auto& [key, nodes] : doc.value("devices", nlohmann::json::object()).items())
      saved.costs.by_device[key] = time_costs(graph, nodes.get<std::map<std::string, double>>());
    for (const auto& [name, value] : doc.at("values").items()) {
      saved.values[name] = ValueDesc::of_shape(name, dtype_from_name(value.at("dtype").get<std::string>()),
                                               value.at("shape").get<std::vector<int64_t>>());
    }
    if (doc.contains("memory")) {
      const nlohmann::json& memory = doc.at("memory");
      saved.memory.device = memory.at("device").get<std::string>();
      saved.memory.session_overhead = memory.at("session_overhead").get<int64_t>();
      saved.memory.weight_factor = memory.at("weight_factor").get<std::map<std::string, double>>();
    }
  } catch (const nlohmann::json::exception& error) {
    throw Error(ErrorCode::USAGE, path + ": not a costs.json of onnxpipe: " + error.what());
  }
  return saved;
}

Costs node_costs(const Model& model, const Graph& graph, Balance balance, const ValueTypes& types,
                 const SplitOptions& options, const std::map<std::string, int64_t>& dims) {
  if ((balance == Balance::AUTO || balance == Balance::TIME) && parse_device(options.device).is_cuda()) {
    // ORT's profiler times a CUDA node's launch, which returns before the kernel ran: such times would balance launch
    // overhead. Until whole candidate pieces are timed on the device, flops stand in.
    warn("node times on " + options.device +
         " would time asynchronous kernel launches, not the kernels: balancing by flops");
    return node_costs(model, graph, Balance::FLOPS, types, options, dims);
  }
  if (balance == Balance::AUTO) {
    // Timing loads the whole model into ORT, which holds the weights about twice (its copies, prepacked MatMul
    // weights): when that cannot fit, flops it is, rather than a process the kernel kills.
    int64_t weight_bytes = 0;
    for (const auto& [name, weight] : graph.desc().weights) weight_bytes += weight.bytes;
    if (const auto unshaped = inputs_needing_values(graph.desc(), options.inputs); !unshaped.empty()) {
      warn("timing needs values for inputs " + quoted_names(unshaped) +
           " (they have no declared shape): balancing by flops");
      return node_costs(model, graph, Balance::FLOPS, types, options, dims);
    }
    const int64_t available = host_memory_available();
    if (available >= 0 && 2 * weight_bytes > available) {
      warn("timing needs the model's " + std::to_string(weight_bytes >> 20) + " MiB of weights twice in memory, " +
           std::to_string(available >> 20) + " MiB available: balancing by flops");
      return node_costs(model, graph, Balance::FLOPS, types, options, dims);
    }
    try {
      return node_costs(model, graph, Balance::TIME, types, options, dims);
    } catch (const Error& error) {
      if (error.code() != ErrorCode::RUNTIME) throw;
      warn("the model does not run on " + options.device + " (" + error.what() + "): balancing by flops");
      return node_costs(model, graph, Balance::FLOPS, types, options, dims);
    }
  }
  Costs costs;
  costs.balance = balance_name(balance);
  costs.device = options.device;
  switch (balance) {
    case Balance::BYTES:
      costs.node = weight_bytes_costs(graph);
      costs.unit = "bytes";
      break;
    case Balance::FLOPS: {
      std::map<std::string, ValueDesc> shapes = types.concrete;
      for (const auto& [name, weight] : graph.desc().weights)
        shapes.emplace(name, ValueDesc::of_shape(name, weight.dtype, weight.shape));
      costs.node = flops_costs(graph, shapes);
      costs.unit = "flops";
      break;
    }
    case Balance::TIME:
      costs.device = options.device;
      for (int round = 0; round < kMinRounds; ++round) measure_round(model, graph, dims, options, costs);
      costs.unit = "us";
      break;
    case Balance::AUTO:
      break;
  }
  return costs;
}

// Runs for a device's throughput: the whole model, a few times (the median is kept).
constexpr int kCalibrationRuns = 3;

// The placement devices of distinct kinds or speeds, first ones first (device_cost_key).
std::vector<DeviceSpec> distinct_devices(const std::vector<DeviceSpec>& devices) {
  std::vector<DeviceSpec> distinct;
  std::set<std::string> keys;
  for (DeviceSpec device : devices) {
    device.capacity = -1;
    if (keys.insert(device_cost_key(device)).second) distinct.push_back(device);
  }
  return distinct;
}

// Node costs on every distinct placement device, in the unit of the first one's: measured times on each CPU kind
// when the first is timed; else (and on CUDA, whose profiler times launches) flops scaled by each device's measured
// time for the whole model (a short calibration run), relative to the first device's.
Costs costs_on_devices(const Model& model, const Graph& graph, Balance balance, const ValueTypes& types,
                       const SplitOptions& options, const std::map<std::string, int64_t>& dims) {
  const std::vector<DeviceSpec> devices = distinct_devices(options.placement.devices);
  if (devices.empty()) return node_costs(model, graph, balance, types, options, dims);
  SplitOptions on = options;
  on.device = devices.front().to_string();
  Costs costs = node_costs(model, graph, balance, types, on, dims);
  if (devices.size() == 1 || costs.unit == "bytes") return costs;
  const std::vector<double> flops = node_costs(model, graph, Balance::FLOPS, types, on, dims).node;
  const double total_flops = std::accumulate(flops.begin(), flops.end(), 0.0);
  auto scaled_flops = [&](double run_us, double per_run) {
    std::vector<double> scaled;
    for (double f : flops) scaled.push_back(f * per_run / run_us);
    return scaled;
  };
  const double first_us =
      costs.unit == "us" ? 0 : measure_model_run(model, dims, options.inputs, on.device, kCalibrationRuns);
  for (size_t d = 1; d < devices.size(); ++d) {
    on.device = devices[d].to_string();
    std::vector<double>& device_costs = costs.by_device[device_cost_key(devices[d])];
    report(options.progress, "measuring " + on.device, 0, 0);
    if (costs.unit == "us" && !devices[d].is_cuda()) {
      device_costs = node_costs(model, graph, Balance::TIME, types, on, dims).node;
    } else {
      // flops / (flops per us) in us, or flops x (first device's time / this one's) in the first device's flops.
      const double run_us = measure_model_run(model, dims, options.inputs, on.device, kCalibrationRuns);
      device_costs = costs.unit == "us" ? scaled_flops(total_flops, run_us) : scaled_flops(first_us, run_us);
    }
  }
  return costs;
}

}  // namespace

std::string device_cost_key(const DeviceSpec& device) {
  return device.is_cuda() ? "cuda" : "cpu:" + std::to_string(device.thread_count());
}

std::unordered_map<std::string, int64_t> known_bytes(const ValueTypes& types) {
  std::unordered_map<std::string, int64_t> bytes;
  for (const auto& [name, desc] : types.concrete) bytes[name] = bytes_of(desc);
  return bytes;
}

std::unique_ptr<Analysis> analyse(const std::string& model_path, Balance balance, const SplitOptions& options) {
  report(options.progress, "loading model", 0, 0);
  auto analysis = std::make_unique<Analysis>(Model::load(model_path));
  const Graph& graph = analysis->graph;
  if (graph.size() == 0) throw Error(ErrorCode::INVALID_MODEL, model_path + ": the graph has no compute node");
  check_weight_storage(graph.desc(), options.weights);
  analysis->dims = dims_with_defaults(graph.desc(), options.dims);
  report(options.progress, "typing values", 0, 0);
  if (options.costs_file.empty()) {
    analysis->types = value_types(analysis->model, graph, analysis->dims, options.inputs, {});
    analysis->costs = costs_on_devices(analysis->model, graph, balance, analysis->types, options, analysis->dims);
  } else {
    SavedCosts saved = load_costs(graph, options.costs_file, analysis->dims);
    analysis->types = value_types(analysis->model, graph, analysis->dims, options.inputs, saved.values);
    analysis->costs = std::move(saved.costs);
    analysis->memory = std::move(saved.memory);
  }
  analysis->sizes = value_sizes(graph, known_bytes(analysis->types));
  analysis->crossing_bytes = graph.crossing_bytes(analysis->sizes.bytes);
  double per_byte = transfer_cost_per_byte(analysis->costs.unit);
  for (int64_t bytes : analysis->crossing_bytes) analysis->transfer_cost.push_back(per_byte * double(bytes));
  // Pieces declare what crosses as ORT types it in the model: with more shape than that, ORT could fuse in a piece
  // what it does not fuse in the model.
  FusionGuard guard = guard_fusions(analysis->model, graph, analysis->types.concrete, options.device);
  analysis->fused = std::move(guard.blocked);
  for (auto& [name, desc] : guard.types) analysis->types.declared[name] = std::move(desc);
  return analysis;
}

namespace {

// A value as a piece declares it, with the bytes the partition counted for it.
ValueDesc piece_value(const std::string& name, const Analysis& analysis) {
  ValueDesc desc = declaration(name, analysis.types);
  if (analysis.sizes.estimated.count(name)) {
    desc.bytes = analysis.sizes.bytes.at(name);
    desc.bytes_estimated = true;
  }
  return desc;
}

// The nodes, weights, inputs and outputs of the piece made of positions [begin, end).
struct PieceContent {
  PieceSpec spec;
  std::vector<std::string> weight_names;  // initializers and Constant-node weights
  std::vector<int> recomputed;            // nodes run again here (Graph::recomputed)
};

PieceContent piece_content(const Analysis& analysis, int begin, int end) {
  const Graph& graph = analysis.graph;
  const GraphDesc& desc = graph.desc();
  PieceContent content;
  std::set<std::string> weights, inputs_seen;
  std::set<int> constant_nodes;
  std::vector<std::pair<int, std::string>> inputs;  // (producer position, name): the order a reader expects
  std::set<int> recomputed_seen;
  for (int position = begin; position < end; ++position) {
    // Each list runs its nodes after what they read, so appending the unseen ones keeps a valid order.
    for (int node : graph.recomputed(position))
      if (recomputed_seen.insert(node).second) content.recomputed.push_back(node);
    for (const auto& name : graph.weights_read(position)) {
      const WeightDesc& weight = desc.weights.at(name);
      if (weight.constant_node >= 0) constant_nodes.insert(weight.constant_node);
      weights.insert(name);
    }
    for (const auto& name : graph.reads(position)) {
      int producer = graph.producer_position(name);
      if (producer < begin && inputs_seen.insert(name).second) inputs.emplace_back(producer, name);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  // Constant weights first (in file order), then the recomputed nodes, then the compute nodes in execution order.
  content.spec.nodes.assign(constant_nodes.begin(), constant_nodes.end());
  content.spec.nodes.insert(content.spec.nodes.end(), content.recomputed.begin(), content.recomputed.end());
  for (int position = begin; position < end; ++position) content.spec.nodes.push_back(graph.order()[position]);
  for (const auto& name : weights)
    if (desc.weights.at(name).constant_node < 0) content.spec.weights.push_back(name);
  content.weight_names.assign(weights.begin(), weights.end());
  for (const auto& [producer, name] : inputs) content.spec.inputs.push_back(piece_value(name, analysis));

  std::set<std::string> graph_outputs;
  for (const auto& output : desc.outputs) graph_outputs.insert(output.name);
  for (int position = begin; position < end; ++position) {
    for (const auto& name : desc.nodes[graph.order()[position]].outputs) {
      if (name.empty()) continue;
      if (graph.last_reader(name) >= end || graph_outputs.count(name))
        content.spec.outputs.push_back(piece_value(name, analysis));
    }
  }
  return content;
}

}  // namespace

PieceSpec piece_spec(const Analysis& analysis, int begin, int end) { return piece_content(analysis, begin, end).spec; }

namespace {

// A graph output no node makes (a weight, or a graph input passed through) leaves from the first piece.
void add_unproduced_outputs(const Analysis& analysis, PieceContent& first) {
  const GraphDesc& desc = analysis.graph.desc();
  for (const auto& output : desc.outputs) {
    auto weight = desc.weights.find(output.name);
    if (weight == desc.weights.end()) {
      if (analysis.graph.is_graph_input(output.name))
        throw Error(ErrorCode::INVALID_MODEL, "graph output '" + output.name + "' is a graph input: nothing to split");
      continue;
    }
    if (weight->second.constant_node >= 0) continue;  // a Constant graph output is a compute node
    first.spec.weights.push_back(output.name);
    first.weight_names.push_back(output.name);
    first.spec.outputs.push_back(declaration(output.name, analysis.types));
  }
}

ValueDesc model_value(const ValueDesc& declared, const ValueTypes& types) {
  ValueDesc desc = declared;
  auto concrete = types.concrete.find(declared.name);
  if (concrete != types.concrete.end()) desc.bytes = bytes_of(concrete->second);
  return desc;
}

}  // namespace

std::vector<PieceDesc> write_pieces(const Analysis& analysis, const Partition& partition, const fs::path& dir,
                                    const SplitOptions& options, const std::map<std::string, std::string>& links,
                                    int64_t* duplicated_nodes) {
  const GraphDesc& desc = analysis.graph.desc();
  const int parts = static_cast<int>(partition.starts.size()) - 1;
  std::vector<PieceContent> contents;
  for (int piece = 0; piece < parts; ++piece)
    contents.push_back(piece_content(analysis, partition.starts[piece], partition.starts[piece + 1]));
  add_unproduced_outputs(analysis, contents.front());

  // Weights held by more than one piece are duplicated bytes.
  std::map<std::string, int> holders;
  std::set<int> recomputed;
  int64_t recomputed_copies = 0;
  for (const auto& content : contents) {
    for (const auto& name : content.weight_names) ++holders[name];
    recomputed.insert(content.recomputed.begin(), content.recomputed.end());
    recomputed_copies += static_cast<int64_t>(content.recomputed.size());
  }
  *duplicated_nodes = recomputed_copies - static_cast<int64_t>(recomputed.size());
  if (!recomputed.empty())
    log(LogLevel::INFO, "recomputed " + std::to_string(recomputed.size()) +
                            " node(s) reading only weights and constants in the pieces that read their outputs, "
                            "instead of passing those: " +
                            std::to_string(*duplicated_nodes) + " duplicated");

  std::vector<PieceDesc> pieces;
  for (int piece = 0; piece < parts; ++piece) {
    PieceContent& content = contents[piece];
    PieceDesc piece_desc;
    piece_desc.index = piece;
    piece_desc.file = "piece_" + std::to_string(piece) + ".onnx";
    int64_t own_bytes = 0;  // not in a linked file
    for (const auto& name : content.weight_names) {
      const WeightDesc& weight = desc.weights.at(name);
      piece_desc.weight_bytes += weight.bytes;
      if (holders[name] > 1) piece_desc.duplicated_bytes += weight.bytes;
      if (links.empty() || !weight.external) own_bytes += weight.bytes;
    }
    if ((desc.external_data && links.empty()) || own_bytes > options.external_data_threshold)
      piece_desc.data_file = "piece_" + std::to_string(piece) + ".data";
    content.spec.data_file = piece_desc.data_file;
    content.spec.linked_data = links;
    piece_desc.node_count = partition.starts[piece + 1] - partition.starts[piece];
    piece_desc.recomputed_nodes = static_cast<int64_t>(content.recomputed.size());
    piece_desc.cost = partition.piece_cost[piece];
    piece_desc.inputs = content.spec.inputs;
    piece_desc.outputs = content.spec.outputs;
    report(options.progress, "writing pieces", piece, parts);
    analysis.model.write_piece(content.spec, (dir / piece_desc.file).string());
    pieces.push_back(std::move(piece_desc));
  }
  report(options.progress, "writing pieces", parts, parts);
  return pieces;
}

}  // namespace detail

Plan split_model(const std::string& model_path, const SplitOptions& given) {
  using namespace detail;
  SplitOptions options = given;
  if (given.cancelled) options.progress = cancellable(given.progress, given.cancelled, "split");
  if (options.parts < 1)
    throw Error(ErrorCode::USAGE, "the number of pieces must be >= 1, got " + std::to_string(options.parts));
  if (options.output_dir.empty()) throw Error(ErrorCode::USAGE, "no output directory given");
  check_replaceable(options.output_dir, options.force);

  auto analysis = analyse(model_path, options.balance, options);
  const Graph& graph = analysis->graph;
  const GraphDesc& desc = graph.desc();
  // Hashing a big model takes as long as writing its pieces: do it on the side.
  std::future<std::string> sha256 = std::async(std::launch::async, [&desc] { return sha256_model(desc); });

  PartitionProblem problem;
  problem.node_cost = analysis->costs.node;
  problem.transfer_cost = analysis->transfer_cost;
  problem.crossing_bytes = analysis->crossing_bytes;
  problem.blocked = analysis->fused;
  problem.parts = options.parts;
  for (const auto& tensor : options.cuts) {
    auto bad_cut = [&tensor](const std::string& reason) {
      return Error(ErrorCode::USAGE, "cut '" + tensor + "': " + reason, ArgumentContext{"cuts", tensor, reason});
    };
    int boundary = graph.boundary_after(tensor);
    if (!problem.forced.empty() && boundary <= problem.forced.back())
      throw bad_cut("not after the previous cut in execution order");
    if (boundary >= graph.size()) throw bad_cut("made by the last node: nothing would follow the cut");
    if (!problem.blocked.empty() && problem.blocked[boundary])
      warn("cut '" + tensor +
           "' splits nodes ONNX Runtime fuses into one: the pieces may differ from the model in "
           "the last bits");
    problem.forced.push_back(boundary);
  }
  report(options.progress, "partitioning", 0, 0);
  if (!options.placement.devices.empty()) measure_memory(*analysis, options.placement);
  Partition partition = balanced_partition(*analysis, problem, options);
  const int parts = options.parts;
  const bool time_pieces_too = !analysis->costs.rounds.empty() && options.placement.devices.empty() &&
                               !parse_device(analysis->costs.device).is_cuda();

  Plan plan;
  plan.source_path = fs::absolute(model_path).string();
  plan.balance = analysis->costs.balance;
  plan.cost_unit = analysis->costs.unit;
  plan.dims = analysis->dims;
  for (const auto& input : desc.inputs) plan.model_inputs.push_back(model_value(input, analysis->types));
  for (const auto& output : desc.outputs) plan.model_outputs.push_back(model_value(output, analysis->types));

  StagingDir staging(options.output_dir);
  const std::map<std::string, std::string> links = link_data_files(desc, options.weights, staging.path());
  plan.weights = links.empty() ? "copy" : "link";
  for (const auto& [source, name] : links) plan.linked_files.push_back(name);
  if (!links.empty())
    log(LogLevel::INFO, "weights: the pieces point into " + std::to_string(links.size()) +
                            " hard link(s) of the source's data files, nothing copied");
  plan.pieces = write_pieces(*analysis, partition, staging.path(), options, links, &plan.duplicated_nodes);
  if (time_pieces_too) {
    partition =
        timed_partition(*analysis, problem, options, staging.path().string(), std::move(partition), plan.pieces,
                        [&](const Partition& cut) {
                          return write_pieces(*analysis, cut, staging.path(), options, links, &plan.duplicated_nodes);
                        });
  }
  if (!options.placement.devices.empty() && options.placement.measure_memory) {
    // The placement with the activations its pieces hold when they run (placement.h).
    report(options.progress, "dry runs", 0, 0);
    partition = measured_placement(*analysis, problem, options.placement, options.inputs, staging.path().string(),
                                   std::move(partition), plan.pieces,
                                   [&](const Partition& cut) {
                                     return write_pieces(*analysis, cut, staging.path(), options, links,
                                                         &plan.duplicated_nodes);
                                   })
                    .partition;
  }
  predict_piece_memory(*analysis, partition, plan.pieces);
  plan.source_sha256 = sha256.get();
  std::map<std::string, CrossingValue> values;
  for (const PieceDesc& piece : plan.pieces) {
    for (const auto& input : piece.inputs) {
      CrossingValue& value = values[input.name];
      value.name = input.name;
      value.consumers.push_back(piece.index);
    }
    for (const auto& output : piece.outputs) {
      CrossingValue& value = values[output.name];
      value.name = output.name;
      value.producer = piece.index;
    }
  }
  for (const auto& output : desc.outputs)
    if (values.count(output.name)) values[output.name].graph_output = true;
  for (auto& [name, value] : values) plan.values.push_back(std::move(value));

  // The partition timed_partition keeps may come from an earlier pass, costed before the last correction: cost it
  // with the node costs the plan reports, else max / ideal mixes two scales (and was seen under 1).
  if (time_pieces_too) {  // no placement: one cost per node for every stage
    partition = costed_partition(problem, partition.starts);
    for (size_t piece = 0; piece < plan.pieces.size(); ++piece) plan.pieces[piece].cost = partition.piece_cost[piece];
  }
  plan.predicted_max_cost = partition.max_cost;
  const double total = std::accumulate(problem.node_cost.begin(), problem.node_cost.end(), 0.0);
  plan.ideal_cost = total / parts;
  plan.heaviest_node_cost = *std::max_element(problem.node_cost.begin(), problem.node_cost.end());
  plan.validate();
  plan.save(staging.path().string());
  save_costs(analysis->costs, graph, analysis->dims, analysis->types.measured, analysis->memory,
             staging.path() / "costs.json");
  check_cancelled(options.cancelled, "split");
  staging.commit(options.force);
  return plan;
}

ModelSummary inspect_model(const std::string& model_path, const InspectOptions& inspect) {
  using namespace detail;
  SplitOptions options;
  options.dims = inspect.dims;
  const int candidates = inspect.candidates;
  auto analysis = analyse(model_path, inspect.balance, options);
  const Graph& graph = analysis->graph;
  const GraphDesc& desc = graph.desc();

  ModelSummary summary;
  summary.path = model_path;
  summary.file_bytes = desc.file_bytes;
  summary.ir_version = desc.ir_version;
  summary.producer = desc.producer_name;
  summary.opsets = desc.opsets;
  summary.node_count = graph.size();
  for (int node : graph.order()) ++summary.op_counts[desc.nodes[node].op_type];
  summary.weight_count = static_cast<int64_t>(desc.weights.size());
  for (const auto& [name, weight] : desc.weights) summary.weight_bytes += weight.bytes;
  summary.external_data = desc.external_data;
  summary.function_count = desc.function_count;
  for (const auto& input : desc.inputs) summary.inputs.push_back(model_value(input, analysis->types));
  for (const auto& output : desc.outputs) summary.outputs.push_back(model_value(output, analysis->types));
  summary.boundary_count = std::max(0, graph.size() - 1);
  summary.balance = analysis->costs.balance;

  // Candidates: near each of `candidates` evenly spaced cost fractions, the boundary with the fewest crossing bytes
  // within +-5% of the total cost.
  const std::vector<double>& cost = analysis->costs.node;
  std::vector<double> prefix(cost.size() + 1, 0.0);
  std::partial_sum(cost.begin(), cost.end(), prefix.begin() + 1);
  const double total = prefix.back() > 0 ? prefix.back() : 1.0;
  std::set<int> chosen;
  for (int i = 1; i <= candidates && graph.size() > 1; ++i) {
    double target = total * i / (candidates + 1);
    int best = -1;
    for (int k = 1; k < graph.size(); ++k) {
      if (std::abs(prefix[k] - target) > 0.05 * total) continue;
      if (best < 0 || analysis->crossing_bytes[k] < analysis->crossing_bytes[best] ||
          (analysis->crossing_bytes[k] == analysis->crossing_bytes[best] &&
           std::abs(prefix[k] - target) < std::abs(prefix[best] - target)))
        best = k;
    }
    if (best < 0) {  // no boundary near the target (one heavy node): the closest one
      best = 1;
      for (int k = 1; k < graph.size(); ++k)
        if (std::abs(prefix[k] - target) < std::abs(prefix[best] - target)) best = k;
    }
    chosen.insert(best);
  }
  for (int k : chosen) {
    CutCandidate candidate;
    candidate.boundary = k;
    candidate.after_node = desc.nodes[graph.order()[k - 1]].name;
    candidate.tensors = graph.crossing(k);
    for (const auto& name : candidate.tensors) {
      candidate.tensor_bytes.push_back(analysis->sizes.bytes.at(name));
      if (analysis->sizes.estimated.count(name)) candidate.estimated.push_back(name);
    }
    candidate.crossing_bytes = analysis->crossing_bytes[k];
    candidate.cost_before_share = prefix[k] / total;
    summary.best_cuts.push_back(std::move(candidate));
  }
  return summary;
}

}  // namespace onnxpipe
