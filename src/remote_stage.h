#pragma once
// Rank 0's side of a pipeline stage placed on another rank: the stage's worker thread on rank 0 sends each request's
// inputs there (one message: header, then every value's bytes in place) and its receiver thread collects the outputs
// or the failure, which come back on the stage's own channel in request order: the next request travels while one
// runs there. Thread contract: send() from one thread, receive() from one other, cancel() from any, close() once
// neither runs.
#include <atomic>
#include <string>
#include <vector>

#include "runtime.h"
#include "transport.h"

namespace onnxpipe::detail {

// One request's trip to the stage's rank and back.
struct HopRecord {
  int64_t bytes = 0;  // sent and received
  double us = 0;      // on the wire: from each message's header to its last byte, there and back
  double run_us = 0;  // the run there (inputs into its session's memory included)
};

// A stage placed on `rank`, as its errors name it: "stage 1 (piece_1.onnx, cpu:1, rank 1 on host)".
StageContext remote_context(const Transport& transport, int stage, const std::string& piece, const std::string& device,
                            int rank);

// Checks a placement (stage k on ranks[k]) against a plan of `parts` pieces and this process's rank session.
void check_placement(const std::vector<int>& ranks, int parts, const Transport* transport);

class RemoteStage {
 public:
  RemoteStage(Transport& transport, int stage, int rank);

  int rank() const { return rank_; }
  const std::string& host() const { return transport_.host(rank_); }

  // Sends request `request` there: `inputs[i]` (host memory) feeds input_names[i]. Returns once the bytes may be
  // reused. Error(RUNTIME) when the rank is lost.
  void send(int64_t request, const std::vector<std::string>& input_names, const std::vector<const Value*>& inputs);
  // The answer to the oldest request sent and not yet received: its outputs as host values in output_names order.
  // Throws the stage's Error (its message as raised there), Error(RUNTIME) when the rank is lost, Error(CANCELLED)
  // after cancel().
  std::vector<Value> receive(int64_t request, const std::vector<std::string>& output_names, HopRecord* record);
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
