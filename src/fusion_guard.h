#pragma once
// Pieces that ONNX Runtime fuses as it fuses the whole model. At its extended level ORT fuses patterns into single
// kernels that round differently from the nodes they replace (the nine nodes of a LayerNorm into LayerNormalization,
// tanh GELU and the bias before it into FastGelu, a residual Add and a LayerNorm into SkipLayerNormalization), so two
// things make pieces differ from the model in the last bits (GPT-2-XL in 4 pieces: max abs 2.9e-6):
// - a cut inside a pattern leaves each piece its unfused half: such boundaries are blocked;
// - a piece input declared with more shape than ORT inferred for that value in the model (onnx's shape inference
//   names unknown dims, "unk__16", and the same name on two values makes their shapes equal) lets ORT fuse in the
//   piece what it does not fuse in the model: pieces declare crossing values as ORT types them;
// - a pattern whose result is a graph output stays unfused (FastGelu): boundaries its results would cross are blocked
//   where that is so.
// Both are learnt from ORT itself, not listed here: the model (large weights as zeros) optimised as a session would
// optimise it, saved with every value's type.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "graph.h"
#include "model_io.h"

namespace onnxpipe::detail {

struct FusionGuard {
  std::vector<char> blocked;               // per boundary 0..graph.size(): 1 inside what ORT fuses into one node
  std::map<std::string, ValueDesc> types;  // node outputs that survive optimisation, as ORT types them
};

// What ORT makes of the model on `device` (cpu, cpu:T, cuda:K; a CUDA device that cannot start falls back to the
// CPU's fusions). `dtypes`: the values' types as known (only their dtypes are used). Empty, with a note logged, when
// ORT cannot optimise the model. Fusions that need a large weight's values (over 64 KiB, e.g. Attention's merged QKV,
// Conv+BatchNorm) are not seen: those weights are zeros made at run time here.
FusionGuard guard_fusions(const Model& model, const Graph& graph, const std::map<std::string, ValueDesc>& dtypes,
                          const std::string& device);

// The pure parts. Per position of `graph`: the index of the optimised node it became part of. `produced_by` maps each
// node output of the optimised graph to the node making it, `kept` holds its other values (weights, graph inputs). A
// node whose output an optimised node makes belongs to that node; one whose outputs all vanished was fused into what
// reads them; one whose output became a weight was folded away and constrains nothing (a group of its own).
std::vector<int> fused_groups(const Graph& graph, const std::map<std::string, int>& produced_by,
                              const std::set<std::string>& kept);
// Per boundary: 1 inside a group of `fused` (positions fused into one node), and, for a group that `exposed` (the
// groups with every surviving value a graph output) no longer fuses, wherever one of its outputs would cross.
std::vector<char> blocked_boundaries(const Graph& graph, const std::vector<int>& fused,
                                     const std::vector<int>& exposed);

}  // namespace onnxpipe::detail
