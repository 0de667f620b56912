#include "cost.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

using Shape = std::vector<int64_t>;
using Shapes = std::map<std::string, ValueDesc>;

// The concrete shape of a value or weight, if every dim is known.
std::optional<Shape> shape_of(const Shapes& shapes, const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto it = shapes.find(name);
  if (it == shapes.end() || !it->second.is_concrete()) return std::nullopt;
  return it->second.concrete_shape();
}

std::optional<Shape> input_shape(const NodeDesc& node, const Shapes& shapes, size_t index) {
  if (index >= node.inputs.size()) return std::nullopt;
  return shape_of(shapes, node.inputs[index]);
}

bool has_input(const NodeDesc& node, size_t index) { return index < node.inputs.size() && !node.inputs[index].empty(); }

double product(const Shape& shape, size_t from = 0, size_t to = SIZE_MAX) {
  double p = 1;
  for (size_t i = from; i < std::min(to, shape.size()); ++i) p *= static_cast<double>(shape[i]);
  return p;
}

int64_t int_attr(const NodeDesc& node, const std::string& name, int64_t fallback) {
  auto it = node.ints.find(name);
  return it == node.ints.end() || it->second.empty() ? fallback : it->second.front();
}

// Sum over the outputs of their elements times `per_element(output)`; nullopt when a shape is not known.
template <typename PerElement>
std::optional<double> sum_over_outputs(const NodeDesc& node, const Shapes& shapes, PerElement per_element) {
  double total = 0;
  for (const auto& name : node.outputs) {
    if (name.empty()) continue;
    auto shape = shape_of(shapes, name);
    if (!shape) return std::nullopt;
    total += product(*shape) * per_element(shapes.at(name));
  }
  return total;
}

std::optional<double> output_elements(const NodeDesc& node, const Shapes& shapes) {
  return sum_over_outputs(node, shapes, [](const ValueDesc&) { return 1.0; });
}

// 4 bytes per element where the dtype has no size.
std::optional<double> output_bytes(const NodeDesc& node, const Shapes& shapes) {
  return sum_over_outputs(node, shapes, [](const ValueDesc& value) {
    const size_t element = dtype_size(value.dtype);
    return static_cast<double>(element ? element : 4);
  });
}

// Matrix product A[..., M, K] x B[..., K, N] with numpy broadcasting of the batch dims: 2*batch*M*N*K.
std::optional<double> matmul_flops(const std::optional<Shape>& a, const std::optional<Shape>& b, bool trans_a,
                                   bool trans_b) {
  if (!a || !b || a->empty() || b->empty()) return std::nullopt;
  Shape ma = *a, mb = *b;
  if (ma.size() == 1) ma.insert(ma.begin(), 1);  // a vector is a 1-row matrix
  if (mb.size() == 1) mb.push_back(1);           // and a 1-column matrix on the right
  size_t ra = ma.size(), rb = mb.size();
  double m = static_cast<double>(trans_a ? ma[ra - 1] : ma[ra - 2]);
  double k = static_cast<double>(trans_a ? ma[ra - 2] : ma[ra - 1]);
  double n = static_cast<double>(trans_b ? mb[rb - 2] : mb[rb - 1]);
  double batch = 1;
  size_t batch_rank = std::max(ra, rb) - 2;
  for (size_t i = 0; i < batch_rank; ++i) {
    // Align from the right: dim i of the broadcast batch.
    int64_t da = i + ra >= batch_rank + 2 ? ma[i + ra - batch_rank - 2] : 1;
    int64_t db = i + rb >= batch_rank + 2 ? mb[i + rb - batch_rank - 2] : 1;
    batch *= static_cast<double>(std::max(da, db));
  }
  return 2 * batch * m * n * k;
}

