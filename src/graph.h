#pragma once
// The graph as a splitter sees it: compute nodes in one topological order, who produces and who reads each value,
// and for every boundary (cut between two consecutive nodes of the order) the set of values that cross it.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model_io.h"
#include "onnxpipe/error.h"

namespace onnxpipe::detail {

// Node indices 0..after.size()-1 in a topological order that keeps index order wherever it is valid (Kahn's
// algorithm, always taking the lowest ready index). after[i]: the nodes that node i must follow (repeats allowed).
// Nodes with skip[i] set (skip may be empty) are left out, as are nodes on a cycle and the nodes that follow them.
std::vector<int> stable_topological_order(const std::vector<std::vector<int>>& after,
                                          const std::vector<char>& skip = {});

class Graph {
 public:
  // Throws Error(INVALID_MODEL) on a cycle, on a node input (or implicit subgraph input) that no node, graph input or
  // weight provides, and on a value produced twice. Linear time (plus a heap for the stable order).
  explicit Graph(const GraphDesc& desc);

  const GraphDesc& desc() const { return *desc_; }

  // Compute nodes (indices into desc().nodes) in topological order, keeping file order where it is valid.
  // Constant nodes whose output is a weight are not in the order: every piece that reads them gets a copy. Nor are
  // recomputed nodes: cheap pure nodes that read only weights and other recomputed nodes' outputs (SequenceEmpty,
  // ConstantOfShape of a constant shape, Range of constants...) and make no graph output. Every piece that reads
  // their outputs runs them again, so those outputs never cross a cut.
  const std::vector<int>& order() const { return order_; }
  int size() const { return static_cast<int>(order_.size()); }

  bool is_weight(const std::string& name) const;
  bool is_graph_input(const std::string& name) const;
  // Position in order() of the node that produces `name`; -1 for graph inputs; throws for unknown names and weights.
  int producer_position(const std::string& name) const;
  // Values (non-weights, graph inputs included) read by the node at `position`: inputs and implicit inputs, unique.
  const std::vector<std::string>& reads(int position) const { return reads_[position]; }
  // Weights read by the node at `position` (directly, inside subgraphs, or through its recomputed nodes), unique.
  const std::vector<std::string>& weights_read(int position) const { return weights_read_[position]; }
  // Recomputed nodes (indices into desc().nodes) the node at `position` needs, directly or through one another, in an
  // order that runs them.
  const std::vector<int>& recomputed(int position) const { return recomputed_[position]; }
  // Whether `name` is the output of a recomputed node.
  bool is_recomputed(const std::string& name) const { return recomputed_values_.count(name) > 0; }
  // Last position that reads the value; -1 when only a graph output (no node reads it).
  int last_reader(const std::string& name) const;

  // Every value that can cross a boundary (graph inputs and outputs of nodes in the order), sorted.
  std::vector<std::string> value_names() const;
  // Boundary k in [0, size()]: the cut before order()[k]. Crossing set of boundary k: values produced before k (graph
  // inputs included) and read at position >= k. Sorted by producer position, then name.
  std::vector<std::string> crossing(int k) const;
  // Sum of value_bytes over each boundary's crossing set, for all k in [0, size()] at once (values missing from
  // value_bytes count 0). O(values + size()).
  std::vector<int64_t> crossing_bytes(const std::unordered_map<std::string, int64_t>& value_bytes) const;
  // The boundary right after the producer of `tensor`: Error(USAGE) "cut at 'T': no node produces it (why)" if none
  // does.
  int boundary_after(const std::string& tensor) const;

 private:
  Error not_a_value(const std::string& name) const;  // Error(INTERNAL) for a name that is a weight or unknown

  const GraphDesc* desc_;
  std::vector<int> order_;
  std::unordered_map<std::string, int> producer_;  // value -> position (-1 graph input)
  std::unordered_map<std::string, int> last_reader_;
  std::vector<std::vector<std::string>> reads_;
  std::vector<std::vector<std::string>> weights_read_;
  std::vector<std::vector<int>> recomputed_;
  std::unordered_set<std::string> recomputed_values_;
};

// Whether a node may run again in another piece: a default-domain op without subgraphs that is neither random
// (RandomUniform*, RandomNormal*, Multinomial, Bernoulli, Dropout) nor heavy (MatMul, Conv, recurrent...).
bool cheap_and_pure(const NodeDesc& node);

}  // namespace onnxpipe::detail
