#pragma once
// What each pipeline stage did for each request: timings with the seed's names, copies, timestamps for a timeline.
// Delivered to observers (called from the stage workers); TimingCollector is the built-in one.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace onnxpipe {

// Where a copy moved bytes: NONE (no copy), HOST (host to host: into pinned memory, out to a Tensor),
// H2D host to device, D2D device to device, D2H device to host. Ordered by cost.
enum class CopyPath { NONE, HOST, H2D, D2D, D2H };
const char* copy_path_name(CopyPath path);

struct CopyStat {
  CopyPath path = CopyPath::NONE;  // the costliest path among the values copied
  int64_t bytes = 0;
  double us = 0;
};

// One stage's work on one request. Durations in microseconds; timestamps in microseconds since the pipeline started.
struct StageRecord {
  int64_t request = 0;  // submission index
  int stage = 0;
  int lane = 0;  // replica index (replicas mode), else 0
  std::string device;
  double wait0 = 0;  // waiting for the stage's very first item (only on that item)
  double wait = 0;   // waiting for this item
  double copy1 = 0;  // copy in: inputs into this stage's memory
  double run = 0;    // ONNX Runtime's Run
  double copy2 = 0;  // copy out: outputs to the host
  double ttime = 0;  // total, from starting to wait to handing the request on
  CopyStat copy_in;
  CopyStat copy_out;
  double t_wait = 0;   // started waiting
  double t_begin = 0;  // got the request
  double t_end = 0;    // done with it
  bool failed = false;
};

class StageObserver {
 public:
  virtual ~StageObserver() = default;
  // Called on the stage's worker thread: implementations must be thread-safe and must not throw.
  virtual void on_stage_begin(int stage, int64_t request) = 0;
  virtual void on_stage_end(const StageRecord& record) = 0;
};

// Per-stage aggregate over the collected records.
struct StageSummary {
  int stage = 0;
  std::string device;
  int64_t requests = 0;
  int64_t failures = 0;
  double wait0 = 0;                                           // total
  double wait = 0, copy1 = 0, run = 0, copy2 = 0, ttime = 0;  // means
  double run_median = 0;
  std::map<CopyPath, int64_t> copy_bytes;  // in and out, by path
  std::map<CopyPath, int64_t> copy_count;
};

// Keeps every record (thread-safe).
class TimingCollector : public StageObserver {
 public:
  void on_stage_begin(int stage, int64_t request) override;
  void on_stage_end(const StageRecord& record) override;

  std::vector<StageRecord> records() const;   // in arrival order
  std::vector<StageSummary> summary() const;  // one per stage, by stage index
  void clear();
  // The records as a Chrome trace (chrome://tracing, Perfetto): one row per stage and lane.
  std::string chrome_trace() const;

 private:
  mutable std::mutex mutex_;
  std::vector<StageRecord> records_;
};

}  // namespace onnxpipe
