#include "graph.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <unordered_set>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

Error invalid(const std::string& message) { return Error(ErrorCode::INVALID_MODEL, message); }

// What the constructor learns about the nodes before it orders them: it sees them by file index, values by dense id.
struct Scan {
  std::unordered_set<std::string> graph_outputs;
  // A Constant node whose output is a weight is copied into every piece that reads it, so it is not scheduled;
  // one whose output is also a graph output is an ordinary compute node (its output must leave from one piece).
  std::vector<char> constant_weight;
  std::unordered_map<std::string, int> value_id;
  std::vector<int> producer_node;                      // by value id: file index of the producer (-1: graph input)
  std::vector<std::vector<int>> node_reads;            // by node: value ids, unique, in the order they appear
  std::vector<std::vector<std::string>> node_weights;  // by node: weight names, unique, in the order they appear

  bool is_weight(const GraphDesc& desc, const std::string& name) const {
    auto it = desc.weights.find(name);
    return it != desc.weights.end() && (it->second.constant_node < 0 || !graph_outputs.count(name));
  }
};

void find_constant_weights(const GraphDesc& desc, Scan* scan) {
  const int node_count = static_cast<int>(desc.nodes.size());
  for (const auto& output : desc.outputs) scan->graph_outputs.insert(output.name);
  scan->constant_weight.assign(node_count, 0);
  for (const auto& [name, weight] : desc.weights) {
    if (weight.constant_node < 0 || scan->graph_outputs.count(name)) continue;
    if (weight.constant_node >= node_count)
      throw invalid("weight '" + name + "' names Constant node " + std::to_string(weight.constant_node) +
                    ", but the graph has " + std::to_string(node_count) + " nodes");
    scan->constant_weight[weight.constant_node] = 1;
  }
}

// Gives graph inputs and node outputs their ids; throws for a value produced twice.
void number_values(const GraphDesc& desc, Scan* scan) {
  const std::vector<NodeDesc>& nodes = desc.nodes;
  auto& value_id = scan->value_id;
  auto& producer_node = scan->producer_node;
  value_id.reserve(desc.inputs.size() + 2 * nodes.size());
  for (const auto& input : desc.inputs) {
    if (!value_id.emplace(input.name, static_cast<int>(producer_node.size())).second)
      throw invalid("graph input '" + input.name + "' is declared twice");
    producer_node.push_back(-1);
  }
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    for (const auto& output : nodes[i].outputs) {
      if (output.empty()) continue;
      if (scan->constant_weight[i]) {
        // Its output is the weight itself; only a clash with a graph input is possible here.
        if (value_id.count(output))
          throw invalid("value '" + output + "' is produced twice (graph input and Constant node '" + nodes[i].name +
                        "')");
        continue;
      }
      if (scan->is_weight(desc, output))
        throw invalid("value '" + output + "' is produced twice (weight and node '" + nodes[i].name + "')");
      auto [it, inserted] = value_id.emplace(output, static_cast<int>(producer_node.size()));
      if (!inserted) {
        int first = producer_node[it->second];
        throw invalid("value '" + output + "' is produced twice (" +
                      (first < 0 ? std::string("graph input") : "node '" + nodes[first].name + "'") + " and node '" +
                      nodes[i].name + "')");
      }
      producer_node.push_back(i);
    }
  }
}

// Lists what each compute node reads; throws for a name that nothing provides.
void list_reads(const GraphDesc& desc, Scan* scan) {
  const int node_count = static_cast<int>(desc.nodes.size());
  scan->node_reads.resize(node_count);
  scan->node_weights.resize(node_count);
  std::vector<int> seen_by(scan->producer_node.size(), -1);  // last node that listed the value: dedup without sets
  for (int i = 0; i < node_count; ++i) {
    if (scan->constant_weight[i]) continue;
    const NodeDesc& node = desc.nodes[i];
    auto& weights = scan->node_weights[i];
    auto add = [&](const std::string& name) {
      if (name.empty()) return;
      auto it = scan->value_id.find(name);
      if (it != scan->value_id.end()) {
        if (seen_by[it->second] != i) {
          seen_by[it->second] = i;
          scan->node_reads[i].push_back(it->second);
        }
      } else if (scan->is_weight(desc, name)) {
        if (std::find(weights.begin(), weights.end(), name) == weights.end()) weights.push_back(name);
      } else {
        throw invalid("node '" + node.name + "' reads '" + name + "', which no node, graph input or weight provides");
      }
    };
    for (const auto& name : node.inputs) add(name);
    for (const auto& name : node.implicit_inputs) add(name);
  }
}

