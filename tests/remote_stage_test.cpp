// Placing stages on ranks without MPI running: what is checked before anything is sent (src/remote_stage.h).
#include "remote_stage.h"

#include <gtest/gtest.h>

#include "onnxpipe/pipeline.h"
#include "onnxpipe/ranks.h"
#include "onnxpipe/split.h"
#include "support/expect_error.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe {
namespace {

TEST(RemoteStage, APlacementNeedsARankSessionAndOneRankPerPiece) {
  EXPECT_EQ(test::error_code_of([] { detail::check_placement({0, 1}, 2, nullptr); }), ErrorCode::USAGE);
  test::TempDir dir;
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {1, 4});
  b.node("Relu", {"x"}, {"a"}, {}, "", "relu");
  b.node("Neg", {"a"}, {"y"}, {}, "", "neg");
  b.output("y", DType::FLOAT, {1, 4});
  SplitOptions split;
  split.parts = 2;
  split.cuts = {"a"};
  split.balance = Balance::BYTES;
  split.output_dir = dir.file("plan");
  split_model(b.save(dir.file("model.onnx")), split);
  PipelineOptions options;
  options.ranks = {0, 1};
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { Pipeline pipeline(split.output_dir, options); }, &message), ErrorCode::USAGE);
  EXPECT_NE(message.find("rank session"), std::string::npos) << message;
  options.mode = PipelineMode::SEQUENCE;
  EXPECT_EQ(test::error_code_of([&] { Pipeline pipeline(split.output_dir, options); }), ErrorCode::USAGE);
}

TEST(RemoteStage, ARankSessionSaysWhetherMpiWasBuiltIn) {
  EXPECT_EQ(RankSession::available(), ONNXPIPE_WITH_MPI_TEST != 0);
}

}  // namespace
}  // namespace onnxpipe