// Einsum, approximated as one multiply-add per point of the space of all its letters: 2 * prod(letter sizes),
// times the broadcast size of "..." when present.
std::optional<double> einsum_flops(const NodeDesc& node, const Shapes& shapes) {
  auto it = node.strings.find("equation");
  if (it == node.strings.end()) return std::nullopt;
  std::string equation;
  for (char c : it->second)
    if (c != ' ') equation.push_back(c);
  std::string lhs = equation.substr(0, equation.find("->"));
  std::unordered_map<char, int64_t> letters;
  double ellipsis = 1;
  size_t input = 0, start = 0;
  while (start <= lhs.size()) {
    size_t end = std::min(lhs.find(',', start), lhs.size());
    std::string term = lhs.substr(start, end - start);
    auto shape = input_shape(node, shapes, input);
    if (!shape) return std::nullopt;
    size_t dots = term.find("...");
    size_t named = term.size() - (dots == std::string::npos ? 0 : 3);
    if (named > shape->size()) return std::nullopt;
    size_t ellipsis_rank = shape->size() - named;
    size_t dim = 0;
    for (size_t c = 0; c < term.size(); ++c) {
      if (c == dots) {
        ellipsis = std::max(ellipsis, product(*shape, dim, dim + ellipsis_rank));
        dim += ellipsis_rank;
        c += 2;
        continue;
      }
      int64_t& size = letters[term[c]];
      size = std::max(size, (*shape)[dim++]);
    }
    ++input;
    start = end + 1;
  }
  double flops = 2 * ellipsis;
  for (const auto& [letter, size] : letters) flops *= static_cast<double>(size);
  return flops;
}

// Scaled dot-product attention from query [B, S, D] or [B, H, S, Dh] and key/value of sequence length L:
// Q*K^T and P*V (2*B*S*L*D each) plus the softmax over B*H*S*L scores.
std::optional<double> attention_flops(const Shape& query, int64_t length, int64_t heads, double value_width) {
  if (query.size() != 3 && query.size() != 4) return std::nullopt;
  double elements = product(query);
  double rows = query.size() == 4 ? product(query, 0, 3) : product(query, 0, 2) * static_cast<double>(heads);
  double l = static_cast<double>(length);
  return 2 * elements * l + 2 * (elements / static_cast<double>(query.back())) * value_width * l + 5 * rows * l;
}

std::optional<double> recurrent_flops(const NodeDesc& node, const Shapes& shapes) {
  auto x = input_shape(node, shapes, 0);  // [seq, batch, input] (or [batch, seq, input])
  auto w = input_shape(node, shapes, 1);  // [directions, gates * hidden, input]
  auto r = input_shape(node, shapes, 2);  // [directions, gates * hidden, hidden]
  if (!x || !w || !r || x->size() != 3 || w->size() != 3 || r->size() != 3) return std::nullopt;
  double steps = (*x)[0] * static_cast<double>((*x)[1]);
  double gate_rows = (*w)[0] * static_cast<double>((*w)[1]);
  // Input and recurrent projections, then ~10 elementwise operations per gate value (activations, gating).
  return steps * gate_rows * (2 * static_cast<double>((*w)[2] + (*r)[2]) + 10);
}

// FLOPs of a node from the shapes around it; nullopt when a shape it needs is not known.
using FlopsFn = std::optional<double> (*)(const NodeDesc& node, const Shapes& shapes);

std::optional<double> times(std::optional<double> value, double factor) {
  return value ? std::optional<double>(*value * factor) : std::nullopt;
}

std::optional<double> input_elements(const NodeDesc& node, const Shapes& shapes) {
  auto x = input_shape(node, shapes, 0);
  return x ? std::optional<double>(product(*x)) : std::nullopt;
}

std::optional<double> conv_flops(const NodeDesc& node, const Shapes& shapes) {
  // W: [Cout, Cin/group, k...]; each output element is a dot product of Cin/group * prod(k) terms.
  const bool quantized = node.op_type == "QLinearConv";
  auto w = input_shape(node, shapes, quantized ? 3 : 1);
  auto y = shape_of(shapes, node.outputs.empty() ? "" : node.outputs[0]);
  if (!w || !y || w->size() < 2) return std::nullopt;
  double outputs = product(*y);
  bool bias = has_input(node, quantized ? 8 : 2) && node.op_type != "ConvInteger";
  return 2 * outputs * product(*w, 1) + (bias ? outputs : 0);
}

