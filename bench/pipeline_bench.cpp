// Pipeline benchmark (prints figures, asserts nothing), issue 3:
//   1. scheduler overhead per stage hop, with trivial pieces (Identity): target <= 5 us median;
//   2. resnet18 split in 2 (--balance time) on cpu:1@0 + cpu:1@1, 200 requests: throughput against sequence on cpu:1
//      (target >= 1.8) and on cpu:2, and against the bound 1 / max(stage run time measured alone) (target >= 0.95).
//
//   pipeline_bench [--models DIR] [--requests N] [--hops-requests N]
// Models come from DIR, $ONNXPIPE_MODELS or <source>/models (make models).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "stats.h"
#include "support/model_builder.h"

namespace fs = std::filesystem;
using namespace onnxpipe;
using Clock = std::chrono::steady_clock;

namespace {

using onnxpipe::detail::median;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

PipelineOptions options(PipelineMode mode, std::vector<std::string> devices, int max_inflight) {
  PipelineOptions o;
  o.mode = mode;
  o.devices = std::move(devices);
  o.max_inflight = max_inflight;
  return o;
}

// Requests per second over `count` requests kept `max_inflight` deep.
double throughput(Pipeline& pipeline, const TensorMap& inputs, int count) {
  for (int i = 0; i < 3; ++i) pipeline.submit(inputs).get();  // warm-up
  pipeline.timings().clear();
  std::vector<TensorMap> requests(count, inputs);
  const auto start = Clock::now();
  pipeline.run(std::move(requests));
  return count / seconds_since(start);
}

void print_row(const std::string& bench, const std::string& what, double value, const std::string& unit,
               const std::string& note = "") {
  std::printf("| %-10s | %-58s | %12.3f | %-5s | %s\n", bench.c_str(), what.c_str(), value, unit.c_str(), note.c_str());
  std::fflush(stdout);
}

// 1. Identity pieces: what is left of a hop is the scheduler (queue, wake-up, bookkeeping).
void hop_overhead(const std::string& dir, int requests) {
  constexpr int kStages = 4;
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {1, 16});
  std::vector<std::string> cuts;
  std::string prev = "x";
  for (int k = 0; k < kStages; ++k) {
    const std::string next = "v" + std::to_string(k);
    b.node("Identity", {prev}, {next});
    if (k + 1 < kStages) cuts.push_back(next);
    prev = next;
  }
  b.output(prev, DType::FLOAT, {1, 16});
  const std::string model = b.save(dir + "/identity_chain.onnx");
  SplitOptions split;
  split.parts = kStages;
  split.balance = Balance::BYTES;
  split.cuts = cuts;
  split.output_dir = dir + "/identity_plan";
  split_model(model, split);

  const TensorMap inputs = {{"x", make_tensor(DType::FLOAT, {1, 16})}};
  Pipeline pipeline(split.output_dir, options(PipelineMode::PIPELINE, {"cpu:1"}, 16));
  for (int i = 0; i < 100; ++i) pipeline.submit(inputs).get();
  pipeline.timings().clear();

  // Unloaded: one request at a time; a hop is stage k's end to stage k+1's start (push, wake-up, pop).
  for (int i = 0; i < requests; ++i) pipeline.submit(inputs).get();
  std::vector<double> latency, hops, runs, per_stage;
  for (const RequestRecord& request : pipeline.timings().requests()) {
    latency.push_back(request.latency_us());
    for (size_t k = 0; k < request.stages.size(); ++k) {
      const StageRecord& r = request.stages[k];
      runs.push_back(r.run);
      if (k > 0) hops.push_back(r.t_begin - request.stages[k - 1].t_end);
      per_stage.push_back(r.ttime - r.wait - r.run);  // bookkeeping inside a stage, outside Run
    }
  }
  print_row("hops", "hop, stage end -> next stage start (median, unloaded)", median(hops), "us", "target <= 5");
  print_row("hops", "stage bookkeeping outside Run (median)", median(per_stage), "us");
  print_row("hops", "Identity Run (median)", median(runs), "us");
  print_row("hops", "end-to-end latency, 4 Identity stages (median)", median(latency), "us");

  // Loaded: requests kept 16 deep; the slowest stage sets the pace, per request.
  pipeline.timings().clear();
  std::vector<TensorMap> batch(requests, inputs);
  const auto start = Clock::now();
  pipeline.run(std::move(batch));
  const double per_request = seconds_since(start) * 1e6 / requests;
  print_row("hops", "time per request at 16 in flight (slowest stage pace)", per_request, "us");
}

