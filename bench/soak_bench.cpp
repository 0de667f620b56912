// The soak run's long form (`make soak`): 100k requests (--requests N) through a 3-stage pipeline with a fault every
// 1000 (tests/support/soak.h). Prints requests/s, faults injected vs reported, RSS after warm-up and at the end; exits
// 1 when a future was not answered exactly once, in order, or RSS grew by more than 8 MB (--rss-slack-mb).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "support/model_builder.h"
#include "support/soak.h"

int main(int argc, char** argv) {
  onnxpipe::test::SoakOptions options;
  options.requests = 100000;
  double slack_mb = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--requests")) {
      options.requests = std::atoll(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--fault-every")) {
      options.fault_every = std::atoll(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--rss-slack-mb")) {
      slack_mb = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: soak_bench [--requests N] [--fault-every K] [--rss-slack-mb M]\n");
      return 2;
    }
  }
  if (options.requests < 1 || options.fault_every < 2) {
    std::fprintf(stderr, "soak_bench: --requests must be >= 1 and --fault-every >= 2\n");
    return 2;
  }
  options.dir = onnxpipe::test::temp_dir("soak_bench");
  const onnxpipe::test::SoakReport r = onnxpipe::test::run_soak(options);
  std::filesystem::remove_all(options.dir);
  const double growth_mb = (r.rss_end_bytes - r.rss_warm_bytes) / 1e6;
  std::printf("soak: %lld requests in %.1f s: %.0f requests/s\n", static_cast<long long>(r.submitted), r.seconds,
              r.requests_per_second);
  std::printf(
      "soak: faults injected %lld, reported %lld (stage errors %lld, abandoned %lld, pipelines destroyed %lld "
      "with %lld requests cancelled)\n",
      static_cast<long long>(r.injected), static_cast<long long>(r.reported), static_cast<long long>(r.failed),
      static_cast<long long>(r.abandoned), static_cast<long long>(r.restarts), static_cast<long long>(r.cancelled));
  std::printf("soak: answered %lld of %lld, results %lld; RSS after warm-up %.1f MB, at the end %.1f MB (%+.1f MB)\n",
              static_cast<long long>(r.answered), static_cast<long long>(r.submitted),
              static_cast<long long>(r.results), r.rss_warm_bytes / 1e6, r.rss_end_bytes / 1e6, growth_mb);
  for (const std::string& problem : r.problems) std::printf("soak: PROBLEM %s\n", problem.c_str());
  const bool flat = r.rss_warm_bytes == 0 || growth_mb <= slack_mb;
  if (!flat) std::printf("soak: PROBLEM RSS grew by %.1f MB (more than %.0f MB)\n", growth_mb, slack_mb);
  return r.problems.empty() && r.reported == r.injected && flat ? 0 : 1;
}
