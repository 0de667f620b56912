#pragma once
// Running a split model: one ONNX Runtime session and one worker thread per stage, bounded blocking queues between
// them, requests answered in submission order. The modes share one API so that they can be compared:
//   SEQUENCE  the unsplit model in one session on one device;
//   PIPELINE  one piece per device, the pieces of a plan (or of a split made on the fly);
//   REPLICAS  the unsplit model on each device, requests dealt round-robin.
//
//   PipelineOptions options;
//   options.devices = {"cpu:1@0", "cpu:1@1"};
//   Pipeline pipeline("out/resnet18_2", options);
//   Ticket ticket = pipeline.submit({{"input", image}});  // ticket.id: 0, 1, 2 ... in submission order
//   TensorMap outputs = ticket.get();
//   RequestRecord record = pipeline.timings().requests().back();  // record.id == ticket.id, record.latency_us()
//
// Observers (PipelineOptions::observers) get each stage's StageRecord and each request's RequestRecord as they end.
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "onnxpipe/device.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/split.h"
#include "onnxpipe/stage_timing.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe {

using TensorMap = std::map<std::string, Tensor>;

enum class PipelineMode { SEQUENCE, PIPELINE, REPLICAS };
PipelineMode pipeline_mode_from_name(const std::string& name);  // sequence|pipeline|replicas, else Error(USAGE)
const char* pipeline_mode_name(PipelineMode mode);

// Options of the sessions on one device, passed through to ONNX Runtime.
struct DeviceOptions {
  // CUDA provider options: gpu_mem_limit (bytes: the Limit of each session's own arena), arena_extend_strategy
  // (kNextPowerOfTwo | kSameAsRequested), cudnn_conv_algo_search (EXHAUSTIVE | HEURISTIC | DEFAULT; HEURISTIC unless
  // set, as EXHAUSTIVE searches again for every new input shape), do_copy_in_default_stream, and any other the
  // provider knows.
  std::map<std::string, std::string> provider_options;
  // Session config entries ("session.xxx" keys of onnxruntime_session_options_config_keys.h). On CUDA, nodes the
  // provider leaves to the CPU (shape computations, ops without a CUDA kernel) run there, with a warning on the log
  // channel saying how many; session.disable_cpu_ep_fallback=1 makes loading such a stage fail instead.
  std::map<std::string, std::string> session_options;
};

struct PipelineOptions {
  PipelineMode mode = PipelineMode::PIPELINE;
  // PIPELINE: one per piece; SEQUENCE: exactly one; REPLICAS: one per replica. Forms of parse_device.
  std::vector<std::string> devices = {"cpu"};
  int max_inflight = 8;  // requests admitted and not yet answered; submit blocks beyond (back-pressure)
  int micro_batch = 0;   // run_batch: micro-batch size along axis 0; 0 = the whole batch at once
  int optimization_level = 99;
  DeviceOptions all_devices;                              // for every session
  std::map<std::string, DeviceOptions> per_device;        // by device text ("cuda:1"); merged over all_devices
  std::vector<std::shared_ptr<StageObserver>> observers;  // besides the built-in TimingCollector
  bool collect_timings = true;                            // keep every record in timings()
  // Several ranks (onnxpipe/ranks.h, a RankSession alive): stage k runs on rank ranks[k]; every rank builds the
  // pipeline from the same plan directory and options and loads only its stages. Empty: every stage here.
  std::vector<int> ranks;
  // PIPELINE from a model file: how to split it on the fly (parts = number of devices; output_dir is a temporary
  // directory removed with the pipeline; Balance::TIME measures on the first device's kind unless `device` is set).
  SplitOptions split;
};