// 2. resnet18 in 2 pieces on two pinned cores, against the unsplit model.
void resnet18(const std::string& models, const std::string& dir, int requests) {
  const std::string model = models + "/resnet18.onnx";
  if (!fs::exists(model)) {
    std::printf("resnet18: skipped, %s not found (make models)\n", model.c_str());
    return;
  }
  if (std::thread::hardware_concurrency() < 2) {
    std::printf("resnet18: skipped, needs 2 cores\n");
    return;
  }
  SplitOptions split;
  split.parts = 2;
  split.balance = Balance::TIME;
  split.output_dir = dir + "/resnet18_2";
  const auto split_start = Clock::now();
  const Plan plan = split_model(model, split);
  print_row("resnet18", "split in 2, balance time (wall)", seconds_since(split_start), "s");

  VerifyOptions random;
  const TensorMap inputs = make_inputs(plan.model_inputs, random);

  // Each piece alone on its core: the bound a 2-stage pipeline can reach.
  double slowest = 0;
  for (const PieceDesc& piece : plan.pieces) {
    Pipeline alone((fs::path(split.output_dir) / piece.file).string(),
                   options(PipelineMode::SEQUENCE, {"cpu:1@" + std::to_string(piece.index)}, 1));
    const TensorMap piece_inputs = make_inputs(alone.inputs(), random);
    for (int i = 0; i < 5; ++i) alone.submit(piece_inputs).get();
    alone.timings().clear();
    for (int i = 0; i < 30; ++i) alone.submit(piece_inputs).get();
    const double run = alone.timings().summary().at(0).run_median;
    print_row(
        "resnet18",
        "piece " + std::to_string(piece.index) + " run alone on cpu:1@" + std::to_string(piece.index) + " (median)",
        run / 1e3, "ms");
    slowest = std::max(slowest, run);
  }
  const double bound = 1e6 / slowest;

  Pipeline pipeline(split.output_dir, options(PipelineMode::PIPELINE, {"cpu:1@0", "cpu:1@1"}, 4));
  const double pipelined = throughput(pipeline, inputs, requests);
  std::string stage_runs;
  for (const StageSummary& s : pipeline.timings().summary()) {
    char text[96];
    std::snprintf(text, sizeof text, "%sstage %d: run %.2f ms, wait %.2f ms", stage_runs.empty() ? "" : "; ", s.stage,
                  s.run_median / 1e3, s.wait / 1e3);
    stage_runs += text;
  }
  Pipeline sequence1(model, options(PipelineMode::SEQUENCE, {"cpu:1"}, 1));
  const double seq1 = throughput(sequence1, inputs, requests);
  Pipeline sequence2(model, options(PipelineMode::SEQUENCE, {"cpu:2"}, 1));
  const double seq2 = throughput(sequence2, inputs, requests);

  print_row("resnet18", "pipeline cpu:1@0,cpu:1@1 throughput", pipelined, "req/s", stage_runs);
  print_row("resnet18", "sequence cpu:1 throughput", seq1, "req/s");
  print_row("resnet18", "sequence cpu:2 throughput", seq2, "req/s");
  print_row("resnet18", "bound 1 / max(stage run alone)", bound, "req/s");
  print_row("resnet18", "pipeline / sequence cpu:1", pipelined / seq1, "x", "target >= 1.8");
  print_row("resnet18", "pipeline / sequence cpu:2", pipelined / seq2, "x", "reported");
  print_row("resnet18", "pipeline / bound", pipelined / bound, "x", "target >= 0.95");
}

}  // namespace

int main(int argc, char** argv) {
  std::string models;
  int requests = 200, hop_requests = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--models" && i + 1 < argc) {
      models = argv[++i];
    } else if (arg == "--requests" && i + 1 < argc) {
      requests = std::atoi(argv[++i]);
    } else if (arg == "--hops-requests" && i + 1 < argc) {
      hop_requests = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: pipeline_bench [--models DIR] [--requests N] [--hops-requests N]\n");
      return 2;
    }
  }
  if (models.empty()) {
    const char* env = std::getenv("ONNXPIPE_MODELS");
    models = env && *env ? env : std::string(ONNXPIPE_SOURCE_DIR) + "/models";
  }
  const std::string dir = test::temp_dir("pipeline_bench");
  int status = 0;
  try {
    std::printf("| bench      | %-58s | %12s | unit  | note\n", "measure", "value");
    std::printf("|------------|-%s-|--------------|-------|-----\n", std::string(58, '-').c_str());
    hop_overhead(dir, hop_requests);
    resnet18(models, dir, requests);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    status = 1;
  }
  fs::remove_all(dir);
  return status;
}
