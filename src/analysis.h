#pragma once
// What split learns of a source model before it partitions it (split.cpp makes it), shared with placement, which
// partitions the same analysis under the devices' memory.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cost.h"
#include "graph.h"
#include "model_io.h"
#include "onnxpipe/split.h"

namespace onnxpipe::detail {

// What we know of every value: `declared` keeps symbolic dims (for the pieces' declarations), `concrete` has the
// sizes for the requested dims (for costs and bytes).
struct ValueTypes {
  std::map<std::string, ValueDesc> declared;
  std::map<std::string, ValueDesc> concrete;
  std::map<std::string, ValueDesc> measured;  // the part of `concrete` that only a run could tell
};

struct Costs {
  std::vector<double> node;
  std::string unit;
  std::string balance;
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
  MemoryConstants memory;               // from costs.json, or measured when placement first needs them
};

// Loads the model, types its values and costs its nodes as `options` say (dims, device, costs_file, progress).
std::unique_ptr<Analysis> analyse(const std::string& model_path, Balance balance, const SplitOptions& options);

// The nodes, weights, inputs and outputs of the piece made of positions [begin, end), as split writes it.
PieceSpec piece_spec(const Analysis& analysis, int begin, int end);

// Bytes of every concretely typed value (-1 when its size is unknown).
std::unordered_map<std::string, int64_t> known_bytes(const ValueTypes& types);

}  // namespace onnxpipe::detail
