#include "rank_worker.h"

#include <chrono>
#include <map>
#include <thread>

#include "blocking_queue.h"

namespace onnxpipe::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Runs one request; the reply to send, whose values point into `outputs`.
Header run_request(ServedStage& stage, RunControl& control, const Header& request, std::vector<Tensor>& tensors,
                   std::vector<Value>& outputs, std::vector<const void*>& data) {
  Header reply;
  reply.request = request.request;
  reply.stage = stage.index;
  const auto start = Clock::now();
  try {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < request.values.size(); ++i) index[request.values[i].name] = i;
    std::vector<Value> inputs;
    inputs.reserve(stage.inputs.size());
    std::vector<const Value*> in;
    for (const std::string& name : stage.inputs) {
      const auto it = index.find(name);
      if (it == index.end()) throw Error(ErrorCode::INTERNAL, "rank 0 did not send value '" + name + "'");
      inputs.push_back(stage.session->make_input(std::move(tensors[it->second])));
      in.push_back(&inputs.back());
    }
    const std::vector<bool> to_host(stage.outputs.size(), true);
    outputs = stage.session->run_values(stage.inputs, in, stage.outputs, to_host, &control);
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].dtype() == DType::STRING) {
        throw Error(ErrorCode::USAGE, "value '" + stage.outputs[i] + "': string tensors cannot cross ranks");
      }
      reply.values.push_back({stage.outputs[i], outputs[i].dtype(), outputs[i].shape(), outputs[i].byte_size()});
      data.push_back(outputs[i].data());
    }
  } catch (const Error& e) {
    // Rank 0 attributes the failure to the stage (with its rank and host): send the message without that label.
    const std::string label = stage.context.label() + ": ";
    const std::string what = e.what();
    reply.kind = MessageKind::FAILED;
    reply.code = e.code();
    reply.text = what.compare(0, label.size(), label) == 0 ? what.substr(label.size()) : what;
    reply.values.clear();
    data.clear();
  } catch (const std::exception& e) {
    reply.kind = MessageKind::FAILED;
    reply.text = e.what();
    reply.values.clear();
    data.clear();
  }
  reply.run_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  return reply;
}

// A request received ahead, or why receiving ended.
struct Arrival {
  Header header;
  std::vector<Tensor> tensors;
  double wire_us = 0;
  std::exception_ptr error;
};

// The stage's channel read one request ahead on a thread of its own, so that the next request's bytes travel while
// this one runs.
void serve_stage(Transport& transport, ServedStage& stage, RunControl& control) {
  const int channel = stage_channel(stage.index);
  BlockingQueue<Arrival> arrivals(2);
  std::thread receiver([&] {
    while (true) {
      Arrival a;
      try {
        a.header = transport.receive(0, channel, a.tensors, nullptr, &a.wire_us);
      } catch (...) {
        a.error = std::current_exception();
      }
      const bool last = a.error || a.header.kind == MessageKind::CLOSE;
      if (!arrivals.push(a) || last) return;
    }
  });
  std::exception_ptr error;
  try {
    pin_current_thread(stage.session->device());  // as a stage's worker is in one process
    Arrival a;
    while (arrivals.pop(a)) {
      if (a.error) std::rethrow_exception(a.error);
      if (a.header.kind == MessageKind::CLOSE) {
        transport.send(0, channel, a.header, {});  // the last message on this channel: rank 0 waits for it
        break;
      }
      std::vector<Value> outputs;
      std::vector<const void*> data;
      Header reply = run_request(stage, control, a.header, a.tensors, outputs, data);
      reply.wire_us = a.wire_us;
      for (const ValueHeader& v : a.header.values) reply.bytes_in += v.bytes;
      transport.send(0, channel, reply, data);
    }
  } catch (...) {
    error = std::current_exception();
  }
  arrivals.close();  // the receiver ends at CLOSE, at an error, or here
  receiver.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

ServedStage load_served_stage(const PieceDesc& piece, const std::string& path, const SessionConfig& config) {
  ServedStage stage;
  stage.index = piece.index;
  stage.context = *config.stage;
  stage.session = std::make_unique<Session>(path, config);
  for (const ValueDesc& in : piece.inputs) stage.inputs.push_back(in.name);
  for (const ValueDesc& out : piece.outputs) stage.outputs.push_back(out.name);
  return stage;
}

StageInfo served_stage_info(const ServedStage& stage, const Transport& transport) {
  StageInfo info;
  info.stage = stage.index;
  info.piece = stage.context.piece;
  info.device = stage.session->device().to_string();
  info.rank = transport.rank();
  info.host = transport.host(transport.rank());
  info.inputs = stage.session->inputs();
  info.outputs = stage.session->outputs();
  info.memory = stage.session->memory_stats();
  return info;
}

void serve_stages(Transport& transport, std::vector<ServedStage>& stages) {
  std::vector<std::unique_ptr<RunControl>> controls;
  std::vector<std::exception_ptr> errors(stages.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stages.size(); ++i) {
    controls.push_back(std::make_unique<RunControl>());
    threads.emplace_back([&, i] {
      try {
        serve_stage(transport, stages[i], *controls[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  std::exception_ptr error;
  try {
    while (true) {
      std::vector<Tensor> none;
      const Header control = transport.receive(0, kControlChannel, none);
      if (control.kind == MessageKind::CLOSE) break;
      if (control.kind == MessageKind::STOP) {
        for (auto& c : controls) c->terminate();
      }
    }
  } catch (...) {
    error = std::current_exception();  // rank 0 lost: the stage threads see it too, within the same bound
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (!error) error = e;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace onnxpipe::detail
