#include "rank_worker.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "blocking_queue.h"

namespace onnxpipe::detail {
namespace {

using Clock = std::chrono::steady_clock;

// A message received ahead of its run, or why receiving ended.
struct Arrival {
  Header header;
  std::vector<Tensor> tensors;
  double wire_us = 0;
  std::exception_ptr error;
};

// Runs one request (its values: `arrival`'s); the reply to rank 0 and the message to the next stage's rank, whose
// values point into `outputs`.
void run_request(ServedStage& stage, RunControl& control, Arrival& arrival, std::vector<Value>& outputs, Header& reply,
                 std::vector<const void*>& reply_data, Header& onward, std::vector<const void*>& onward_data) {
  reply.request = onward.request = arrival.header.request;
  reply.stage = onward.stage = stage.index;
  const auto start = Clock::now();
  try {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < arrival.header.values.size(); ++i) index[arrival.header.values[i].name] = i;
    std::vector<Value> inputs;
    inputs.reserve(stage.inputs.size());
    std::vector<const Value*> in;
    for (const std::string& name : stage.inputs) {
      const auto it = index.find(name);
      if (it == index.end()) throw Error(ErrorCode::INTERNAL, "value '" + name + "' was not sent here");
      inputs.push_back(stage.session->make_input(std::move(arrival.tensors[it->second])));
      in.push_back(&inputs.back());
    }
    const std::vector<bool> to_host(stage.outputs.size(), true);
    outputs = stage.session->run_values(stage.inputs, in, stage.outputs, to_host, &control);
    const auto listed = [](const std::vector<std::string>& names, const std::string& name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].dtype() == DType::STRING) {
        throw Error(ErrorCode::USAGE, "value '" + stage.outputs[i] + "': string tensors cannot cross ranks");
      }
      const ValueHeader value{stage.outputs[i], outputs[i].dtype(), outputs[i].shape(), outputs[i].byte_size()};
      if (listed(stage.routes.to_client, value.name)) {
        reply.values.push_back(value);
        reply_data.push_back(outputs[i].data());
      }
      if (listed(stage.routes.to_next, value.name)) {
        onward.values.push_back(value);
        onward_data.push_back(outputs[i].data());
      }
    }
  } catch (const Error& e) {
    // Rank 0 attributes the failure to the stage (with its rank and host): send the message without that label.
    const std::string label = stage.context.label() + ": ";
    const std::string what = e.what();
    reply.kind = MessageKind::FAILED;
    reply.code = e.code();
    reply.text = what.compare(0, label.size(), label) == 0 ? what.substr(label.size()) : what;
  } catch (const std::exception& e) {
    reply.kind = MessageKind::FAILED;
    reply.text = e.what();
  }
  if (reply.kind == MessageKind::FAILED) {
    reply.values.clear();
    reply_data.clear();
  }
  reply.run_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Reads `peer`'s messages on `channel` into `arrivals` on a thread of its own until CLOSE, an error or `cancelled`.
std::thread read_ahead(Transport& transport, int peer, int channel, BlockingQueue<Arrival>& arrivals,
                       const std::atomic<bool>* cancelled) {
  return std::thread([&transport, peer, channel, &arrivals, cancelled] {
    while (true) {
      Arrival a;
      try {
        a.header = transport.receive(peer, channel, a.tensors, cancelled, &a.wire_us);
      } catch (...) {
        a.error = std::current_exception();
      }
      const bool last = a.error || a.header.kind == MessageKind::CLOSE;
      if (!arrivals.push(a) || last) return;
    }
  });
}

// Adds to `arrival` the values the previous stage's rank sent for its request: requests before it failed or were
// cancelled after that stage, and their values are dropped. An error once that channel ended.
void add_previous(BlockingQueue<Arrival>& previous, std::exception_ptr& ended, Arrival& arrival) {
  const int64_t request = arrival.header.request;
  Arrival p;
  while (!ended) {
    if (!previous.pop(p)) {
      ended = std::make_exception_ptr(Error(ErrorCode::INTERNAL, "the previous stage's channel closed"));
    } else if (p.error) {
      ended = p.error;
    } else if (p.header.kind == MessageKind::CLOSE) {
      ended = std::make_exception_ptr(Error(ErrorCode::INTERNAL, "the previous stage's channel closed"));
    } else if (p.header.request == request) {
      for (size_t i = 0; i < p.tensors.size(); ++i) {
        arrival.header.values.push_back(p.header.values[i]);
        arrival.tensors.push_back(std::move(p.tensors[i]));
      }
      arrival.wire_us += p.wire_us;
      return;
    } else if (p.header.request > request) {
      ended = std::make_exception_ptr(Error(ErrorCode::INTERNAL, "the previous stage sent request " +
                                                                     std::to_string(p.header.request) + " before " +
                                                                     std::to_string(request)));
    }
  }
  std::rethrow_exception(ended);
}