// What a stage loaded and where.
struct StageInfo {
  int stage = 0;
  int lane = 0;
  std::string piece;  // piece file (or the model file)
  std::string device;
  int rank = 0;      // the MPI rank it runs on (PipelineOptions::ranks), and that rank's host
  std::string host;  // empty in a single process
  std::vector<ValueDesc> inputs;
  std::vector<ValueDesc> outputs;
  // ONNX Runtime allocator statistics of the stage's own arena (Limit, InUse, MaxInUse, TotalAllocated, NumAllocs,
  // ...): its weights and activations; the CUDA context and cuDNN/cuBLAS workspaces are outside it. On CUDA also
  // device_free_bytes / device_total_bytes: the whole device's (every stage and process on it), not this stage's use.
  std::map<std::string, int64_t> memory;
};

// What submit returns: the request's id (its RequestRecord's and StageRecords' `request`) and its answer. Converts to
// the bare future for callers that keep only the answer.
struct Ticket {
  int64_t id = -1;
  std::future<TensorMap> result;
  TensorMap get() { return result.get(); }
  operator std::future<TensorMap>() && { return std::move(result); }
};

class Pipeline {
 public:
  // `source` is a plan directory (with plan.json) or a model file. PIPELINE with a model file splits it on the fly;
  // SEQUENCE and REPLICAS with a plan directory run the plan's source model. Loads every session before returning;
  // throws Error(USAGE) for bad options, Error(INVALID_MODEL) for a bad plan, Error(RUNTIME) naming the stage.
  Pipeline(const std::string& source, PipelineOptions options);
  // Cancels what is still queued (its futures fail with Error(CANCELLED)), stops the runs in progress, joins.
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Validates the inputs against the model's (names, dtype, rank, fixed and shared symbolic dims, byte size), then
  // enqueues them, blocking while max_inflight requests are in flight. Throws Error(USAGE) for invalid inputs
  // (nothing enqueued, no id taken). The ticket's future holds every model output, or the Error of the stage that
  // failed ("stage 1 (piece_1.onnx, cpu:1): ..."). Thread-safe; ids follow the order requests are admitted.
  Ticket submit(TensorMap inputs);
  // As submit(inputs), asking `interrupted` (on the calling thread) every few milliseconds while back-pressure holds
  // the request: once it says true, throws Error(CANCELLED) "submit interrupted" with nothing enqueued.
  Ticket submit(TensorMap inputs, const std::function<bool()>& interrupted);
  // Submits all, waits for all; results in order. Rethrows the first failure once every request is done.
  std::vector<TensorMap> run(std::vector<TensorMap> requests);
  // Splits `batch` along axis 0 into micro-batches of `micro_batch` (default options.micro_batch; 0 = whole),
  // pipelines them, and concatenates the outputs along axis 0. Every input and output must have that axis.
  TensorMap run_batch(const TensorMap& batch, int micro_batch = -1);
  // On a rank other than 0 (PipelineOptions::ranks): runs this rank's stages for rank 0 until rank 0's pipeline
  // closes; Error(RUNTIME) when rank 0 is lost. Returns at once on rank 0 and in a single process. On those ranks
  // submit() and run() are Error(USAGE), and stages() lists only their own stages.
  void serve();

  PipelineMode mode() const;
  const std::vector<ValueDesc>& inputs() const;  // of the whole model
  const std::vector<ValueDesc>& outputs() const;
  int stage_count() const;                // per lane
  int lane_count() const;                 // replicas, else 1
  std::vector<StageInfo> stages() const;  // memory statistics read now
  const TimingCollector& timings() const;
  TimingCollector& timings();
  // Now on the clock of every record: microseconds since the pipeline was created (steady).
  double now_us() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The requests as a Chrome / Perfetto trace (chrome://tracing, ui.perfetto.dev): one track per entry of `stages`
// (per stage, per replica in replicas mode) with each request's wait, copy-in, run and copy-out spans, and arrows
// following each request from stage to stage. Requests are named #0, #1 ... in id order; times are microseconds from
// the first request's submission, and waits that began before it are cut there.
std::string chrome_trace(const std::vector<RequestRecord>& requests, const std::vector<StageInfo>& stages,
                         const std::string& title);

}  // namespace onnxpipe
