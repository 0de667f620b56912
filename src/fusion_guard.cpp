#include "fusion_guard.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "log.h"
#include "onnxpipe/error.h"
#include "runtime.h"
#include "staging.h"

namespace fs = std::filesystem;

namespace onnxpipe::detail {
namespace {

// Union-find over positions: the positions one fused node covers end up in one set.
class Groups {
 public:
  explicit Groups(int n) : parent_(static_cast<size_t>(n)) { std::iota(parent_.begin(), parent_.end(), 0); }
  int find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void unite(int a, int b) { parent_[find(a)] = find(b); }

 private:
  std::vector<int> parent_;
};

// ORT's optimised form of the model on `device`, written by a session of the model with its large weights as zeros
// (ConstantOfShape nodes that constant folding must leave alone, or they would all be in memory at once) and every
// value declared by its dtype (so that the saved model says what shape ORT inferred for it).
GraphDesc optimised_graph(const Model& model, const std::map<std::string, DType>& dtypes,
                          const std::vector<std::string>& exposed, const std::string& device, const TempDir& dir) {
  SessionConfig config;
  config.device = device;
  config.optimization_level = 2;  // the fusions; the layout level (NCHWc) reorders without changing the sums
  config.external_data_dir = fs::path(model.graph().path).parent_path().string();
  if (config.external_data_dir.empty()) config.external_data_dir = ".";
  const std::string path = (dir.path() / (exposed.empty() ? "optimised.onnx" : "exposed.onnx")).string();
  config.session_options = {
      {"session.optimized_model_filepath", path},
      {"session.optimized_model_external_initializers_file_name", exposed.empty() ? "optimised.data" : "exposed.data"},
      {"optimization.constant_folding_max_output_size_in_bytes", "65536"}};
  Session::from_bytes(model.serialize(exposed, Model::Weights::ZEROS, {}, dtypes), config);
  return Model::load(path).graph();
}

}  // namespace

std::vector<int> fused_groups(const Graph& graph, const std::map<std::string, int>& produced_by,
                              const std::set<std::string>& kept) {
  const GraphDesc& desc = graph.desc();
  const int n = graph.size();
  std::map<std::string, std::vector<int>> readers;
  for (int position = 0; position < n; ++position)
    for (const auto& name : graph.reads(position)) readers[name].push_back(position);
  Groups groups(n);
  std::map<int, int> first_position;  // optimised node -> the first position it covers
  for (int position = 0; position < n; ++position) {
    const NodeDesc& node = desc.nodes[graph.order()[position]];
    bool survives = false;
    for (const auto& name : node.outputs) {
      if (name.empty()) continue;
      const auto made = produced_by.find(name);
      if (made != produced_by.end()) {
        const auto first = first_position.emplace(made->second, position).first;
        groups.unite(position, first->second);
        survives = true;
      } else if (kept.count(name)) {
        survives = true;
      }
    }
    if (survives) continue;
    for (const auto& name : node.outputs) {
      const auto it = readers.find(name);
      if (it == readers.end()) continue;
      for (int reader : it->second) groups.unite(position, reader);
    }
  }
  std::vector<int> group(static_cast<size_t>(n));
  for (int position = 0; position < n; ++position) group[position] = groups.find(position);
  return group;
}

std::vector<char> blocked_boundaries(const Graph& graph, const std::vector<int>& fused,
                                     const std::vector<int>& exposed) {
  const int n = graph.size();
  std::map<int, std::vector<int>> members;  // group -> its positions, ascending
  for (int position = 0; position < n; ++position) members[fused[position]].push_back(position);
  // Difference array over the boundaries: a range [first, last] of boundaries adds 1 to each.
  std::vector<int> delta(static_cast<size_t>(n) + 2, 0);
  auto block = [&](int first, int last) {
    if (first > last) return;
    ++delta[first];
    --delta[last + 1];
  };
  for (const auto& [group, positions] : members) {
    if (positions.size() < 2) continue;
    block(positions.front() + 1, positions.back());
    const bool intact = std::all_of(positions.begin(), positions.end(),
                                    [&](int p) { return exposed[p] == exposed[positions.front()]; });
    if (intact) continue;
    for (int position : positions)
      for (const auto& name : graph.desc().nodes[graph.order()[position]].outputs)
        if (!name.empty()) block(position + 1, graph.last_reader(name));
  }
  std::vector<char> blocked(static_cast<size_t>(n) + 1, 0);
  for (int b = 1, inside = 0; b < n; ++b) blocked[b] = (inside += delta[b]) > 0;
  return blocked;
}

// Per node output of `optimised`: the index of the node making it; and its other values (weights, graph inputs).
std::vector<int> groups_of(const Graph& graph, const GraphDesc& optimised) {
  std::map<std::string, int> produced_by;
  std::set<std::string> kept;
  for (int index = 0; index < static_cast<int>(optimised.nodes.size()); ++index)
    for (const auto& name : optimised.nodes[index].outputs)
      if (!name.empty()) produced_by.emplace(name, index);
  for (const auto& [name, weight] : optimised.weights) kept.insert(name);
  for (const auto& input : optimised.inputs) kept.insert(input.name);
  return fused_groups(graph, produced_by, kept);
}

FusionGuard guard_fusions(const Model& model, const Graph& graph, const std::map<std::string, ValueDesc>& dtypes,
                          const std::string& device) {
  std::map<std::string, DType> typed;
  for (const auto& name : graph.value_names())
    if (!graph.is_graph_input(name) && dtypes.count(name)) typed[name] = dtypes.at(name).dtype;
  // Twice: as the model is, and with every value that survives as a graph output, as a piece exposes what crosses
  // its end (ORT leaves some patterns unfused when their result is a graph output: FastGelu).
  GraphDesc optimised, exposed;
  try {
    TempDir dir("fusion_guard");
    auto optimise = [&](const std::string& on) {
      optimised = optimised_graph(model, typed, {}, on, dir);
      std::vector<std::string> survivors;
      for (const auto& node : optimised.nodes)
        for (const auto& name : node.outputs)
          if (typed.count(name)) survivors.push_back(name);
      exposed = optimised_graph(model, typed, survivors, on, dir);
    };
    try {
      optimise(device);
    } catch (const Error& error) {
      if (!parse_device(device).is_cuda()) throw;
      log(LogLevel::INFO, "fusion guard: " + device + " cannot optimise the model (" + error.what() +
                              "): the CPU's fusions are kept whole instead");
      optimise("cpu");
    }
  } catch (const Error& error) {
    log(LogLevel::INFO, std::string("cuts may split what ONNX Runtime fuses (the pieces may then differ from the "
                                    "model in the last bits): optimising the model failed: ") +
                            error.what());
    return {};
  }
  FusionGuard guard;
  guard.blocked = blocked_boundaries(graph, groups_of(graph, optimised), groups_of(graph, exposed));
  std::set<std::string> made;
  for (const auto& node : optimised.nodes) made.insert(node.outputs.begin(), node.outputs.end());
  for (const auto& [name, desc] : optimised.value_infos)
    if (typed.count(name) && made.count(name) && desc.dtype == typed.at(name)) guard.types[name] = desc;
  return guard;
}

}  // namespace onnxpipe::detail