std::optional<double> conv_transpose_flops(const NodeDesc& node, const Shapes& shapes) {
  // W: [Cin, Cout/group, k...]; each input element is scattered into Cout/group * prod(k) outputs.
  auto x = input_shape(node, shapes, 0);
  auto w = input_shape(node, shapes, 1);
  if (!x || !w || w->size() < 2) return std::nullopt;
  double bias = 0;
  if (has_input(node, 2)) {
    auto y = output_elements(node, shapes);
    if (!y) return std::nullopt;
    bias = *y;
  }
  return 2 * product(*x) * product(*w, 1) + bias;
}

std::optional<double> gemm_flops(const NodeDesc& node, const Shapes& shapes) {
  auto flops = matmul_flops(input_shape(node, shapes, 0), input_shape(node, shapes, 1),
                            int_attr(node, "transA", 0) != 0, int_attr(node, "transB", 0) != 0);
  if (!flops || !has_input(node, 2)) return flops;
  auto y = output_elements(node, shapes);
  return y ? std::optional<double>(*flops + *y) : std::nullopt;
}

// MatMul, MatMulInteger, QLinearMatMul (B is input 3) and FusedMatMul (transposes from attributes, which the others
// do not have).
std::optional<double> matmul_node_flops(const NodeDesc& node, const Shapes& shapes) {
  return matmul_flops(input_shape(node, shapes, 0), input_shape(node, shapes, node.op_type == "QLinearMatMul" ? 3 : 1),
                      int_attr(node, "transA", 0) != 0, int_attr(node, "transB", 0) != 0);
}

std::optional<double> matmul_nbits_flops(const NodeDesc& node, const Shapes& shapes) {
  // B is packed: K comes from the attribute, Y = [..., N].
  auto y = output_elements(node, shapes);
  int64_t k = int_attr(node, "K", -1);
  if (!y || k < 0) return std::nullopt;
  return 2 * *y * static_cast<double>(k);
}

std::optional<double> fused_attention_flops(const NodeDesc& node, const Shapes& shapes) {
  // Fused QKV projection input [B, S, hidden] x weights [hidden, 3 * hidden], then attention over S.
  auto x = input_shape(node, shapes, 0);
  auto w = input_shape(node, shapes, 1);
  if (!x || !w || x->size() != 3 || w->size() != 2) return std::nullopt;
  double projection = 2 * product(*x) * static_cast<double>((*w)[1]);
  Shape query = {(*x)[0], (*x)[1], (*w)[1] / 3};
  auto attention = attention_flops(query, (*x)[1], int_attr(node, "num_heads", 1), static_cast<double>(query[2]));
  return attention ? std::optional<double>(projection + *attention) : std::nullopt;
}

std::optional<double> attention_node_flops(const NodeDesc& node, const Shapes& shapes) {
  if (node.op_type == "Attention" && node.domain == "com.microsoft") return fused_attention_flops(node, shapes);
  // Q, K, V as separate inputs: [B, S, D] (heads from the attribute) or [B, H, S, Dh].
  auto q = input_shape(node, shapes, 0);
  auto k = input_shape(node, shapes, 1);
  auto v = input_shape(node, shapes, 2);
  if (!q || !k || !v || k->size() < 2 || q->size() != k->size() || q->size() != v->size()) return std::nullopt;
  int64_t heads = int_attr(node, "num_heads", int_attr(node, "q_num_heads", 1));
  int64_t length = (*k)[k->size() - 2];
  if (q->size() == 3) length = (*k)[1];
  double value_width = static_cast<double>(v->back());
  if (q->size() == 3) value_width /= static_cast<double>(int_attr(node, "kv_num_heads", heads));
  return attention_flops(*q, length, heads, value_width * (q->size() == 3 ? static_cast<double>(heads) : 1));
}

