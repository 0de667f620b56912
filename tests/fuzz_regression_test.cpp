// Inputs the fuzz targets (fuzz/) found that broke a reader: each must now be an onnxpipe::Error with a code.
#include <gtest/gtest.h>

#include "onnxpipe/plan.h"
#include "support/expect_error.h"

namespace onnxpipe {
namespace {

TEST(FuzzRegression, PlanJsonNumberOverflowIsInvalidModel) {
  std::string message;
  EXPECT_EQ(test::error_code_of([] { Plan::from_json("4e642"); }, &message), ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  EXPECT_EQ(test::error_code_of([] { Plan::from_json(R"({"format_version": 1e999})"); }), ErrorCode::INVALID_MODEL);
}

}  // namespace
}  // namespace onnxpipe
