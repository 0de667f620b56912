#include "graph.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <unordered_set>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

Error invalid(const std::string& message) { return Error(ErrorCode::INVALID_MODEL, message); }

}  // namespace

Graph::Graph(const GraphDesc& desc) : desc_(&desc) {
  const std::vector<NodeDesc>& nodes = desc.nodes;
  const int node_count = static_cast<int>(nodes.size());

  std::unordered_set<std::string> graph_outputs;
  for (const auto& output : desc.outputs) graph_outputs.insert(output.name);

  // A Constant node whose output is a weight is copied into every piece that reads it, so it is not scheduled;
  // one whose output is also a graph output is an ordinary compute node (its output must leave from one piece).
  std::vector<char> is_constant_weight(node_count, 0);
  for (const auto& [name, weight] : desc.weights) {
    if (weight.constant_node < 0 || graph_outputs.count(name)) continue;
    if (weight.constant_node >= node_count)
      throw invalid("weight '" + name + "' names Constant node " + std::to_string(weight.constant_node) +
                    ", but the graph has " + std::to_string(node_count) + " nodes");
    is_constant_weight[weight.constant_node] = 1;
  }

  // Values get dense ids; producer_node holds the file index of the producing node (-1: graph input).
  std::unordered_map<std::string, int> value_id;
  std::vector<int> producer_node;
  value_id.reserve(desc.inputs.size() + 2 * nodes.size());
  for (const auto& input : desc.inputs) {
    if (!value_id.emplace(input.name, static_cast<int>(producer_node.size())).second)
      throw invalid("graph input '" + input.name + "' is declared twice");
    producer_node.push_back(-1);
  }
  auto weight = [&](const std::string& name) {
    auto it = desc.weights.find(name);
    return it != desc.weights.end() && (it->second.constant_node < 0 || !graph_outputs.count(name));
  };
  for (int i = 0; i < node_count; ++i) {
    for (const auto& output : nodes[i].outputs) {
      if (output.empty()) continue;
      if (is_constant_weight[i]) {
        // Its output is the weight itself; only a clash with a graph input is possible here.
        if (value_id.count(output))
          throw invalid("value '" + output + "' is produced twice (graph input and Constant node '" + nodes[i].name +
                        "')");
        continue;
      }
      if (weight(output))
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

  // What each compute node reads: values (by id) and weights (by name), unique, in the order they appear.
  std::vector<std::vector<int>> node_reads(node_count);
  std::vector<std::vector<std::string>> node_weights(node_count);
  std::vector<int> seen_by(producer_node.size(), -1);  // last node that listed the value: dedup without sets
  for (int i = 0; i < node_count; ++i) {
    if (is_constant_weight[i]) continue;
    const NodeDesc& node = nodes[i];
    auto add = [&](const std::string& name) {
      if (name.empty()) return;
      auto it = value_id.find(name);
      if (it != value_id.end()) {
        if (seen_by[it->second] != i) {
          seen_by[it->second] = i;
          node_reads[i].push_back(it->second);
        }
      } else if (weight(name)) {
        if (std::find(node_weights[i].begin(), node_weights[i].end(), name) == node_weights[i].end())
          node_weights[i].push_back(name);
      } else {
        throw invalid("node '" + node.name + "' reads '" + name + "', which no node, graph input or weight provides");
      }
    };
    for (const auto& name : node.inputs) add(name);
    for (const auto& name : node.implicit_inputs) add(name);
  }

  // Kahn's algorithm; the min-heap on file index keeps the file order wherever it is already valid.
  std::vector<int> pending(node_count, 0);
  std::vector<std::vector<int>> readers(producer_node.size());
  for (int i = 0; i < node_count; ++i) {
    for (int id : node_reads[i]) {
      if (producer_node[id] < 0) continue;
      ++pending[i];
      readers[id].push_back(i);
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  int compute_count = 0;
  for (int i = 0; i < node_count; ++i) {
    if (is_constant_weight[i]) continue;
    ++compute_count;
    if (pending[i] == 0) ready.push(i);
  }
  order_.reserve(compute_count);
  std::vector<int> position_of(node_count, -1);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    position_of[i] = static_cast<int>(order_.size());
    order_.push_back(i);
    for (const auto& output : nodes[i].outputs) {
      if (output.empty()) continue;
      for (int reader : readers[value_id.at(output)])
        if (--pending[reader] == 0) ready.push(reader);
    }
  }
  if (static_cast<int>(order_.size()) != compute_count) {
    // Walk back from any unscheduled node through unscheduled producers: the first node met twice is on a cycle.
    int node = 0;
    while (is_constant_weight[node] || position_of[node] >= 0) ++node;
    std::vector<char> visited(node_count, 0);
    while (!visited[node]) {
      visited[node] = 1;
      for (int id : node_reads[node]) {
        int producer = producer_node[id];
        if (producer >= 0 && position_of[producer] < 0) {
          node = producer;
          break;
        }
      }
    }
    throw invalid("graph has a cycle through node '" + nodes[node].name + "'");
  }

  // Everything by position from here on.
  producer_.reserve(producer_node.size());
  last_reader_.reserve(producer_node.size());
  for (const auto& [name, id] : value_id) {
    int producer = producer_node[id];
    producer_.emplace(name, producer < 0 ? -1 : position_of[producer]);
    last_reader_.emplace(name, -1);
  }
  std::vector<std::string> name_of(producer_node.size());
  for (const auto& [name, id] : value_id) name_of[id] = name;
  reads_.resize(order_.size());
  weights_read_.resize(order_.size());
  for (int position = 0; position < size(); ++position) {
    int i = order_[position];
    for (int id : node_reads[i]) {
      reads_[position].push_back(name_of[id]);
      last_reader_[name_of[id]] = position;  // positions ascend, so the last write is the last reader
    }
    weights_read_[position] = std::move(node_weights[i]);
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
  if (it == producer_.end())
    throw Error(ErrorCode::INTERNAL,
                "graph: '" + name + "' is not a value (" + (is_weight(name) ? "a weight" : "unknown name") + ")");
  return it->second;
}

int Graph::last_reader(const std::string& name) const {
  auto it = last_reader_.find(name);
  if (it == last_reader_.end())
    throw Error(ErrorCode::INTERNAL,
                "graph: '" + name + "' is not a value (" + (is_weight(name) ? "a weight" : "unknown name") + ")");
  return it->second;
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
  std::string why = it != producer_.end() ? "it is a graph input"
                    : is_weight(tensor)   ? "it is a weight"
                                          : "unknown name";
  throw Error(ErrorCode::USAGE, "--cut '" + tensor + "': no node produces it (" + why + ")");
}

}  // namespace onnxpipe::detail
