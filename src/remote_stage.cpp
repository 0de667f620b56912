#include "remote_stage.h"

#include <chrono>
#include <map>

namespace onnxpipe::detail {
namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

}  // namespace

RemoteStage::RemoteStage(Transport& transport, int stage, int rank)
    : transport_(transport), stage_(stage), rank_(rank) {}

std::vector<Value> RemoteStage::run(int64_t request, const std::vector<std::string>& input_names,
                                    const std::vector<const Value*>& inputs,
                                    const std::vector<std::string>& output_names, HopRecord* record) {
  if (cancelled_) throw Error(ErrorCode::CANCELLED, "cancelled");
  Header header;
  header.request = request;
  header.stage = stage_;
  std::vector<const void*> data;
  int64_t bytes = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = *inputs[i];
    if (v.dtype() == DType::STRING) {
      throw Error(ErrorCode::USAGE, "value '" + input_names[i] + "': string tensors cannot cross ranks");
    }
    if (v.device_id() >= 0) {
      throw Error(ErrorCode::INTERNAL, "value '" + input_names[i] + "' is in device memory on its way to a rank");
    }
    header.values.push_back({input_names[i], v.dtype(), v.shape(), v.byte_size()});
    data.push_back(v.data());
    bytes += v.byte_size();
  }
  const auto start = Clock::now();
  transport_.send(rank_, stage_channel(stage_), header, data);
  std::vector<Tensor> received;
  const Header reply = transport_.receive(rank_, stage_channel(stage_), received, &cancelled_);
  const auto end = Clock::now();
  if (reply.request != request || reply.stage != stage_) {
    throw Error(ErrorCode::INTERNAL, "rank " + std::to_string(rank_) + " answered request " +
                                         std::to_string(reply.request) + " of stage " + std::to_string(reply.stage));
  }
  if (reply.kind == MessageKind::FAILED) throw Error(reply.code, reply.text);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < reply.values.size(); ++i) {
    index[reply.values[i].name] = i;
    bytes += reply.values[i].bytes;
  }
  std::vector<Value> outputs;
  for (const std::string& name : output_names) {
    const auto it = index.find(name);
    if (it == index.end()) {
      throw Error(ErrorCode::INTERNAL, "rank " + std::to_string(rank_) + " did not send output '" + name + "'");
    }
    outputs.push_back(Value::from_tensor(std::move(received[it->second])));
  }
  if (record) {
    record->bytes = bytes;
    record->run_us = reply.run_us;
    record->us = std::max(0.0, micros(start, end) - reply.run_us);
  }
  return outputs;
}

void RemoteStage::cancel() { cancelled_ = true; }

void RemoteStage::close() {
  if (!transport_.lost(rank_).empty()) return;
  try {
    Header close;
    close.kind = MessageKind::CLOSE;
    close.stage = stage_;
    transport_.send(rank_, stage_channel(stage_), close, {});
    std::vector<Tensor> dropped;
    while (transport_.receive(rank_, stage_channel(stage_), dropped).kind != MessageKind::CLOSE) {
    }
  } catch (const Error&) {
    // The rank was lost meanwhile: nothing is left to close, and the session aborts the job at its end.
  }
}

void send_control(Transport& transport, MessageKind kind) {
  Header control;
  control.kind = kind;
  for (int r = 1; r < transport.size(); ++r) {
    if (!transport.lost(r).empty()) continue;
    try {
      transport.send(r, kControlChannel, control, {});
    } catch (const Error&) {
      // Lost meanwhile.
    }
  }
}

}  // namespace onnxpipe::detail
