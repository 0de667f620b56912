// The gate of the gpu tests, checked where there is no GPU: they skip (ctest stays green), and with
// ONNXPIPE_REQUIRE_CUDA=1 the same binaries fail, so that a GPU machine whose provider does not load cannot pass.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "support/cuda_gate.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int status = -1;
  std::string output;
};

Outcome run(const std::string& command) {
  Outcome outcome;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return outcome;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) outcome.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

class GpuTestGate : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuTestGate, SkipsWithoutCudaAndFailsWhenCudaIsRequired) {
  if (test::cuda_unavailable().empty()) GTEST_SKIP() << "a CUDA device is here: the gpu tests run for real";
  const fs::path binary = fs::path(ONNXPIPE_BINARY_DIR) / "tests" / GetParam();
  ASSERT_TRUE(fs::exists(binary)) << binary << " is not built";

  const Outcome skipped = run("env -u ONNXPIPE_REQUIRE_CUDA " + binary.string());
  EXPECT_EQ(skipped.status, 0) << skipped.output;
  EXPECT_NE(skipped.output.find("[  SKIPPED ]"), std::string::npos) << skipped.output;
  EXPECT_EQ(skipped.output.find("[  FAILED  ]"), std::string::npos) << skipped.output;

  const Outcome required = run("env ONNXPIPE_REQUIRE_CUDA=1 " + binary.string());
  EXPECT_NE(required.status, 0) << required.output;
  EXPECT_NE(required.output.find("ONNXPIPE_REQUIRE_CUDA=1 but no usable CUDA device"), std::string::npos)
      << required.output;
  EXPECT_NE(required.output.find("[  FAILED  ]"), std::string::npos) << required.output;
  // The probe is the process's first session: it must fail for want of a device, not of ORT's logger.
  EXPECT_EQ(required.output.find("DefaultLogger"), std::string::npos) << required.output;
  EXPECT_EQ(required.output.find("[  SKIPPED ]"), std::string::npos) << required.output;
}

INSTANTIATE_TEST_SUITE_P(Binaries, GpuTestGate, ::testing::Values("pipeline_gpu_test", "runtime_gpu_test"));

}  // namespace
}  // namespace onnxpipe
