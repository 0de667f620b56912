// MPI benchmark (prints figures, asserts nothing), issue 12. Run with two ranks on this machine (loopback):
//   mpirun --oversubscribe --bind-to none -np 2 build/bench/mpi_bench [--models DIR] [--requests N]
//   1. the hop latency of a two-stage Identity pipeline over MPI, for values of 4 B to 16 MiB: the round trip less
//      the run on the other rank (header + data there, outputs back), against the same two stages in one process;
//   2. resnet18 in 2 stages (--balance flops) on cpu:1@0 + cpu:1@1: the stages on ranks 0 and 1 against the same two
//      stages in one process (throughput ratio, goal >= 0.95), and the hop's share of stage 1's time (goal < 5%).
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

// 2. resnet18 in 2 stages: ranks against one process.
void resnet(const fs::path& models, const std::string& dir, int requests) {
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
  double local = 0, remote = 0;
  std::vector<StageSummary> local_stages;
  if (auto one = throughput(split.output_dir, false, inputs, requests, &local)) local_stages = one->timings().summary();
  const std::unique_ptr<Pipeline> ranked = throughput(split.output_dir, true, inputs, requests, &remote);
  if (g_ranks->rank() != 0) return;
  print_row("resnet18", "1 process, 2 stages: throughput", local, "rps");
  print_row("resnet18", "2 ranks, 2 stages: throughput", remote, "rps");
  print_row("resnet18", "throughput ratio 2 ranks / 1 process", remote / local, "x", "goal >= 0.95");
  for (const StageSummary& s : ranked->timings().summary()) {
    if (s.stage == 0) continue;
    print_row("resnet18", "hop to stage " + std::to_string(s.stage) + ": bytes per request", s.hop_bytes, "B");
    std::vector<double> hops;
    for (const StageRecord& r : ranked->timings().records()) {
      if (r.stage == s.stage) hops.push_back(r.hop_us);
    }
    print_row("resnet18", "hop to stage " + std::to_string(s.stage) + ": transfer time, mean", s.hop / 1e3, "ms");
    print_row("resnet18", "hop to stage " + std::to_string(s.stage) + ": transfer time, p50",
              detail::median(hops) / 1e3, "ms");
    print_row("resnet18",
              "stage " + std::to_string(s.stage) + " run time there (1 process: " +
                  std::to_string(local_stages.size() > 1 ? local_stages[1].run / 1e3 : 0).substr(0, 5) + " ms)",
              s.run / 1e3, "ms");
    print_row("resnet18", "hop share of the stage's time (hop / (hop + run))", s.hop / (s.hop + s.run), "",
              "goal < 0.05");
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path models;
  int requests = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--models")) models = argv[i + 1];
    if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
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
    hop_latency(dir.str(), requests);
    resnet(models, dir.str(), requests);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
