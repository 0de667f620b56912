#pragma once
// Messages between the processes (ranks) of a pipeline whose stages run on several machines: one request's values
// (a self-describing header, then every value's bytes in one exchange) and control messages. The pipeline code sees
// only this interface; transport_mpi is its MPI implementation, the only file pair that includes mpi.h.
//
// Thread contract: every method may be called from any thread at once. Messages sent to one peer on one channel
// arrive in the order they were sent (MPI's non-overtaking rule); channels are independent of each other.
// Liveness: every rank sends every other rank heartbeats (a stage's rank talks to rank 0 and to the ranks of the stages
// next to it); a peer not heard from within the timeout is lost for good, and every send to it or receive from it,
// waiting or not, then throws Error(RUNTIME) naming it.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe::detail {

// What a message is. VALUES: a request's values (to a stage, or its outputs back); FAILED: the stage failed on that
// request; STOP: cancel the runs in progress (the pipeline closes); CLOSE: this channel's last message.
enum class MessageKind : int32_t { VALUES, FAILED, STOP, CLOSE };

struct ValueHeader {
  std::string name;
  DType dtype = DType::UNDEFINED;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
};

// Everything but the values' bytes. Shapes travel with every message, so they may change from request to request.
struct Header {
  MessageKind kind = MessageKind::VALUES;
  int64_t request = -1;
  int stage = -1;
  double run_us = 0;                    // an answer from a stage: the time of its run there,
  double wire_us = 0;                   // of receiving the request's bytes there (header to last byte),
  int64_t bytes_in = 0;                 // and how many they were
  ErrorCode code = ErrorCode::RUNTIME;  // FAILED
  std::string text;                     // FAILED: the stage's error message
  std::vector<ValueHeader> values;
};

std::string encode_header(const Header& header);
Header decode_header(const std::string& bytes);  // Error(INTERNAL) when the bytes are not a header

// The value bytes (headers left out) this rank sent to and received from each rank, from the start.
struct Traffic {
  std::vector<int64_t> sent;
  std::vector<int64_t> received;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& host(int rank) const = 0;  // the processor name of each rank, exchanged at the start
  virtual bool cuda_aware() const = 0;                  // device pointers may be sent as they are
  virtual std::string cuda_support() const = 0;         // how that was found out, for reports

  // Sends header.values (data[i] holds header.values[i].bytes bytes, read in place: no copy). Blocks until the
  // bytes may be reused. Error(RUNTIME) when `peer` is lost.
  virtual void send(int peer, int channel, const Header& header, const std::vector<const void*>& data) = 0;
  // The next message from `peer` on `channel`, its values received straight into `values` (one tensor per header
  // value). Error(RUNTIME) when `peer` is lost; Error(CANCELLED) when *cancelled turns true while waiting.
  // *data_us: from the header's arrival to the last byte.
  virtual Header receive(int peer, int channel, std::vector<Tensor>& values,
                         const std::atomic<bool>* cancelled = nullptr, double* data_us = nullptr) = 0;
  // Why `peer` is lost ("rank 2 (host) sent no heartbeat for 3.0 s"), or empty while it is alive.
  virtual std::string lost(int peer) const = 0;
  virtual bool any_lost() const = 0;
  virtual Traffic traffic() const = 0;
  // This rank leaves with an error: closing the transport ends the whole job instead of waiting for the others.
  virtual void leave_failed() = 0;
};

// The transport of the process's rank session (onnxpipe/ranks.h), or nullptr when there is none.
Transport* current_transport();
void set_current_transport(Transport* transport);

// Channel 0 carries each rank's control messages; stage k has channel k + 1.
constexpr int kControlChannel = 0;
inline int stage_channel(int stage) { return stage + 1; }

}  // namespace onnxpipe::detail
