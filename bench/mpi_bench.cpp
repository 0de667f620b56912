// MPI benchmark (prints figures, asserts nothing), issue 12. Run with two ranks on this machine (loopback):
//   mpirun --oversubscribe --bind-to none -np 2 build/bench/mpi_bench [--models DIR] [--requests N] [--rounds R]
//   1. the hop latency of a two-stage Identity pipeline over MPI, for values of 4 B to 16 MiB: the round trip less
//      the run on the other rank (header + data there, outputs back), against the same two stages in one process;
//   2. resnet18 in 2 stages (--balance flops) on cpu:1@0 + cpu:1@1: the stages on ranks 0 and 1 against the same two
//      stages in one process, R rounds of both, interleaved (the order swapped every round) so that both see the
//      same load: throughput ratio per round (goal >= 0.95), and the hop's transfer time (each data message from
//      its receive posted to its last byte, there and back) against stage 1's run (goal < 5%). Load averages at the
//      start and the end.
// Every rank runs the same steps (each splits the models into its own directory); rank 0 prints.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/ranks.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "staging.h"
#include "stats.h"
#include "support/model_builder.h"

namespace fs = std::filesystem;
using namespace onnxpipe;
using Clock = std::chrono::steady_clock;

namespace {

RankSession* g_ranks = nullptr;

void print_row(const std::string& bench, const std::string& what, double value, const std::string& unit,
               const std::string& note = "") {
  if (g_ranks->rank() != 0) return;
  std::printf("| %-8s | %-58s | %12.3f | %-5s | %s\n", bench.c_str(), what.c_str(), value, unit.c_str(), note.c_str());
  std::fflush(stdout);
}

PipelineOptions two_stages(bool ranked) {
  PipelineOptions o;
  o.devices = {"cpu:1@0", "cpu:1@1"};
  if (ranked) o.ranks = {0, 1};
  return o;
}

// Runs `count` requests kept max_inflight deep on rank 0 (after a warm-up) into *rps; the pipeline, for its
// timings. The other ranks serve the ranked one and skip the other.
std::unique_ptr<Pipeline> throughput(const std::string& plan, bool ranked, const TensorMap& inputs, int count,
                                     double* rps) {
  if (!ranked && g_ranks->rank() != 0) return nullptr;
  auto pipeline = std::make_unique<Pipeline>(plan, two_stages(ranked));
  if (g_ranks->rank() != 0) {
    pipeline->serve();
    return nullptr;
  }
  for (int i = 0; i < 3; ++i) pipeline->submit(inputs).get();
  pipeline->timings().clear();
  const auto start = Clock::now();
  pipeline->run(std::vector<TensorMap>(static_cast<size_t>(count), inputs));
  *rps = count / std::chrono::duration<double>(Clock::now() - start).count();
  return pipeline;
}

// 1. Identity -> Identity cut in between: stage 1 on rank 1 does nothing but take the value and give it back.
void hop_latency(const std::string& dir, int requests) {
  for (int64_t floats : {int64_t(1), int64_t(16) << 10, int64_t(256) << 10, int64_t(4) << 20}) {
    const std::string sub = dir + "/identity_" + std::to_string(floats);
    fs::create_directories(sub);
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {floats});
    b.node("Identity", {"x"}, {"a"}, {}, "", "first");
    b.node("Identity", {"a"}, {"y"}, {}, "", "second");
    b.output("y", DType::FLOAT, {floats});
    SplitOptions split;
    split.parts = 2;
    split.cuts = {"a"};
    split.balance = Balance::BYTES;
    split.output_dir = sub + "/plan";
    split_model(b.save(sub + "/model.onnx"), split);
    const TensorMap inputs = {{"x", make_tensor(DType::FLOAT, {floats})}};
    for (bool ranked : {false, true}) {
      Pipeline pipeline(split.output_dir, two_stages(ranked));
      if (g_ranks->rank() != 0) {
        if (ranked) pipeline.serve();
        continue;
      }
      for (int i = 0; i < 10; ++i) pipeline.submit(inputs).get();
      pipeline.timings().clear();
      std::vector<double> latency;
      for (int i = 0; i < requests; ++i) pipeline.submit(inputs).get();  // one at a time: latency, not throughput
      std::vector<double> hop;
      for (const RequestRecord& r : pipeline.timings().requests()) latency.push_back(r.latency_us());
      for (const StageRecord& r : pipeline.timings().records()) {
        if (r.stage == 1) hop.push_back(r.hop_us);
      }
      const std::string size = std::to_string(floats * 4) + " B";
      print_row("hop", std::string(ranked ? "2 ranks" : "1 process") + ", request latency p50, " + size,
                detail::median(latency), "us");
      if (ranked) {
        const double hop_us = detail::median(hop);
        print_row("hop", "2 ranks, hop there and back (less the run) p50, " + size, hop_us, "us",
                  "bandwidth " + std::to_string(static_cast<int>(2.0 * floats * 4 / hop_us)) + " MB/s");
      }
    }
  }
}

