#pragma once
// What split learns of a source model before it partitions it (split.cpp makes it), shared with placement, which
// partitions the same analysis under the devices' memory.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cost.h"
#include "graph.h"
#include "model_io.h"
#include "onnxpipe/device.h"
#include "onnxpipe/split.h"
#include "partition.h"
#include "robust_times.h"

namespace onnxpipe::detail {

// What we know of every value: `declared` keeps symbolic dims (for the pieces' declarations), `concrete` has the
// sizes for the requested dims (for costs and bytes).
struct ValueTypes {
  std::map<std::string, ValueDesc> declared;
  std::map<std::string, ValueDesc> concrete;
  std::map<std::string, ValueDesc> measured;  // the part of `concrete` that only a run could tell
};

// What sets a device's node costs: its kind and, on CPU, its thread count (pinning does not change its speed).
std::string device_cost_key(const DeviceSpec& device);

struct Costs {
  std::vector<double> node;  // per position, on `device`
  std::string unit;
  std::string balance;
  std::string device;            // where they were measured: the split's device, or the first placement device
  std::vector<RunTimes> rounds;  // time: the profiled runs behind `node`, per position (empty otherwise)
  std::vector<double> scale;     // time: per position, what timing candidate pieces corrected (piece_scale); empty: 1
  double noise = 0;              // relative standard error of the predicted piece costs; 0 when not measured
  double tie_band = 0;           // the tie tolerance the cut was chosen with (tie_tolerance(noise)); 0: exact
  // Placement devices of another kind or speed than `device`: their node costs in the same unit, by device_cost_key.
  std::map<std::string, std::vector<double>> by_device;
  const std::vector<double>& on(const DeviceSpec& other) const {
    const auto it = by_device.find(device_cost_key(other));
    return it == by_device.end() ? node : it->second;
  }
};

// What a stage's memory is made of on a device kind (memory_probe.h), measured or read back from costs.json.
struct MemoryConstants {
  std::string device;                           // where they were measured; empty: not measured
  int64_t session_overhead = -1;                // heap a session holds besides its weights and activations
  std::map<std::string, double> weight_factor;  // op type -> bytes held per weight byte it reads (absent: 1)
  bool measured() const { return !device.empty(); }
};

// Everything about the source model that split, inspect and placement need.
struct Analysis {
  explicit Analysis(Model source) : model(std::move(source)), graph(model.graph()) {}
  Model model;
  Graph graph;
  std::map<std::string, int64_t> dims;
  ValueTypes types;
  Costs costs;
  ValueSizes sizes;                     // what each value weighs when it crosses, estimates marked
  std::vector<int64_t> crossing_bytes;  // per boundary 0..n
  std::vector<double> transfer_cost;    // per boundary 0..n
  std::vector<char> fused;              // per boundary 0..n: 1 inside what ORT fuses (fusion_guard.h); may be empty
  MemoryConstants memory;               // from costs.json, or measured when placement first needs them
  // Per position: what dry runs of the pieces measured over the static activation estimate of the last dry-run
  // piece that held it (placement.h: correct_activations); empty: not measured, 1.
  std::vector<double> activation_scale;
};

// Loads the model, types its values and costs its nodes as `options` say (dims, device, costs_file, progress).
std::unique_ptr<Analysis> analyse(const std::string& model_path, Balance balance, const SplitOptions& options);

// The nodes, weights, inputs and outputs of the piece made of positions [begin, end), as split writes it.
PieceSpec piece_spec(const Analysis& analysis, int begin, int end);

// Writes the pieces of `partition` into `dir` (piece_K.onnx and, for big pieces or an external-data source whose
// files are not linked, piece_K.data) and describes them for the plan. `links`: the source's data files linked into
// dir (link_data_files). *duplicated_nodes: recomputed nodes run by more than one piece, counted once per piece
// beyond the first.
std::vector<PieceDesc> write_pieces(const Analysis& analysis, const Partition& partition,
                                    const std::filesystem::path& dir, const SplitOptions& options,
                                    const std::map<std::string, std::string>& links, int64_t* duplicated_nodes);

// Bytes of every concretely typed value (-1 when its size is unknown).
std::unordered_map<std::string, int64_t> known_bytes(const ValueTypes& types);

}  // namespace onnxpipe::detail
