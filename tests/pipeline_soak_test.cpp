// The soak run's short form (tests/support/soak.h): 5k requests through a 3-stage pipeline, a fault every 1000, also
// under ThreadSanitizer and AddressSanitizer (`make sanitize`). `make soak` is the long form.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/model_builder.h"
#include "support/soak.h"

using namespace onnxpipe;

TEST(PipelineSoak, EveryFutureIsAnsweredOnceInOrderThroughInjectedFaults) {
  test::SoakOptions options;
  options.requests = 5000;
  options.fault_every = 1000;
  options.dir = test::temp_dir("pipeline_soak");
  const test::SoakReport report = test::run_soak(options);
  std::filesystem::remove_all(options.dir);
  for (const std::string& problem : report.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(report.injected, 5);
  EXPECT_EQ(report.reported, report.injected);
  EXPECT_EQ(report.answered, report.submitted);
  EXPECT_EQ(report.failed, 2);  // the faults in turn: stage, shape, abandoned, destroyed, stage
  EXPECT_EQ(report.abandoned, 1);
  EXPECT_EQ(report.restarts, 1);
  std::printf(
      "[soak] %lld requests, %.0f requests/s, faults injected %lld / reported %lld, cancelled %lld, "
      "RSS warm %.1f MB end %.1f MB\n",
      static_cast<long long>(report.submitted), report.requests_per_second, static_cast<long long>(report.injected),
      static_cast<long long>(report.reported), static_cast<long long>(report.cancelled), report.rss_warm_bytes / 1e6,
      report.rss_end_bytes / 1e6);
}
