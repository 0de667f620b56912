#pragma once
// Rank 0's side of a pipeline stage placed on another rank: the stage's worker thread on rank 0 sends each request's
// inputs there (one message: header, then every value's bytes in place) and waits for its outputs or its failure.
// Replies come back on the stage's own channel in request order. Thread contract: run() and close() from the stage's
// worker (one at a time), cancel() from any thread.
#include <atomic>
#include <string>
#include <vector>

#include "runtime.h"
#include "transport.h"

namespace onnxpipe::detail {

// One request's trip to the stage's rank and back.
struct HopRecord {
  int64_t bytes = 0;  // sent and received
  double us = 0;      // the round trip less the run there: transfer and waiting on the wire
  double run_us = 0;  // the run there (inputs into its session's memory included)
};

class RemoteStage {
 public:
  RemoteStage(Transport& transport, int stage, int rank);

  int rank() const { return rank_; }
  const std::string& host() const { return transport_.host(rank_); }

  // Runs request `request` there: `inputs[i]` (host memory) feeds input_names[i]; the outputs come back as host
  // values in output_names order. Throws the stage's Error (its message as raised there), Error(RUNTIME) when the
  // rank is lost, Error(CANCELLED) after cancel().
  std::vector<Value> run(int64_t request, const std::vector<std::string>& input_names,
                         const std::vector<const Value*>& inputs, const std::vector<std::string>& output_names,
                         HopRecord* record);
  void cancel();  // ends a wait in progress and every later one
  // At shutdown, once no run is in progress: closes the stage's channel (its last replies are read and dropped).
  void close();

 private:
  Transport& transport_;
  const int stage_;
  const int rank_;
  std::atomic<bool> cancelled_{false};
};

// Rank 0: `kind` (STOP or CLOSE) on the control channel of every other rank still alive.
void send_control(Transport& transport, MessageKind kind);

}  // namespace onnxpipe::detail
