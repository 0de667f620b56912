// Balancing for a CUDA device: ORT's profiler times a CUDA node's kernel launch, not its kernel, so time and auto
// balance by flops there, and say why. No device is needed: nothing is timed.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "onnxpipe/log.h"
#include "onnxpipe/split.h"
#include "support/model_builder.h"

namespace onnxpipe {
namespace {

TEST(SplitOnCuda, TimeAndAutoBalanceByFlopsAndSayWhy) {
  const std::string dir = test::temp_dir("split_cuda_balance_test");
  const std::string model = test::early_extra_output(dir);
  for (Balance balance : {Balance::TIME, Balance::AUTO}) {
    std::mutex mutex;
    std::vector<std::string> warnings;
    set_log_callback(LogLevel::WARN, [&](LogLevel, const std::string& text) {
      std::lock_guard<std::mutex> lock(mutex);
      warnings.push_back(text);
    });
    SplitOptions options;
    options.parts = 2;
    options.balance = balance;
    options.device = "cuda:0";
    options.output_dir = dir + "/plan_" + balance_name(balance);
    const Plan plan = split_model(model, options);
    set_log_callback(LogLevel::WARN, nullptr);
    EXPECT_EQ(plan.balance, "flops") << balance_name(balance);
    EXPECT_EQ(plan.cost_unit, "flops");
    ASSERT_EQ(warnings.size(), 1u) << balance_name(balance);
    EXPECT_NE(warnings[0].find("cuda:0 would time asynchronous kernel launches, not the kernels: balancing by flops"),
              std::string::npos)
        << warnings[0];
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace onnxpipe
