#include "remote_stage.h"

#include <map>

namespace onnxpipe::detail {

StageContext remote_context(const Transport& transport, int stage, const std::string& piece, const std::string& device,
                            int rank) {
  return StageContext{"stage", stage, piece, device + ", rank " + std::to_string(rank) + " on " + transport.host(rank)};
}

void check_placement(const std::vector<int>& ranks, int parts, const Transport* transport) {
  if (!transport) throw Error(ErrorCode::USAGE, "stages placed on ranks, but this process has no rank session");
  if (static_cast<int>(ranks.size()) != parts) {
    throw Error(ErrorCode::USAGE, std::to_string(ranks.size()) + " ranks for a plan of " + std::to_string(parts) +
                                      " pieces: give one rank per piece");
  }
  for (int r : ranks) {
    if (r < 0 || r >= transport->size()) {
      throw Error(ErrorCode::USAGE,
                  "rank " + std::to_string(r) + ": the job has ranks 0.." + std::to_string(transport->size() - 1));
    }
  }
}

RemoteStage::RemoteStage(Transport& transport, int stage, int rank)
    : transport_(transport), stage_(stage), rank_(rank) {}

void RemoteStage::send(int64_t request, const std::vector<std::string>& input_names,
                       const std::vector<const Value*>& inputs) {
  if (cancelled_) throw Error(ErrorCode::CANCELLED, "cancelled");
  Header header;
  header.request = request;
  header.stage = stage_;
  std::vector<const void*> data;
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
  }
  transport_.send(rank_, stage_channel(stage_), header, data);
}

std::vector<Value> RemoteStage::receive(int64_t request, const std::vector<std::string>& output_names,
                                        HopRecord* record) {
  std::vector<Tensor> received;
  double data_us = 0;
  const Header reply = transport_.receive(rank_, stage_channel(stage_), received, &cancelled_, &data_us);
  if (reply.request != request || reply.stage != stage_) {
    throw Error(ErrorCode::INTERNAL, "rank " + std::to_string(rank_) + " answered request " +
                                         std::to_string(reply.request) + " of stage " + std::to_string(reply.stage) +
                                         " for request " + std::to_string(request));
  }
  if (reply.kind == MessageKind::FAILED) throw Error(reply.code, reply.text);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < reply.values.size(); ++i) index[reply.values[i].name] = i;
  std::vector<Value> outputs;
  for (const std::string& name : output_names) {
    const auto it = index.find(name);
    if (it == index.end()) {
      throw Error(ErrorCode::INTERNAL, "rank " + std::to_string(rank_) + " did not send output '" + name + "'");
    }
    outputs.push_back(Value::from_tensor(std::move(received[it->second])));
  }
  if (record) {
    record->bytes = reply.bytes_in;
    for (const ValueHeader& v : reply.values) record->bytes += v.bytes;
    record->run_us = reply.run_us;
    record->us = reply.wire_us + data_us;
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
