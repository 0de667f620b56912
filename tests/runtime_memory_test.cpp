// Dry runs of pieces: each piece's arena peak, on the values the pieces before it make.
#include "runtime_memory.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace onnxpipe::detail
