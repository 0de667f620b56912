#pragma once
// What each pipeline stage did for each request (timings with the seed's names, copies, timestamps) and one record per
// request from submission to answer. Delivered to observers (called from the stage workers); TimingCollector is the
// built-in one. Every timestamp is in microseconds on one steady clock, counted from the pipeline's start
// (Pipeline::now_us()).
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
  int64_t request = 0;  // the request's id (Ticket::id)
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
  // A stage on another rank (run is its run there): the bytes of the request's hop there and back, and the time the
  // hop took (the round trip less the run).
  int rank = 0;
  int64_t hop_bytes = 0;
  double hop_us = 0;
  double t_wait = 0;   // started waiting (possibly before the request was submitted)
  double t_begin = 0;  // got the request
  double t_end = 0;    // done with it
  bool failed = false;
};

// One request from submission to answer: submitted <= admitted <= each stage's t_begin <= t_end <= answered.
struct RequestRecord {
  int64_t id = 0;                   // Ticket::id: 0, 1, 2 ... in submission order
  double submitted = 0;             // submit() was called
  double admitted = 0;              // past max_inflight, queued for the first stage
  double answered = 0;              // the answer (or the failure) was handed to the future
  bool failed = false;              // the future holds an Error
  std::vector<StageRecord> stages;  // the stages it went through, in order (up to the one that failed)
  // The latency of a request, everywhere onnxpipe reports one: from admission to answer (the time spent waiting for
  // a free slot under max_inflight is back-pressure, not latency).
  double latency_us() const { return answered - admitted; }
};

// Observers see every stage's work and every request's end (taskflow's ObserverInterface is the model). Called on
// the stage workers' threads: implementations must be thread-safe, must not throw, and should be quick (a slow one
// slows the stage). A request's record is delivered before its future is ready.
class StageObserver {
 public:
  virtual ~StageObserver() = default;
  virtual void on_stage_begin(int /*stage*/, int64_t /*request*/) {}
  virtual void on_stage_end(const StageRecord& /*record*/) {}
  virtual void on_request_done(const RequestRecord& /*record*/) {}
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
  int rank = 0;
  double hop_bytes = 0, hop = 0;           // means over the requests: bytes to another rank and back, microseconds
  std::map<CopyPath, int64_t> copy_bytes;  // in and out, by path
  std::map<CopyPath, int64_t> copy_count;
};

// Keeps every stage record and every request record (thread-safe).
class TimingCollector : public StageObserver {
 public:
  void on_stage_end(const StageRecord& record) override;
  void on_request_done(const RequestRecord& record) override;

  std::vector<StageRecord> records() const;     // in arrival order
  std::vector<RequestRecord> requests() const;  // by id
  std::vector<StageSummary> summary() const;    // one per stage, by stage index
  void clear();                                 // forgets both

 private:
  mutable std::mutex mutex_;
  std::vector<StageRecord> records_;
  std::vector<RequestRecord> requests_;
};

}  // namespace onnxpipe