// A node on a cycle, found by walking back from an unscheduled node through unscheduled producers: the first node met
// twice. `position_of`: -1 for the nodes the order left out.
int node_on_cycle(const Scan& scan, const std::vector<int>& position_of) {
  int node = 0;
  while (scan.constant_weight[node] || position_of[node] >= 0) ++node;
  std::vector<char> visited(position_of.size(), 0);
  while (!visited[node]) {
    visited[node] = 1;
    for (int id : scan.node_reads[node]) {
      int producer = scan.producer_node[id];
      if (producer >= 0 && position_of[producer] < 0) {
        node = producer;
        break;
      }
    }
  }
  return node;
}

// The compute nodes in a stable topological order; throws on a cycle.
std::vector<int> schedule(const GraphDesc& desc, const Scan& scan) {
  const int node_count = static_cast<int>(desc.nodes.size());
  std::vector<std::vector<int>> after(node_count);
  for (int i = 0; i < node_count; ++i)
    for (int id : scan.node_reads[i])
      if (scan.producer_node[id] >= 0) after[i].push_back(scan.producer_node[id]);
  std::vector<int> order = stable_topological_order(after, scan.constant_weight);
  const auto compute_count = std::count(scan.constant_weight.begin(), scan.constant_weight.end(), 0);
  if (static_cast<int64_t>(order.size()) != compute_count) {
    std::vector<int> position_of(node_count, -1);
    for (int position = 0; position < static_cast<int>(order.size()); ++position)
      position_of[order[position]] = position;
    throw invalid("graph has a cycle through node '" + desc.nodes[node_on_cycle(scan, position_of)].name + "'");
  }
  return order;
}

// The nodes every reader's piece runs again (see Graph::order), in one pass over a topological order: a cheap pure
// node whose reads all come from such nodes (or that reads only weights), none of whose outputs is a graph output.
std::vector<char> find_recomputed(const GraphDesc& desc, const Scan& scan, const std::vector<int>& order) {
  std::vector<char> recomputed(desc.nodes.size(), 0);
  for (int i : order) {
    const NodeDesc& node = desc.nodes[i];
    if (!cheap_and_pure(node)) continue;
    if (std::any_of(node.outputs.begin(), node.outputs.end(),
                    [&](const std::string& output) { return scan.graph_outputs.count(output) > 0; }))
      continue;
    recomputed[i] = std::all_of(scan.node_reads[i].begin(), scan.node_reads[i].end(), [&](int id) {
      return scan.producer_node[id] >= 0 && recomputed[scan.producer_node[id]];
    });
  }
  return recomputed;
}

}  // namespace

bool cheap_and_pure(const NodeDesc& node) {
  // Each copy of a random op would draw other numbers.
  static const std::unordered_set<std::string> random = {
      "RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Multinomial", "Bernoulli", "Dropout"};
  // These would cost more than the transfer they save.
  static const std::unordered_set<std::string> heavy = {
      "MatMul",        "MatMulInteger", "QLinearMatMul", "Gemm", "Conv", "ConvInteger", "QLinearConv",
      "ConvTranspose", "Einsum",        "LSTM",          "GRU",  "RNN",  "Attention"};
  const bool default_domain = node.domain.empty() || node.domain == "ai.onnx";
  return default_domain && !node.has_subgraph && !random.count(node.op_type) && !heavy.count(node.op_type);
}

std::vector<int> stable_topological_order(const std::vector<std::vector<int>>& after, const std::vector<char>& skip) {
  const int n = static_cast<int>(after.size());
  const auto skipped = [&](int i) { return !skip.empty() && skip[i]; };
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> followers(n);
  for (int i = 0; i < n; ++i) {
    for (int before : after[i]) {
      ++pending[i];
      followers[before].push_back(i);
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (!skipped(i) && pending[i] == 0) ready.push(i);
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int follower : followers[i])
      if (--pending[follower] == 0 && !skipped(follower)) ready.push(follower);
  }
  return order;
}

