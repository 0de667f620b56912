#include "onnxpipe/error.h"

#include <gtest/gtest.h>

#include <string>

namespace onnxpipe {
namespace {

TEST(Error, ExitStatusFollowsTheCode) {
  EXPECT_EQ(exit_status(ErrorCode::USAGE), 2);
  EXPECT_EQ(exit_status(ErrorCode::VERIFY_MISMATCH), 3);
  for (ErrorCode code :
       {ErrorCode::INVALID_MODEL, ErrorCode::IO, ErrorCode::RUNTIME, ErrorCode::CANCELLED, ErrorCode::INTERNAL}) {
    EXPECT_EQ(exit_status(code), 1) << error_code_name(code);
  }
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
