// A GPT-2-shaped decoder (built here, the op pattern of scripts/gpt2_graph.py at a tiny size): ONNX Runtime fuses
// its LayerNorms and tanh GELUs, so a cut inside one of them makes the pieces round differently from the model. The
// fusion guard keeps every such pattern in one piece: the pieces are bitwise equal to the model at every N and
// balance, and a cut forced inside a LayerNorm shows what the guard prevents.
#include <gtest/gtest.h>

#include <cmath>

#include "fusion_guard.h"
#include "graph.h"
#include "model_io.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

using namespace onnxpipe;
using test::attr_i;
using test::attr_ints;
using test::float_tensor;
using test::int64_tensor;
using test::random_tensor;

namespace {

constexpr int kBlocks = 3, kModel = 32, kHeads = 4, kVocab = 64;

// input_ids [batch, seq] -> logits [batch, seq, vocab]: token embedding, kBlocks pre-LayerNorm blocks (LayerNorm as
// ReduceMean/Sub/Pow/Sqrt/Div, fused QKV split in three, scaled scores, softmax, tanh GELU), final LayerNorm and the
// tied head stored transposed. Node outputs are named after what they are, e.g. "b1.ln_2.mean".
std::string tiny_gpt2(const std::string& dir) {
  test::ModelBuilder b(13);
  b.input("input_ids", DType::INT64, {"batch", "seq"});
  uint32_t seed = 1;
  auto weight = [&](const std::string& name, std::vector<int64_t> dims, float scale = 0.2f) {
    b.initializer(random_tensor(name, dims, seed++, scale));
    return name;
  };
  auto scalar = [&](const std::string& name, float value) {
    b.initializer(float_tensor(name, {}, {value}));
    return name;
  };
  auto op = [&](const std::string& type, const std::vector<std::string>& inputs, const std::string& output,
                const std::vector<onnx::AttributeProto>& attrs = {}) {
    b.node(type, inputs, {output}, attrs);
    return output;
  };
  const std::string two = scalar("two", 2), eps = scalar("eps", 1e-5f), half = scalar("half", 0.5f);
  const std::string one = scalar("one", 1), three = scalar("three", 3), gelu_a = scalar("gelu_a", 0.044715f);
  const std::string gelu_b = scalar("gelu_b", std::sqrt(2 / 3.14159265f));
  const std::string scale = scalar("scale", 1 / std::sqrt(float(kModel / kHeads)));
  b.initializer(int64_tensor("heads_shape", {4}, {0, 0, kHeads, kModel / kHeads}));
  b.initializer(int64_tensor("model_shape", {3}, {0, 0, kModel}));
  b.initializer(int64_tensor("qkv_split", {3}, {kModel, kModel, kModel}));

  auto layer_norm = [&](const std::string& x, const std::string& p) {
    const std::string mean = op("ReduceMean", {x}, p + ".mean", {attr_ints("axes", {-1})});
    const std::string centred = op("Sub", {x, mean}, p + ".centred");
    const std::string var =
        op("ReduceMean", {op("Pow", {centred, two}, p + ".square")}, p + ".var", {attr_ints("axes", {-1})});
    const std::string deviation = op("Sqrt", {op("Add", {var, eps}, p + ".var_eps")}, p + ".std");
    const std::string normed = op("Div", {centred, deviation}, p + ".normed");
    const std::string scaled = op("Mul", {normed, weight(p + ".weight", {kModel}, 1)}, p + ".scaled");
    return op("Add", {scaled, weight(p + ".bias", {kModel}, 0.1f)}, p);
  };
  auto linear = [&](const std::string& x, const std::string& p, int64_t in, int64_t out) {
    const std::string product = op("MatMul", {x, weight(p + ".weight", {in, out})}, p + ".product");
    return op("Add", {product, weight(p + ".bias", {out}, 0.1f)}, p);
  };

  b.initializer(random_tensor("wte", {kVocab, kModel}, seed++, 1.0f));
  b.initializer(random_tensor("lm_head", {kModel, kVocab}, seed++, 0.2f));
  std::string x = op("Gather", {"wte", "input_ids"}, "embedded", {attr_i("axis", 0)});
  for (int i = 0; i < kBlocks; ++i) {
    const std::string p = "b" + std::to_string(i);
    const std::string qkv = linear(layer_norm(x, p + ".ln_1"), p + ".qkv", kModel, 3 * kModel);
    b.node("Split", {qkv, "qkv_split"}, {p + ".q", p + ".k", p + ".v"}, {attr_i("axis", 2)});
    auto heads = [&](const std::string& y, std::vector<int64_t> perm) {
      return op("Transpose", {op("Reshape", {y, "heads_shape"}, y + ".heads")}, y + ".t", {attr_ints("perm", perm)});
    };
    const std::string q = heads(p + ".q", {0, 2, 1, 3}), k = heads(p + ".k", {0, 2, 3, 1});
    const std::string v = heads(p + ".v", {0, 2, 1, 3});
    const std::string scores = op("Mul", {op("MatMul", {q, k}, p + ".qk"), scale}, p + ".scores");
    const std::string attended =
        op("MatMul", {op("Softmax", {scores}, p + ".probs", {attr_i("axis", -1)}), v}, p + ".attended");
    const std::string merged =
        op("Reshape", {op("Transpose", {attended}, p + ".merged_t", {attr_ints("perm", {0, 2, 1, 3})}), "model_shape"},
           p + ".merged");
    x = op("Add", {x, linear(merged, p + ".proj", kModel, kModel)}, p + ".residual_1");
    const std::string m = linear(layer_norm(x, p + ".ln_2"), p + ".fc", kModel, 4 * kModel);
    const std::string cube = op("Mul", {gelu_a, op("Pow", {m, three}, p + ".cube")}, p + ".cube_a");
    const std::string inner = op("Mul", {gelu_b, op("Add", {m, cube}, p + ".inner_sum")}, p + ".inner");
    const std::string tanh = op("Add", {one, op("Tanh", {inner}, p + ".tanh")}, p + ".tanh_1");
    const std::string gelu = op("Mul", {op("Mul", {half, m}, p + ".half_m"), tanh}, p + ".gelu");
    x = op("Add", {x, linear(gelu, p + ".out", 4 * kModel, kModel)}, p + ".residual_2");
  }
  b.node("MatMul", {layer_norm(x, "ln_f"), "lm_head"}, {"logits"});
  b.output("logits", DType::FLOAT, {"batch", "seq", kVocab});
  return b.save(dir + "/tiny_gpt2.onnx");
}

Tensor token_ids() {
  Tensor ids = make_tensor(DType::INT64, {2, 7});
  for (int64_t i = 0; i < ids.element_count(); ++i) ids.as<int64_t>()[i] = (i * 37 + 11) % kVocab;
  return ids;
}

// Splits `model` (forced cuts after `cuts`) and compares the pieces with the model on the same tokens.
Difference split_and_verify(const std::string& model, const std::string& out, int parts, Balance balance,
                            const std::vector<std::string>& cuts = {}) {
  SplitOptions options;
  options.parts = parts;
  options.balance = balance;
  options.cuts = cuts;
  options.dims = {{"batch", 2}, {"seq", 7}};
  options.output_dir = out;
  options.force = true;
  options.profile_runs = 3;
  split_model(model, options);
  VerifyOptions verify;
  verify.inputs = {{"input_ids", token_ids()}};
  verify.locate_divergence = false;
  const VerifyReport report = verify_split(model, out, verify);
  EXPECT_EQ(report.outputs.size(), 1u);
  return report.outputs.at(0).diff;
}

TEST(FusionGuard, BlocksCutsInsideWhatOrtFuses) {
  const test::TempDir dir;
  const detail::Model model = detail::Model::load(tiny_gpt2(dir.path().string()));
  const detail::Graph graph(model.graph());
  bool complete = false;
  const detail::FusionGuard guard = detail::guard_fusions(model, graph, model.infer_shapes({}, &complete), "cpu");
  const std::vector<char>& blocked = guard.blocked;
  ASSERT_EQ(blocked.size(), size_t(graph.size()) + 1);
  auto after = [&](const std::string& value) { return bool(blocked[graph.boundary_after(value)]); };
  // Inside LayerNormalization and FastGelu (which takes the bias Add too): blocked.
  // Right after a FastGelu too: ORT leaves GELU unfused when its result is a graph output, as a piece's would be.
  for (const char* inside : {"b0.ln_1.mean", "b1.ln_2.normed", "ln_f.scaled", "b1.fc", "b2.cube", "b0.tanh", "b2.gelu"})
    EXPECT_TRUE(after(inside)) << inside;
  // Between whole patterns: the residual stream, a LayerNorm's output, a MatMul before the Add a fusion takes.
  for (const char* between : {"b0.residual_1", "b1.residual_2", "b0.ln_2", "b1.fc.product"})
    EXPECT_FALSE(after(between)) << between;
  // The residual stream as ORT types it: the batch dim named, the others as the model's ops give them.
  const ValueDesc& residual = guard.types.at("b2.residual_1");
  ASSERT_TRUE(residual.has_shape);
  ASSERT_EQ(residual.dims.size(), 3u);
  EXPECT_EQ(residual.dims[0].param, "batch");
  EXPECT_EQ(residual.dims[2].value, kModel);
}

TEST(FusionGuard, PiecesAreBitwiseEqualAtEveryCount) {
  const test::TempDir dir;
  const std::string model = tiny_gpt2(dir.path().string());
  for (Balance balance : {Balance::BYTES, Balance::FLOPS, Balance::TIME}) {
    for (int parts = 2; parts <= 8; ++parts) {
      const Difference diff = split_and_verify(model, dir.file("pieces"), parts, balance);
      EXPECT_TRUE(diff.bitwise_equal) << parts << " pieces by " << balance_name(balance) << ": max abs "
                                      << diff.max_abs;
    }
  }
}

// The cause the guard removes: a cut forced inside a LayerNorm (forced cuts win over the guard) leaves its halves
// unfused, and the pieces differ from the model in the last bits; a forced cut between patterns does not.
TEST(FusionGuard, CutInsideLayerNormRoundsDifferently) {
  const test::TempDir dir;
  const std::string model = tiny_gpt2(dir.path().string());
  const Difference inside = split_and_verify(model, dir.file("inside"), 2, Balance::FLOPS, {"b1.ln_2.mean"});
  EXPECT_FALSE(inside.bitwise_equal);
  EXPECT_GT(inside.max_abs, 0);
  EXPECT_LT(inside.max_abs, 1e-4);
  const Difference between = split_and_verify(model, dir.file("between"), 2, Balance::FLOPS, {"b1.residual_1"});
  EXPECT_TRUE(between.bitwise_equal) << "max abs " << between.max_abs;
}

}  // namespace