Graph::Graph(const GraphDesc& desc) : desc_(&desc) {
  Scan scan;
  find_constant_weights(desc, &scan);
  number_values(desc, &scan);
  list_reads(desc, &scan);
  const std::vector<int> full = schedule(desc, scan);
  const std::vector<char> recomputed = find_recomputed(desc, scan, full);
  for (int i : full)
    if (!recomputed[i]) order_.push_back(i);

  // Everything by position from here on.
  std::vector<int> position_of(desc.nodes.size(), -1), full_position(desc.nodes.size(), -1);
  for (int position = 0; position < size(); ++position) position_of[order_[position]] = position;
  for (int position = 0; position < static_cast<int>(full.size()); ++position) full_position[full[position]] = position;
  producer_.reserve(scan.producer_node.size());
  last_reader_.reserve(scan.producer_node.size());
  std::vector<std::string> name_of(scan.producer_node.size());
  for (const auto& [name, id] : scan.value_id) {
    name_of[id] = name;
    int producer = scan.producer_node[id];
    if (producer >= 0 && recomputed[producer]) {
      recomputed_values_.insert(name);
      continue;
    }
    producer_.emplace(name, producer < 0 ? -1 : position_of[producer]);
    last_reader_.emplace(name, -1);
  }
  reads_.resize(order_.size());
  weights_read_.resize(order_.size());
  recomputed_.resize(order_.size());
  for (int position = 0; position < size(); ++position) {
    int i = order_[position];
    std::vector<int> needed;  // recomputed nodes, found by walking back through their reads
    std::unordered_set<int> seen;
    auto visit = [&](int id) {
      int producer = scan.producer_node[id];
      if (producer >= 0 && recomputed[producer] && seen.insert(producer).second) needed.push_back(producer);
    };
    for (int id : scan.node_reads[i]) {
      if (scan.producer_node[id] >= 0 && recomputed[scan.producer_node[id]]) {
        visit(id);
        continue;
      }
      reads_[position].push_back(name_of[id]);
      last_reader_[name_of[id]] = position;  // positions ascend, so the last write is the last reader
    }
    for (size_t next = 0; next < needed.size(); ++next)
      for (int id : scan.node_reads[needed[next]]) visit(id);
    std::sort(needed.begin(), needed.end(), [&](int a, int b) { return full_position[a] < full_position[b]; });
    auto& weights = weights_read_[position];
    weights = std::move(scan.node_weights[i]);
    for (int node : needed)
      for (const auto& name : scan.node_weights[node])
        if (std::find(weights.begin(), weights.end(), name) == weights.end()) weights.push_back(name);
    recomputed_[position] = std::move(needed);
  }
}

bool Graph::is_weight(const std::string& name) const {
  auto it = desc_->weights.find(name);
  if (it == desc_->weights.end()) return false;
  // A Constant node's output that is also a graph output is computed like any value (it has a producer).
  return it->second.constant_node < 0 || !producer_.count(name);
}

bool Graph::is_graph_input(const std::string& name) const {
  auto it = producer_.find(name);
  return it != producer_.end() && it->second < 0;
}

int Graph::producer_position(const std::string& name) const {
  auto it = producer_.find(name);
  if (it == producer_.end()) throw not_a_value(name);
  return it->second;
}

int Graph::last_reader(const std::string& name) const {
  auto it = last_reader_.find(name);
  if (it == last_reader_.end()) throw not_a_value(name);
  return it->second;
}

Error Graph::not_a_value(const std::string& name) const {
  return Error(ErrorCode::INTERNAL,
               "graph: '" + name + "' is not a value (" + (is_weight(name) ? "a weight" : "unknown name") + ")");
}

std::vector<std::string> Graph::value_names() const {
  std::vector<std::string> names;
  names.reserve(producer_.size());
  for (const auto& [name, producer] : producer_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> Graph::crossing(int k) const {
  if (k < 0 || k > size())
    throw Error(ErrorCode::INTERNAL,
                "graph: boundary " + std::to_string(k) + " is outside [0, " + std::to_string(size()) + "]");
  std::vector<std::pair<int, const std::string*>> found;
  for (const auto& [name, producer] : producer_)
    if (producer < k && last_reader_.at(name) >= k) found.emplace_back(producer, &name);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  std::vector<std::string> names;
  names.reserve(found.size());
  for (const auto& [producer, name] : found) names.push_back(*name);
  return names;
}

std::vector<int64_t> Graph::crossing_bytes(const std::unordered_map<std::string, int64_t>& value_bytes) const {
  // A value crosses boundaries producer+1 .. last_reader: add its bytes over that interval with a difference array.
  std::vector<int64_t> delta(order_.size() + 2, 0);
  for (const auto& [name, bytes] : value_bytes) {
    auto it = producer_.find(name);
    if (it == producer_.end() || bytes <= 0) continue;  // weights, unknown names, unknown sizes
    int first = it->second + 1;
    int last = last_reader_.at(name);
    if (last < first) continue;
    delta[first] += bytes;
    delta[last + 1] -= bytes;
  }
  std::vector<int64_t> result(order_.size() + 1);
  int64_t running = 0;
  for (size_t k = 0; k < result.size(); ++k) {
    running += delta[k];
    result[k] = running;
  }
  return result;
}

int Graph::boundary_after(const std::string& tensor) const {
  auto it = producer_.find(tensor);
  if (it != producer_.end() && it->second >= 0) return it->second + 1;
  std::string why = it != producer_.end()   ? "it is a graph input"
                    : is_weight(tensor)     ? "it is a weight"
                    : is_recomputed(tensor) ? "it is recomputed in every piece that reads it"
                                            : "unknown name";
  const std::string reason = "no node produces it (" + why + ")";
  throw Error(ErrorCode::USAGE, "cut at '" + tensor + "': " + reason, ArgumentContext{"cuts", tensor, reason});
}

}  // namespace onnxpipe::detail
