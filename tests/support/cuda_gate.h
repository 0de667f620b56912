#pragma once
// Whether the gpu tests can run here. Without a usable CUDA device they skip, with the reason; with
// ONNXPIPE_REQUIRE_CUDA=1 in the environment (a machine that has a GPU and must use it) the skip is a failure, so
// that a provider that does not load or a missing cuDNN cannot leave the run green.
#include <gtest/gtest.h>

#include <string>

namespace onnxpipe::test {

// Empty when a cuda:0 session can be created; else what failed. Probed once per process.
const std::string& cuda_unavailable();
// ONNXPIPE_REQUIRE_CUDA=1 in the environment.
bool cuda_required();

}  // namespace onnxpipe::test

// In a test or a fixture's SetUp: skips without a usable CUDA device, fails instead when CUDA is required.
#define ONNXPIPE_SKIP_WITHOUT_CUDA()                                                    \
  do {                                                                                  \
    const std::string& why_no_cuda = ::onnxpipe::test::cuda_unavailable();              \
    if (!why_no_cuda.empty()) {                                                         \
      if (::onnxpipe::test::cuda_required())                                            \
        FAIL() << "ONNXPIPE_REQUIRE_CUDA=1 but no usable CUDA device: " << why_no_cuda; \
      GTEST_SKIP() << "no usable CUDA device: " << why_no_cuda;                         \
    }                                                                                   \
  } while (0)
