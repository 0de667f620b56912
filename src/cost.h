#pragma once
// Per-node cost models: weight bytes (the reference splitter's criterion), FLOPs from concrete shapes, and measured
// time (ORT profiler times mapped back to nodes). All return one cost per position of Graph::order().
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph.h"

namespace onnxpipe::detail {

// Weight bytes each node reads (a weight read by several nodes counts for each).
std::vector<double> weight_bytes_costs(const Graph& graph);

// Floating point operations per node, from concrete shapes of its inputs and outputs (`shapes` maps value and weight
// names to fully known shapes). Conv/ConvTranspose, Gemm/MatMul/Einsum-like, attention pieces (Softmax...),
// elementwise, reductions, normalisations, pooling; data movement ops cost their bytes moved / 4 so nothing is free;
// If/Loop/Scan bodies are not analysed (1 per output element); unknown ops and nodes with unknown shapes cost 1.
std::vector<double> flops_costs(const Graph& graph, const std::map<std::string, ValueDesc>& shapes);
// FLOPs of one node (exposed for tests).
double node_flops(const NodeDesc& node, const std::map<std::string, ValueDesc>& shapes);

// Measured microseconds per node name -> per position (nodes ORT fused away or did not report cost 0).
std::vector<double> time_costs(const Graph& graph, const std::map<std::string, double>& us_per_node);

// The cost of moving one crossing byte, in each criterion's unit, so transfers weigh in the bottleneck:
// bytes 1, flops 10 (about 100 GFLOP/s against 10 GB/s), time 1e-4 us (10 GB/s): a crossing tensor is written by
// one piece and read by the next, and on CPU each side also converts its layout (NCHWc). Of 0, 1e-4 and 3e-4 us/B,
// 3e-4 gave mobilenet_v2 in 4 a first piece a third lighter than the others (ratio 1.15-1.16 in bench/split_bench,
// runs interleaved), 0 and 1e-4 gave 1.06-1.10; resnet18 and GPT-2 cut the same either way.
double transfer_cost_per_byte(const std::string& unit);

// What each value weighs when it crosses a cut, for the dims used. A value whose size is unknown (a sequence, an
// optional, a tensor whose shape neither inference nor the sizing run told) is not free: it counts
// kUnknownSizeFactor times the largest known value of the graph (1 MiB when none is known), so that of two cuts
// otherwise equal the splitter takes the one whose sizes are known.
constexpr int64_t kUnknownSizeFactor = 2;
struct ValueSizes {
  std::unordered_map<std::string, int64_t> bytes;  // every value of Graph::value_names()
  std::set<std::string> estimated;                 // those whose bytes are the estimate
};
// `known`: bytes by value name, negative (or absent) when not known.
ValueSizes value_sizes(const Graph& graph, const std::unordered_map<std::string, int64_t>& known);

}  // namespace onnxpipe::detail