std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  char text[64] = {};
  if (f) {
    if (!std::fgets(text, sizeof text, f)) text[0] = 0;
    std::fclose(f);
  }
  std::string s = text;
  return s.substr(0, s.find(' ', s.find(' ', s.find(' ') + 1) + 1));
}

struct RankedRound {
  double ratio = 0;
  double hop_p50_ms = 0;
  double run_ms = 0;  // stage 1's run there, mean
  double share = 0;   // hop p50 / (hop p50 + run mean)
  double bytes = 0;   // per request, there and back
};

// 2. resnet18 in 2 stages: ranks against one process, `rounds` times interleaved.
void resnet(const fs::path& models, const std::string& dir, int requests, int rounds) {
  const fs::path model = models / "resnet18.onnx";
  if (!fs::exists(model)) {
    print_row("resnet18", "skipped: no " + model.string() + " (make models)", 0, "");
    return;
  }
  SplitOptions split;
  split.parts = 2;
  split.balance = Balance::FLOPS;  // deterministic: every rank splits it the same way
  split.output_dir = dir + "/resnet18_2";
  split_model(model.string(), split);
  VerifyOptions random;
  const TensorMap inputs = make_inputs(Plan::load(split.output_dir).model_inputs, random);
  std::vector<RankedRound> results;
  for (int round = 0; round < rounds; ++round) {
    double local = 0, remote = 0;
    std::unique_ptr<Pipeline> ranked;
    for (bool first_ranked : {round % 2 == 1, round % 2 == 0}) {
      if (first_ranked) {
        ranked = throughput(split.output_dir, true, inputs, requests, &remote);
      } else {
        throughput(split.output_dir, false, inputs, requests, &local);
      }
    }
    if (g_ranks->rank() != 0) continue;
    RankedRound r;
    r.ratio = remote / local;
    std::vector<double> hops;
    for (const StageRecord& record : ranked->timings().records()) {
      if (record.stage == 1) hops.push_back(record.hop_us);
    }
    for (const StageSummary& s : ranked->timings().summary()) {
      if (s.stage != 1) continue;
      r.run_ms = s.run / 1e3;
      r.bytes = s.hop_bytes;
    }
    r.hop_p50_ms = detail::median(hops) / 1e3;
    r.share = r.hop_p50_ms / (r.hop_p50_ms + r.run_ms);
    results.push_back(r);
    print_row("resnet18", "round " + std::to_string(round) + ": 1 process / 2 ranks throughput", local, "rps",
              std::to_string(remote).substr(0, 6) + " rps, ratio " + std::to_string(r.ratio).substr(0, 5));
    print_row(
        "resnet18",
        "round " + std::to_string(round) + ": hop p50 (" + std::to_string(r.run_ms).substr(0, 5) + " ms run), share",
        r.hop_p50_ms, "ms", "share " + std::to_string(r.share).substr(0, 6) + ", load " + load_average());
  }
  if (g_ranks->rank() != 0 || results.empty()) return;
  // Each figure over the rounds: the median as the value, the range beside it.
  const auto over_rounds = [&](const std::string& what, double RankedRound::*field, const std::string& unit,
                               const std::string& goal) {
    std::vector<double> v;
    for (const RankedRound& r : results) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    print_row("resnet18", what + ", rounds' median", detail::median(v), unit,
              std::to_string(v.front()).substr(0, 6) + " .. " + std::to_string(v.back()).substr(0, 6) + goal);
  };
  over_rounds("throughput ratio 2 ranks / 1 process", &RankedRound::ratio, "x", ", goal >= 0.95");
  over_rounds("hop p50", &RankedRound::hop_p50_ms, "ms", "");
  over_rounds("stage 1 hop share (hop / (hop + run))", &RankedRound::share, "", ", goal < 0.05");
  print_row("resnet18", "hop bytes per request (there and back)", results.back().bytes, "B");
}

}  // namespace

int main(int argc, char** argv) {
  fs::path models;
  int requests = 100;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--models")) models = argv[i + 1];
    if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  if (models.empty()) {
    const char* env = std::getenv("ONNXPIPE_MODELS");
    models = env ? fs::path(env) : fs::path(ONNXPIPE_SOURCE_DIR) / "models";
  }
  try {
    RankSession ranks;
    g_ranks = &ranks;
    if (ranks.size() != 2) {
      std::fprintf(stderr, "run with 2 ranks: mpirun --oversubscribe --bind-to none -np 2 %s\n", argv[0]);
      return 2;
    }
    if (ranks.rank() == 0) {
      std::printf("ranks on %s and %s; MPI CUDA-aware: %s (%s)\n", ranks.host(0).c_str(), ranks.host(1).c_str(),
                  ranks.cuda_aware() ? "yes" : "no", ranks.cuda_support().c_str());
    }
    detail::TempDir dir("mpi_bench");
    if (ranks.rank() == 0) std::printf("load average at the start: %s\n", load_average().c_str());
    hop_latency(dir.str(), requests);
    resnet(models, dir.str(), requests, rounds);
    if (ranks.rank() == 0) std::printf("load average at the end: %s\n", load_average().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
