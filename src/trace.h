#pragma once
// A pipeline observer that keeps what every stage did during one window of time (start() .. stop()) and writes it as a
// Chrome / Perfetto trace: one track per stage (per replica in replicas mode) with its wait, copy-in, run and
// copy-out spans for every request, and arrows following each request from stage to stage. The bench also measures
// with it: records() and origin_us() give every timing of one run on one clock.
//
//   auto trace = std::make_shared<TraceObserver>();
//   options.observers.push_back(trace);
//   Pipeline pipeline(plan_dir, options);
//   trace->start(); pipeline.run(requests); trace->stop();
//   trace->write("run.json", pipeline.stages(), "resnet18 pipeline N=8");
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "onnxpipe/pipeline.h"
#include "onnxpipe/stage_timing.h"

namespace onnxpipe::detail {

// steady_clock now, in microseconds since its epoch: the clock TraceObserver converts StageRecord timestamps to.
double steady_now_us();

class TraceObserver : public StageObserver {
 public:
  // Forgets what was kept and keeps every record that ends from now on, until stop().
  void start();
  void stop();

  void on_stage_begin(int stage, int64_t request) override;
  void on_stage_end(const StageRecord& record) override;

  // The records of the window, in arrival order.
  std::vector<StageRecord> records() const;
  // StageRecord timestamps count from the pipeline's start; this is the offset that turns them into steady_now_us()
  // time (learnt from when records arrive, to within the observer call's delay). NaN before the first record.
  double clock_offset_us() const;
  // When start() was called, on the records' clock. NaN before the first record.
  double origin_us() const;

  // The window as Chrome trace JSON (chrome://tracing, ui.perfetto.dev). Times are in microseconds from start();
  // waits that began before start() are cut there. One track per entry of `stages`, named after it.
  std::string chrome_trace(const std::vector<StageInfo>& stages, const std::string& title) const;
  // chrome_trace into a file; Error(IO) when it cannot be written.
  void write(const std::string& path, const std::vector<StageInfo>& stages, const std::string& title) const;

 private:
  mutable std::mutex mutex_;
  bool recording_ = false;
  double start_us_ = 0;  // steady_now_us() at start()
  double offset_us_ = std::numeric_limits<double>::infinity();
  std::vector<StageRecord> records_;
};

}  // namespace onnxpipe::detail