std::optional<double> pool_flops(const NodeDesc& node, const Shapes& shapes) {
  auto it = node.ints.find("kernel_shape");
  auto y = shape_of(shapes, node.outputs.empty() ? "" : node.outputs[0]);
  if (it == node.ints.end() || !y) return std::nullopt;
  return product(*y) * product(Shape(it->second.begin(), it->second.end()));
}

// Each op's FLOPs function. Ops missing here (custom ones, the rest) are unknown.
const std::unordered_map<std::string, FlopsFn>& flops_table() {
  static const std::unordered_map<std::string, FlopsFn> table = [] {
    std::unordered_map<std::string, FlopsFn> t;
    auto add = [&t](const char* ops, FlopsFn fn) {  // ops separated by spaces
      std::istringstream names(ops);
      for (std::string op; names >> op;) t.emplace(op, fn);
    };
    add("Conv ConvInteger QLinearConv FusedConv NhwcConv", conv_flops);
    add("ConvTranspose", conv_transpose_flops);
    add("Gemm", gemm_flops);
    add("MatMul MatMulInteger QLinearMatMul FusedMatMul", matmul_node_flops);
    add("MatMulNBits", matmul_nbits_flops);
    add("Einsum", einsum_flops);
    add("Softmax LogSoftmax Hardmax",
        [](const NodeDesc& n, const Shapes& s) { return times(output_elements(n, s), 5); });
    add("Attention MultiHeadAttention GroupQueryAttention", attention_node_flops);
    // Cheap elementwise: one FLOP per output element.
    add("Add Sub Mul Div Neg Abs Relu LeakyRelu PRelu ThresholdedRelu Max Min Sum Mean Where Equal Less LessOrEqual "
        "Greater GreaterOrEqual And Or Xor Not Clip Sqrt Reciprocal Floor Ceil Round Sign Mod IsNaN IsInf BitShift "
        "BitwiseAnd BitwiseOr BitwiseXor BitwiseNot HardSigmoid HardSwish Shrink Celu QuantizeLinear DequantizeLinear "
        "DynamicQuantizeLinear BiasAdd BiasDropout Resize Upsample",
        output_elements);
    // Transcendental functions: a few FLOPs per element each.
    add("Erf Tanh Exp Log Sigmoid Gelu FastGelu BiasGelu QuickGelu Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh "
        "Atanh Pow Softplus Softsign Elu Selu Mish Swish Silu",
        [](const NodeDesc& n, const Shapes& s) { return times(output_elements(n, s), 8); });
    // Reductions and global pooling: one FLOP per input element.
    add("ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp "
        "ReduceSumSquare ArgMax ArgMin CumSum TopK GlobalAveragePool GlobalMaxPool GlobalLpPool",
        input_elements);
    // Normalisations: mean and variance (stored statistics for BatchNorm), then scale and shift.
    add("BatchNormalization", [](const NodeDesc& n, const Shapes& s) { return times(input_elements(n, s), 5); });
    add("LayerNormalization SimplifiedLayerNormalization SkipLayerNormalization SkipSimplifiedLayerNormalization "
        "RMSNormalization InstanceNormalization GroupNormalization LpNormalization MeanVarianceNormalization "
        "EmbedLayerNormalization",
        [](const NodeDesc& n, const Shapes& s) { return times(input_elements(n, s), 8); });
    add("MaxPool AveragePool LpPool", pool_flops);
    add("LSTM GRU RNN", recurrent_flops);
    // Data movement costs its bytes moved / 4, so that nothing is free.
    add("Reshape Transpose Concat Gather GatherElements GatherND Slice Split Expand Identity Cast CastLike Pad Shape "
        "Size Squeeze Unsqueeze Flatten Tile ConstantOfShape Range Scatter ScatterND ScatterElements DepthToSpace "
        "SpaceToDepth NonZero Trilu OneHot Compress ReverseSequence Dropout Constant EyeLike Unique SequenceConstruct "
        "SequenceAt SplitToSequence ConcatFromSequence Optional OptionalGetElement CenterCropPad Col2Im Bernoulli "
        "RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial",
        [](const NodeDesc& n, const Shapes& s) { return times(output_bytes(n, s), 0.25); });
    // Subgraph bodies are not analysed: one FLOP per output element stands for the whole body.
    add("If Loop Scan", output_elements);
    return t;
  }();
  return table;
}

