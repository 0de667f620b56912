#include "onnxpipe/error.h"

#include <gtest/gtest.h>

#include <string>

#include "commands.h"

namespace onnxpipe {
namespace {

TEST(Error, CliExitStatusFollowsTheCode) {
  EXPECT_EQ(cli::exit_status(ErrorCode::USAGE), 2);
  EXPECT_EQ(cli::exit_status(ErrorCode::VERIFY_MISMATCH), 3);
  for (ErrorCode code : {ErrorCode::INVALID_MODEL, ErrorCode::INVALID_DATA, ErrorCode::IO, ErrorCode::RUNTIME,
                         ErrorCode::CANCELLED, ErrorCode::INTERNAL}) {
    EXPECT_EQ(cli::exit_status(code), 1) << error_code_name(code);
  }
}

TEST(Error, WithStageAttributesOnceAndKeepsTheStructuredContext) {
  StageContext stage{"stage", 1, "piece_1.onnx", "cpu:1"};
  Error inner(ErrorCode::RUNTIME, "input 'x': expected float, got int64");
  EXPECT_FALSE(inner.stage().has_value());
  Error outer = inner.with_stage(stage);
  EXPECT_STREQ(outer.what(), "stage 1 (piece_1.onnx, cpu:1): input 'x': expected float, got int64");
  ASSERT_TRUE(outer.stage().has_value());
  EXPECT_EQ(outer.stage()->index, 1);
  EXPECT_EQ(outer.stage()->piece, "piece_1.onnx");
  EXPECT_EQ(outer.stage()->device, "cpu:1");
  // A second attribution (the pipeline wrapping what its session already attributed) changes nothing.
  Error again = outer.with_stage(StageContext{"stage", 2, "piece_2.onnx", "cpu:2"});
  EXPECT_STREQ(again.what(), outer.what());
  EXPECT_EQ(again.stage()->index, 1);
  // Further context keeps the stage.
  Error request = outer.with_context("request 3");
  ASSERT_TRUE(request.stage().has_value());
  EXPECT_EQ(request.stage()->index, 1);
}

TEST(Error, WithContextPrefixesTheMessageAndKeepsTheCode) {
  Error inner(ErrorCode::RUNTIME, "input 'x': expected float, got int64");
  Error outer = inner.with_context("stage 2 (piece_2.onnx, cpu:1)");
  EXPECT_EQ(outer.code(), ErrorCode::RUNTIME);
  EXPECT_STREQ(outer.what(), "stage 2 (piece_2.onnx, cpu:1): input 'x': expected float, got int64");
  EXPECT_STREQ(inner.what(), "input 'x': expected float, got int64");
}

TEST(Error, CodesHaveDistinctNames) {
  EXPECT_STREQ(error_code_name(ErrorCode::USAGE), "usage");
  EXPECT_STREQ(error_code_name(ErrorCode::VERIFY_MISMATCH), "verify_mismatch");
  EXPECT_STRNE(error_code_name(ErrorCode::IO), error_code_name(ErrorCode::INTERNAL));
}

}  // namespace
}  // namespace onnxpipe
