#pragma once
// The seed's experiment on any model and device set: run N = 1, 3, 5 ... images through each mode (sequence,
// pipeline, replicas), `repeat` times each, and report per (mode, N) what the seed's CSV reports (same column names),
// plus how close the run came to the physical limit: throughput against 1 / (slowest stage timed alone), latency
// percentiles, busy and bubble fractions, bytes crossing each cut, peak memory. Every mode's outputs are compared with
// the first mode's, image by image (atol 1e-3 like the seed).
//
//   Bench bench("models/resnet18.onnx", options);     // splits into a temporary directory
//   BenchSummary summary = bench.run([&](const Measurement& m) { print(m); });
// The CLI prints the measurements as the seed's columns (tools/bench_table.h).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "onnxpipe/pipeline.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/split.h"

namespace onnxpipe::detail {

// The image counts N a bench runs, in order (the CLI's --images).
struct ImageSweep {
  std::vector<int> counts;
  int max_n = 0;  // the seed's maxN: a lone range's stop, else the largest count
  int step = 0;   // the seed's stepN: a lone range's step, else 0 (not a range)

  static ImageSweep range(int start, int stop, int step = 1);  // Python's range(start, stop, step)
  static ImageSweep list(std::vector<int> counts);
};

struct BenchOptions {
  // One device per stage. Pipeline runs stage k on devices[k]; sequence runs the whole model on devices[0]; replicas
  // run one whole model per device.
  std::vector<std::string> devices = {"cpu"};
  std::vector<PipelineMode> modes = {PipelineMode::SEQUENCE, PipelineMode::PIPELINE, PipelineMode::REPLICAS};
  ImageSweep images = ImageSweep::range(1, 81, 2);
  int repeat = 4;  // measured runs per (mode, N), averaged
  // Seconds of unmeasured runs (the largest N), back to back, per mode before its sweep and per session before it is
  // timed alone; one run at least. An idle core takes a few hundred milliseconds to reach its speed.
  double warmup = 1;
  int alone_runs = 100;  // requests timed back to back per session run by itself (the bound), median
  int micro_batch = 0;   // > 0: the N images go as one batch, cut into micro-batches of this many rows
  int max_inflight = 8;  // requests admitted and not yet answered
  // Several ranks (onnxpipe/ranks.h, a RankSession alive; a plan directory): pipeline mode runs stage k on rank
  // ranks[k]; sequence and replicas, and the sessions timed alone for the bounds, run on rank 0. Every rank makes
  // the same Bench; rank 0 calls run(), the others serve().
  std::vector<int> ranks;
  double atol = 1e-3;  // like the seed's assert_allclose
  double rtol = 1e-7;
  uint64_t seed = 0;                    // of the random images (image i uses seed + i)
  std::map<std::string, int64_t> dims;  // symbolic dimension values of the inputs (and of the split)
  // Given inputs (every image uses them; the others are random): needed for inputs without a declared shape, and
  // given to the split too (its sizing and timing runs).
  std::map<std::string, Tensor> inputs;
  // When the source is a model: how to split it (parts = devices; output_dir is a temporary directory). Balance
  // TIME measured on the stage device kind unless set otherwise.
  SplitOptions split;
  std::string commit;      // build commit written on every row
  std::string trace_path;  // write a Chrome trace of one run there: the last repetition of the largest N, in
                           // pipeline mode when it is measured, else in the last mode
  ProgressFn progress;
};

// Seconds per run (sums over the run's requests, as the seed's per-thread counters), averaged over repetitions.
struct StageTimes {
  double wait0 = 0;  // waiting for the run's first request
  double wait = 0;   // waiting for requests, wait0 included
  double copy1 = 0;  // copy in
  double copy2 = 0;  // copy out
  double run = 0;
  double ttime = 0;  // from starting to wait to handing each request on
  double wtime = 0;  // ttime - copy1 - run - copy2: waiting plus hand-off
  double busy = 0;   // (copy1 + run + copy2) / wall time
  // A stage on another rank: the bytes of its hop per request (into the stage from any rank, and its answer to
  // rank 0), and the seconds of their transfers (each data message from its receive posted to its last byte).
  double hop_bytes = 0;
  double hop_s = 0;
};

// One cut between stage k and k+1, per request.
struct CutTimes {
  int64_t bytes = -1;       // of the values crossing it (from the plan; -1 unknown)
  double copied_bytes = 0;  // copied into stage k+1 (0 on CPU: the hand-off is zero-copy)
  double copy_s = 0;        // stage k+1's copy in
};

// One (mode, N), averaged over the repetitions.
struct Measurement {
  PipelineMode mode = PipelineMode::PIPELINE;
  std::string mode_devices;  // what this mode ran on
  std::string ranks;         // several ranks: the rank of each stage ("0,1"), and its host ("a,b")
  std::string hosts;
  int images = 0;                  // N
  int requests = 0;                // per run: N, or the micro-batches
  int sessions = 0;                // the seed's n_threads
  double time = 0;                 // seconds per run
  bool order = true;               // the last stage finished the requests in submission order in every run
  std::vector<StageTimes> stages;  // pipeline mode only (the seed leaves them empty for sequence)
  std::vector<CutTimes> cuts;      // pipeline mode only
  double throughput = 0;           // images / s
  double bound_throughput = 0;     // images / s: one per slowest stage's time alone; replicas: their rates summed
  double speedup = -1;             // sequence time / time at this N; < 0 when sequence was not measured before
  double latency_p50 = 0, latency_p90 = 0, latency_p99 = 0;  // seconds from admission to answer
  double bubble = 0;                                         // 1 - work / (sessions * wall time)
  double bubble_theory = 0;  // pipeline (p-1)/(m+p-1); replicas 1 - m/(R*ceil(m/R)); sequence 0
  // Per entry of options.devices (the device a stage or replica was placed on, not a stage index): ORT's MaxInUse
  // bytes of the mode's sessions there, -1 unknown or unused (sequence uses entry 0 only).
  std::vector<int64_t> peak_memory;
  double max_abs_diff = 0;  // against the first mode, image by image
  int64_t mismatches = 0;   // elements beyond atol + rtol * |expected|
};

struct BenchSummary {
  int rows = 0;
  double max_abs_diff = 0;
  std::vector<std::string> mismatches;  // "pipeline N=7 image 3 output 'y': max |diff| 0.2", the first few
  bool verified() const { return mismatches.empty(); }
};

class Bench {
 public:
  // Loads the plan of a plan directory, or splits a model into a temporary directory (removed with the Bench).
  // Error(USAGE) for bad options (device count versus parts, empty sweep...).
  Bench(const std::string& source, BenchOptions options);
  ~Bench();
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  const Plan& plan() const;
  const std::string& plan_dir() const;
  std::string plan_hash() const;        // sha256 of plan.json, 16 hex digits
  const BenchOptions& options() const;  // devices: one per piece
  const std::string& model() const;     // the source model's name
  const std::string& ort_version() const;
  const std::vector<int64_t>& cut_bytes() const;  // per cut k (after piece k): bytes a request hands over, -1 unknown

  // Measures every mode and N, calling on_row as each (mode, N) is done. Outputs that differ are listed in the
  // summary, not thrown: the caller prints the rows first, then fails (Error(VERIFY_MISMATCH)).
  BenchSummary run(const std::function<void(const Measurement&)>& on_row);
  // On a rank other than 0 (options.ranks): serves the pipeline mode's stages placed here until rank 0's run() is
  // done with them. Returns at once on rank 0 and in a single process.
  void serve();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace onnxpipe::detail