std::optional<double> compute_flops(const NodeDesc& node, const Shapes& shapes) {
  const auto it = flops_table().find(node.op_type);
  return it == flops_table().end() ? std::nullopt : it->second(node, shapes);
}

}  // namespace

double node_flops(const NodeDesc& node, const std::map<std::string, ValueDesc>& shapes) {
  // Unknown ops and unknown shapes cost 1, and so does anything that computes to less: no node is free.
  std::optional<double> flops = compute_flops(node, shapes);
  return flops ? std::max(1.0, *flops) : 1.0;
}

std::vector<double> weight_bytes_costs(const Graph& graph) {
  std::vector<double> costs(graph.size(), 0);
  for (int position = 0; position < graph.size(); ++position)
    for (const auto& name : graph.weights_read(position))
      costs[position] += static_cast<double>(graph.desc().weights.at(name).bytes);
  return costs;
}

std::vector<double> flops_costs(const Graph& graph, const std::map<std::string, ValueDesc>& shapes) {
  std::vector<double> costs(graph.size());
  for (int position = 0; position < graph.size(); ++position)
    costs[position] = node_flops(graph.desc().nodes[graph.order()[position]], shapes);
  return costs;
}

std::vector<double> time_costs(const Graph& graph, const std::map<std::string, double>& us_per_node) {
  // ORT reports a node under its own name, or, once its NCHWc layout pass rewrote it, as "<output>_nchwc" (a fused
  // Conv+Relu under the Relu's output). Layout reorders of its own have no ONNX node: their time is left out.
  std::unordered_map<std::string, int> position_of;
  for (int position = 0; position < graph.size(); ++position) {
    const NodeDesc& node = graph.desc().nodes[graph.order()[position]];
    position_of.emplace(node.name, position);
    for (const auto& output : node.outputs)
      if (!output.empty()) position_of.emplace(output + "_nchwc", position);
  }
  std::vector<double> costs(graph.size(), 0);
  int matched = 0;
  for (const auto& [name, us] : us_per_node) {
    auto it = position_of.find(name);
    if (it == position_of.end()) continue;
    costs[it->second] += std::max(0.0, us);
    ++matched;
  }
  if (graph.size() > 0 && matched == 0)
    throw Error(ErrorCode::INTERNAL, "time costs: none of the " + std::to_string(us_per_node.size()) +
                                         " profiled node names matches a node of the model");
  return costs;
}

double transfer_cost_per_byte(const std::string& unit) {
  if (unit == "bytes") return 1;
  if (unit == "flops") return 10;
  if (unit == "us") return 1e-4;
  throw Error(ErrorCode::INTERNAL, "transfer cost: unknown cost unit '" + unit + "' (bytes, flops or us)");
}

ValueSizes value_sizes(const Graph& graph, const std::unordered_map<std::string, int64_t>& known) {
  ValueSizes sizes;
  int64_t largest = -1;
  for (const auto& name : graph.value_names()) {
    auto it = known.find(name);
    if (it != known.end() && it->second >= 0) {
      sizes.bytes[name] = it->second;
      largest = std::max(largest, it->second);
    } else {
      sizes.estimated.insert(name);
    }
  }
  const int64_t estimate = largest > 0 ? kUnknownSizeFactor * largest : int64_t(1) << 20;
  for (const auto& name : sizes.estimated) sizes.bytes[name] = estimate;
  return sizes;
}

}  // namespace onnxpipe::detail
