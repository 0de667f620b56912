// Dry runs of pieces: each piece's arena peak, on the values the pieces before it make.
#include "runtime_memory.h"

#include <gtest/gtest.h>

#include <cmath>

#include "onnxpipe/split.h"
#include "support/expect_error.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe::detail {
namespace {

constexpr int64_t VALUE = 65536 * 4;  // each value of the chain: 256 KiB

TEST(RuntimeMemory, EachPieceHoldsAtLeastItsInputAndOutputAndRunsOnWhatTheFirstMade) {
  test::TempDir dir;
  test::ModelBuilder builder;  // x[1,65536] -> Relu -> Sigmoid
  builder.input("x", DType::FLOAT, {1, 65536});
  builder.node("Relu", {"x"}, {"h"});
  builder.node("Sigmoid", {"h"}, {"y"});
  builder.output("y", DType::FLOAT, {1, 65536});
  SplitOptions options;
  options.parts = 2;
  options.balance = Balance::FLOPS;
  options.output_dir = dir.file("out");
  const Plan plan = split_model(builder.save(dir.file("chain.onnx")), options);
  SessionConfig config;
  config.device = "cpu:1";
  const std::vector<RunMemory> memory = measure_piece_memory(options.output_dir, plan.pieces, {config, config},
                                                             {{"x", make_tensor(DType::FLOAT, {1, 65536})}});
  ASSERT_EQ(memory.size(), 2u);
  for (const RunMemory& piece : memory) {
    EXPECT_EQ(piece.inputs, VALUE);
    EXPECT_GE(piece.loaded, 0);
    EXPECT_GE(piece.peak, VALUE);  // its output lives in its arena
    EXPECT_LT(piece.peak, 16 * VALUE);
    EXPECT_EQ(piece.activations(true), piece.peak + VALUE);  // on CPU its input is outside the arena
    EXPECT_EQ(piece.activations(false), piece.peak);
  }
  // One config per piece, or nothing runs.
  EXPECT_EQ(test::error_code_of([&] { measure_piece_memory(options.output_dir, plan.pieces, {config}, {}); }),
            ErrorCode::INTERNAL);
}

TEST(RuntimeMemory, ZeroInitializersReplaceTheWeightsValuesOnCpuOnly) {
  test::TempDir dir;
  test::ModelBuilder builder;  // y = x @ w, w of 1 MiB with values in [-0.5, 0.5)
  builder.input("x", DType::FLOAT, {1, 256});
  builder.initializer(test::random_tensor("w", {256, 1024}));
  builder.node("MatMul", {"x", "w"}, {"y"});
  builder.output("y", DType::FLOAT, {1, 1024});
  const std::string path = builder.save(dir.file("matmul.onnx"));
  Tensor x = make_tensor(DType::FLOAT, {1, 256});
  for (int64_t i = 0; i < 256; ++i) x.as<float>()[i] = 1.0f;
  SessionConfig config;
  config.device = "cpu:1";
  const auto sum_of = [&](const SessionConfig& with) {
    const Tensor y = Session(path, with).run({{"x", x}}).at("y");
    double sum = 0;
    for (int64_t i = 0; i < y.element_count(); ++i) sum += std::abs(y.as<float>()[i]);
    return sum;
  };
  EXPECT_GT(sum_of(config), 0.0);
  config.zero_initializers = {ValueDesc::of_shape("w", DType::FLOAT, {256, 1024})};
  EXPECT_EQ(sum_of(config), 0.0);
  config.session_options.emplace("session.disable_prepacking", "1");
  EXPECT_EQ(sum_of(config), 0.0);
  config.device = "cuda:0";
  EXPECT_EQ(test::error_code_of([&] { Session(path, config); }), ErrorCode::USAGE);
}

}  // namespace
}  // namespace onnxpipe::detail