// The stage's channel read one request ahead on a thread of its own, so that the next request's bytes travel while
// this one runs; so is the channel from the previous stage's rank when values come straight from there.
void serve_stage(Transport& transport, ServedStage& stage, RunControl& control) {
  const int channel = stage_channel(stage.index);
  const bool from_previous = !stage.routes.from_previous.empty();
  const bool to_next = !stage.routes.to_next.empty();
  std::atomic<bool> stop_reading{false};
  BlockingQueue<Arrival> arrivals(2);
  // Unbounded in effect: credits bound the requests in flight, and the previous rank's sends must never wait here.
  BlockingQueue<Arrival> previous(size_t(1) << 20);
  std::thread receiver = read_ahead(transport, 0, channel, arrivals, nullptr);
  std::thread previous_reader;
  if (from_previous) {
    previous_reader = read_ahead(transport, stage.previous_rank, next_stage_channel(stage.index - 1, stage.parts),
                                 previous, &stop_reading);
  }
  std::exception_ptr error, previous_ended;
  try {
    pin_current_thread(stage.session->device());  // as a stage's worker is in one process
    Arrival a;
    while (arrivals.pop(a)) {
      if (a.error) std::rethrow_exception(a.error);
      if (a.header.kind == MessageKind::CLOSE) {
        // The next stage's rank reads this channel to its CLOSE; rank 0 waits for the one on its own.
        if (to_next && transport.lost(stage.next_rank).empty()) {
          transport.send(stage.next_rank, next_stage_channel(stage.index, stage.parts), a.header, {});
        }
        transport.send(0, channel, a.header, {});
        break;
      }
      std::vector<Value> outputs;
      Header reply, onward;
      std::vector<const void*> reply_data, onward_data;
      try {
        if (from_previous) add_previous(previous, previous_ended, a);
        run_request(stage, control, a, outputs, reply, reply_data, onward, onward_data);
      } catch (const Error& e) {
        reply.request = a.header.request;
        reply.stage = stage.index;
        reply.kind = MessageKind::FAILED;
        reply.code = e.code();
        reply.text = e.what();
      }
      reply.wire_us = a.wire_us;  // from rank 0 and from the previous stage's rank
      for (const ValueHeader& v : a.header.values) reply.bytes_in += v.bytes;
      transport.send(0, channel, reply, reply_data);
      if (to_next && reply.kind == MessageKind::VALUES) {
        try {
          transport.send(stage.next_rank, next_stage_channel(stage.index, stage.parts), onward, onward_data);
        } catch (const Error&) {
          // The next stage's rank is lost: rank 0 fails what needs it.
        }
      }
    }
  } catch (...) {
    error = std::current_exception();
  }
  arrivals.close();  // the receiver ends at CLOSE, at an error, or here
  receiver.join();
  if (previous_reader.joinable()) {
    if (error) stop_reading = true;  // else the previous stage's CLOSE ends it (rank 0 closes the stages in order)
    previous.close();
    previous_reader.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

ServedStage load_served_stage(const PieceDesc& piece, const std::string& path, const SessionConfig& config,
                              const std::vector<StageRoutes>& routes) {
  ServedStage stage;
  stage.index = piece.index;
  stage.parts = static_cast<int>(routes.size());
  stage.routes = routes.at(static_cast<size_t>(piece.index));
  if (piece.index > 0) stage.previous_rank = routes.at(static_cast<size_t>(piece.index - 1)).rank;
  if (piece.index + 1 < stage.parts) stage.next_rank = routes.at(static_cast<size_t>(piece.index + 1)).rank;
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
