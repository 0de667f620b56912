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
                         ErrorCode::CANCELLED, ErrorCode::DOES_NOT_FIT, ErrorCode::INTERNAL}) {
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

TEST(Error, AnArgumentErrorIsNamedInTheCliByItsFlag) {
  const Error dims(ErrorCode::USAGE, "dimension 'seq': no input of the model has a dimension of that name",
                   ArgumentContext{"dims", "seq", "no input of the model has a dimension of that name"});
  ASSERT_TRUE(dims.argument().has_value());
  EXPECT_EQ(cli::error_message(dims), "--dim seq: no input of the model has a dimension of that name");
  const Error missing(ErrorCode::USAGE, "input 'x' has no declared shape: give a value for it",
                      ArgumentContext{"inputs", "x", "input 'x' has no declared shape", true});
  EXPECT_EQ(cli::error_message(missing), "input 'x' has no declared shape: give it with --input");
  const Error exists(ErrorCode::USAGE, "out exists and replacing it was not asked for",
                     ArgumentContext{"force", "out", "exists"});
  EXPECT_EQ(cli::error_message(exists), "out exists (use --force to replace it)");
  const Error given(ErrorCode::USAGE, "given input 'z': the model has no such input",
                    ArgumentContext{"inputs", "z", "the model has no such input"});
  EXPECT_EQ(cli::error_message(given), "--input 'z': the model has no such input");
  // Context makes the message more than the argument's fault: the CLI then says what the library said.
  const Error wrapped = dims.with_context("request 1");
  EXPECT_FALSE(wrapped.argument().has_value());
  EXPECT_EQ(cli::error_message(wrapped), wrapped.what());
  EXPECT_EQ(cli::error_message(Error(ErrorCode::IO, "cannot read x")), "cannot read x");
}

TEST(Error, CodesHaveDistinctNames) {
  EXPECT_STREQ(error_code_name(ErrorCode::USAGE), "usage");
  EXPECT_STREQ(error_code_name(ErrorCode::VERIFY_MISMATCH), "verify_mismatch");
  EXPECT_STRNE(error_code_name(ErrorCode::IO), error_code_name(ErrorCode::INTERNAL));
}

}  // namespace
}  // namespace onnxpipe
