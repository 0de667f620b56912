#include "onnxpipe/pipeline.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include "batching.h"
#include "blocking_queue.h"
#include "device_split.h"
#include "enum_names.h"
#include "input_check.h"
#include "onnxpipe/error.h"
#include "onnxpipe/placement.h"
#include "placement.h"
#include "rank_routes.h"
#include "rank_worker.h"
#include "remote_stage.h"
#include "runtime.h"
#include "transport.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;
using detail::BlockingQueue;
using detail::Gate;
using detail::RunControl;
using detail::Session;
using detail::Value;
using Clock = std::chrono::steady_clock;

double micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// One request on its way through the stages: the values later stages still read travel with it.
struct Request {
  RequestRecord record;  // its id, and what happened to it so far
  std::promise<TensorMap> promise;
  TensorMap host_inputs;                // model inputs no stage has taken yet
  std::map<std::string, Value> values;  // values a later stage reads
  TensorMap outputs;                    // model outputs, on the host
};
using RequestPtr = std::unique_ptr<Request>;

// A request sent to a stage on another rank, waiting for its answer (or failed sending).
struct Pending {
  RequestPtr request;
  StageRecord record;
  std::exception_ptr error;
};

// What a stage reads, produces, keeps and drops; fixed when the pipeline is built.
struct Wiring {
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<bool> to_host;       // CUDA: the output leaves the device (model output, or a CPU stage reads it)
  std::vector<bool> model_output;  // answered to the caller
  std::vector<bool> keep;          // a later stage reads it
  std::vector<std::string> drop;   // values no later stage reads
};

struct Stage {
  int index = 0;
  int lane = 0;
  std::string piece;  // file name, for messages
  DeviceSpec device;
  std::string device_text;
  StageContext context;  // what its errors name: "stage 1 (piece_1.onnx, cpu:1)"
  Wiring wiring;
  std::future<std::unique_ptr<Session>> loading;  // until finish_loading() moves it into `session`
  std::unique_ptr<Session> session;
  std::unique_ptr<detail::RemoteStage> remote;   // instead of a session: the stage runs on another rank
  std::unique_ptr<BlockingQueue<Pending>> sent;  // remote: sent, in order, for `receiver` to collect
  std::thread receiver;
  std::vector<ValueDesc> declared_inputs;  // a remote stage's, from the plan
  std::vector<ValueDesc> declared_outputs;
  RunControl control;
  std::unique_ptr<BlockingQueue<RequestPtr>> queue;
  Stage* next = nullptr;
  std::thread worker;
  bool seen_first = false;  // worker only
};

// What piece k reads, produces, keeps and drops, from the plan's crossing values and their readers (ascending): it
// drops a value it reads last, keeps one a later stage reads, and brings one to the host for the caller or a CPU
// reader or a reader on another rank. A piece output the plan does not list is only a model output. A stage on
// another rank (`routes`) is sent only what rank 0 holds and answers only what rank 0 needs.
Wiring wiring_of(const PieceDesc& piece, const std::map<std::string, const CrossingValue*>& crossing,
                 const std::set<std::string>& model_outputs, const std::vector<DeviceSpec>& devices,
                 const std::vector<int>& ranks, const detail::StageRoutes* routes) {
  const int k = piece.index;
  const auto via_client = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  Wiring w;
  for (const ValueDesc& in : piece.inputs) {
    if (crossing.at(in.name)->consumers.back() == k) w.drop.push_back(in.name);
    if (!routes || via_client(routes->from_client, in.name)) w.inputs.push_back(in.name);
  }
  for (const ValueDesc& out : piece.outputs) {
    if (routes && !via_client(routes->to_client, out.name)) continue;
    const auto it = crossing.find(out.name);
    const std::vector<int> readers = it == crossing.end() ? std::vector<int>{} : it->second->consumers;
    const bool cpu_reader =
        std::any_of(readers.begin(), readers.end(), [&](int c) { return c > k && !devices[c].is_cuda(); }) ||
        std::any_of(readers.begin(), readers.end(), [&](int c) { return c > k && ranks[c] != ranks[k]; });
    const bool model_output = model_outputs.count(out.name) > 0;
    w.outputs.push_back(out.name);
    w.model_output.push_back(model_output);
    w.keep.push_back(!readers.empty() && readers.back() > k);
    w.to_host.push_back(!devices[k].is_cuda() || model_output || cpu_reader);
  }
  return w;
}

void merge_copy(CopyStat& into, const CopyStat& more) {
  into.path = std::max(into.path, more.path);
  into.bytes += more.bytes;
  into.us += more.us;
}

}  // namespace

// How often a submit held by back-pressure asks whether it was interrupted.
constexpr auto kInterruptPoll = std::chrono::milliseconds(20);

constexpr std::array<const char*, 3> kModeNames = {"sequence", "pipeline", "replicas"};

PipelineMode pipeline_mode_from_name(const std::string& name) {
  if (auto mode = detail::enum_from_name<PipelineMode>(kModeNames, name)) return *mode;
  throw Error(ErrorCode::USAGE, "mode '" + name + "': expected " + detail::enum_names_text(kModeNames));
}

const char* pipeline_mode_name(PipelineMode mode) { return detail::enum_name(kModeNames, mode); }

struct Pipeline::Impl {
  PipelineOptions options;
  std::vector<ValueDesc> inputs;
  std::vector<ValueDesc> outputs;
  std::vector<std::string> passthrough;  // model outputs that are model inputs: answered from the inputs
  std::vector<std::vector<std::unique_ptr<Stage>>> lanes;
  Gate gate;
  std::mutex submit_mutex;  // request ids follow the order of the first queue
  int64_t next_id = 0;
  std::atomic<bool> stopping{false};
  Clock::time_point epoch = Clock::now();
  TimingCollector collector;
  std::vector<StageObserver*> observers;
  std::optional<detail::DeviceSplit> split;  // a split made on the fly, removed with the pipeline
  detail::Transport* transport = nullptr;    // several ranks: this process's rank session
  int rank = 0;
  int parts = 0;
  std::vector<detail::ServedStage> served;  // a rank other than 0: its stages

  explicit Impl(PipelineOptions opts) : options(std::move(opts)), gate(options.max_inflight) {
    for (const auto& observer : options.observers) {
      if (observer) observers.push_back(observer.get());
    }
    if (options.collect_timings) observers.push_back(&collector);
  }

  ~Impl() { shutdown(); }

  void shutdown() {
    stopping = true;
    gate.close();
    const bool ranked = transport && rank == 0 && !options.ranks.empty();
    if (ranked) detail::send_control(*transport, detail::MessageKind::STOP);  // their runs in progress end too
    for (auto& lane : lanes) {
      for (auto& stage : lane) {
        if (stage->loading.valid()) stage->loading.wait();  // a failed build: sessions still loading from `split`
        stage->control.terminate();
        if (stage->remote) stage->remote->cancel();
        stage->queue->close();
      }
    }
    for (auto& lane : lanes) {
      for (auto& stage : lane) {
        if (stage->worker.joinable()) stage->worker.join();
        if (!stage->remote) continue;
        stage->sent->close();
        if (stage->receiver.joinable()) stage->receiver.join();
        stage->remote->close();
      }
    }
    if (ranked) detail::send_control(*transport, detail::MessageKind::CLOSE);
  }

  detail::SessionConfig session_config(const DeviceSpec& device, const std::string& text, const StageContext& context,
                                       const StageMemory* planned) const {
    detail::SessionConfig config;
    config.device = device.to_string();
    config.optimization_level = options.optimization_level;
    config.stage = context;
    config.session_options = options.all_devices.session_options;
    config.provider_options =
        device.is_cuda() ? options.all_devices.provider_options : std::map<std::string, std::string>{};
    for (const std::string& key : {text, device.to_string()}) {
      const auto it = options.per_device.find(key);
      if (it == options.per_device.end()) continue;
      for (const auto& [k, v] : it->second.session_options) config.session_options[k] = v;
      for (const auto& [k, v] : it->second.provider_options) config.provider_options[k] = v;
      break;
    }
    if (device.is_cuda() && planned)
      config.provider_options = detail::planned_provider_options(config.provider_options, *planned);
    return config;
  }

  std::unique_ptr<Stage> make_stage(int index, int lane, const std::string& path, const std::string& device_text,
                                    const std::string& kind, const StageMemory* planned = nullptr) {
    auto stage = std::make_unique<Stage>();
    stage->index = index;
    stage->lane = lane;
    stage->piece = fs::path(path).filename().string();
    stage->device = parse_device(device_text);
    stage->device_text = stage->device.to_string();
    stage->context = StageContext{kind, kind == "replica" ? lane : index, stage->piece, stage->device_text};
    // Loaded on the side: ORT reads and prepacks a piece's weights on one core, so the stages load in parallel.
    stage->loading = std::async(std::launch::async,
                                [path, config = session_config(stage->device, device_text, stage->context, planned)] {
                                  return std::make_unique<Session>(path, config);
                                });
    stage->queue = std::make_unique<BlockingQueue<RequestPtr>>(static_cast<size_t>(options.max_inflight));
    return stage;
  }

  void build_from_plan(const std::string& dir) {
    const Plan plan = Plan::load(dir);
    parts = plan.parts();
    std::vector<int> ranks(static_cast<size_t>(parts), 0);
    std::vector<detail::StageRoutes> routes;
    if (!options.ranks.empty()) {
      transport = detail::current_transport();
      detail::check_placement(options.ranks, parts, transport);
      rank = transport->rank();
      ranks = options.ranks;
      routes = detail::rank_routes(plan, ranks);
    }
    std::vector<std::string> devices = options.devices;
    if (devices.size() == 1) devices.assign(plan.parts(), devices[0]);
    if (static_cast<int>(devices.size()) != plan.parts()) {
      throw Error(ErrorCode::USAGE, std::to_string(options.devices.size()) + " devices for a plan of " +
                                        std::to_string(plan.parts()) + " pieces: give one device per piece (or one)");
    }
    inputs = plan.model_inputs;
    outputs = plan.model_outputs;
    // Requests are tensor maps: a sequence may cross between stages (a host value, handed on as is) but not enter or
    // leave the pipeline.
    for (const auto* values : {&inputs, &outputs})
      for (const ValueDesc& value : *values)
        if (value.dtype == DType::UNDEFINED)
          throw Error(ErrorCode::USAGE, std::string(values == &inputs ? "input '" : "output '") + value.name +
                                            "' is not a tensor (a sequence, optional or map): a pipeline takes and "
                                            "returns tensors only");

    std::map<std::string, const CrossingValue*> crossing;
    for (const CrossingValue& v : plan.values) crossing[v.name] = &v;
    std::set<std::string> model_outputs, produced;
    for (const ValueDesc& out : outputs) model_outputs.insert(out.name);
    std::vector<DeviceSpec> specs;
    for (const std::string& text : devices) specs.push_back(parse_device(text));
    // Devices with a capacity, or CUDA ones (their free memory), get the plan checked before any session loads.
    std::vector<StageMemory> planned;
    if (std::any_of(specs.begin(), specs.end(), [](const DeviceSpec& d) { return d.capacity >= 0 || d.is_cuda(); })) {
      PlacementOptions placement;
      placement.devices = specs;
      planned = check_plan_fits(plan, placement);
    }
    auto& lane = lanes.emplace_back();
    for (const PieceDesc& piece : plan.pieces) {
      for (const ValueDesc& out : piece.outputs) produced.insert(out.name);
      const StageMemory* stage_plan = planned.empty() ? nullptr : &planned[piece.index];
      const std::string path = (fs::path(dir) / piece.file).string();
      const int where = ranks[static_cast<size_t>(piece.index)];
      if (rank != 0) {
        const DeviceSpec device = parse_device(devices[piece.index]);
        const StageContext context =
            detail::remote_context(*transport, piece.index, piece.file, device.to_string(), rank);
        if (where == rank)
          served.push_back(detail::load_served_stage(
              piece, path, session_config(device, devices[piece.index], context, stage_plan), routes));
        continue;
      }
      auto stage = where == 0 ? make_stage(piece.index, 0, path, devices[piece.index], "stage", stage_plan)
                              : remote_stage(piece, where, devices[piece.index]);
      stage->wiring =
          wiring_of(piece, crossing, model_outputs, specs, ranks, where == 0 ? nullptr : &routes[piece.index]);
      lane.push_back(std::move(stage));
    }
    for (const ValueDesc& in : inputs) {
      if (model_outputs.count(in.name) && !produced.count(in.name)) passthrough.push_back(in.name);
    }
    finish_loading();
  }

  // Rank 0's stand-in for a stage on another rank.
  std::unique_ptr<Stage> remote_stage(const PieceDesc& piece, int where, const std::string& device_text) {
    auto stage = std::make_unique<Stage>();
    stage->index = piece.index;
    stage->piece = piece.file;
    stage->device = parse_device(device_text);
    stage->device_text = stage->device.to_string();
    stage->context = detail::remote_context(*transport, piece.index, piece.file, stage->device_text, where);
    stage->remote = std::make_unique<detail::RemoteStage>(*transport, piece.index, where);
    stage->declared_inputs = piece.inputs;
    stage->declared_outputs = piece.outputs;
    stage->queue = std::make_unique<BlockingQueue<RequestPtr>>(static_cast<size_t>(options.max_inflight));
    stage->sent = std::make_unique<BlockingQueue<Pending>>(static_cast<size_t>(options.max_inflight));
    return stage;
  }

  // Waits for every stage's session; after all have finished, rethrows the first failure.
  void finish_loading() {
    std::exception_ptr first_error;
    for (auto& lane : lanes) {
      for (auto& stage : lane) {
        if (!stage->loading.valid()) continue;
        try {
          stage->session = stage->loading.get();
        } catch (...) {
          if (!first_error) first_error = std::current_exception();
        }
      }
    }
    if (first_error) std::rethrow_exception(first_error);
  }

  void build_from_model(const std::string& model_path) {
    if (options.mode == PipelineMode::SEQUENCE && options.devices.size() != 1) {
      throw Error(ErrorCode::USAGE, "sequence mode runs on one device, got " + std::to_string(options.devices.size()));
    }
    const bool replicas = options.mode == PipelineMode::REPLICAS;
    for (size_t r = 0; r < options.devices.size(); ++r) {
      lanes.emplace_back().push_back(
          make_stage(0, static_cast<int>(r), model_path, options.devices[r], replicas ? "replica" : "stage"));
    }
    finish_loading();
    inputs = lanes.front().front()->session->inputs();
    outputs = lanes.front().front()->session->outputs();
    for (auto& lane : lanes) {
      Wiring& w = lane.front()->wiring;
      for (const ValueDesc& in : inputs) {
        w.inputs.push_back(in.name);
        w.drop.push_back(in.name);
      }
      for (const ValueDesc& out : outputs) {
        w.outputs.push_back(out.name);
        w.model_output.push_back(true);
        w.keep.push_back(false);
        w.to_host.push_back(true);
      }
    }
  }

  void start() {
    std::vector<std::future<void>> ready;
    for (auto& lane : lanes) {
      for (size_t k = 0; k < lane.size(); ++k) {
        Stage* stage = lane[k].get();
        stage->next = k + 1 < lane.size() ? lane[k + 1].get() : nullptr;
        auto pinned = std::make_shared<std::promise<void>>();
        ready.push_back(pinned->get_future());
        stage->worker = std::thread([this, stage, pinned] {
          try {
            if (!stage->remote) pin_current_thread(stage->device);  // a remote stage's device is on its rank
          } catch (const Error& e) {
            pinned->set_exception(std::make_exception_ptr(e.with_stage(stage->context)));
            return;
          }
          pinned->set_value();
          work(*stage);
        });
        if (stage->remote) stage->receiver = std::thread([this, stage] { collect(*stage); });
      }
    }
    for (auto& r : ready) r.get();  // rethrows a pinning failure (the caller's destructor joins)
  }

  void notify_begin(int stage, int64_t request) {
    for (StageObserver* o : observers) o->on_stage_begin(stage, request);
  }
  void notify_end(const StageRecord& record) {
    for (StageObserver* o : observers) o->on_stage_end(record);
  }

  double now_us() const { return micros(epoch, Clock::now()); }

  // Answers a request (its outputs, or `error`): observers get its record first.
  void answer(Request& request, std::exception_ptr error = nullptr) {
    request.record.answered = now_us();
    request.record.failed = error != nullptr;
    for (StageObserver* o : observers) o->on_request_done(request.record);
    if (error) {
      request.promise.set_exception(error);
    } else {
      request.promise.set_value(std::move(request.outputs));
    }
  }

  void fail(Request& request, const Stage& stage, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      const Error failure = stopping ? Error(ErrorCode::CANCELLED, "cancelled: the pipeline shut down") : e;
      answer(request, std::make_exception_ptr(failure.with_stage(stage.context)));
    } catch (const std::exception& e) {
      answer(request, std::make_exception_ptr(Error(ErrorCode::RUNTIME, e.what()).with_stage(stage.context)));
    }
  }

  // The values stage reads, in w.inputs order; model inputs first read here move into its memory.
  std::vector<const Value*> inputs_of(Stage& stage, Request& request, CopyStat& host_copy) {
    std::vector<const Value*> in;
    in.reserve(stage.wiring.inputs.size());
    for (const std::string& name : stage.wiring.inputs) {
      auto it = request.values.find(name);
      if (it == request.values.end()) {
        // A model input, first read here: into this stage's memory (no copy on CPU, pinned memory on CUDA).
        auto host = request.host_inputs.find(name);
        if (host == request.host_inputs.end()) {
          throw Error(ErrorCode::INTERNAL, "value '" + name + "' reached this stage from nowhere");
        }
        Value value = stage.remote ? Value::from_tensor(std::move(host->second))
                                   : stage.session->make_input(std::move(host->second), &host_copy);
        request.host_inputs.erase(host);
        it = request.values.emplace(name, std::move(value)).first;
      }
      in.push_back(&it->second);
    }
    return in;
  }

  // Hands a stage's outputs to the caller (model outputs) and to later stages, and drops what no later stage reads.
  void store_outputs(Stage& stage, Request& request, std::vector<Value>& out, const detail::RunRecord& run,
                     CopyStat host_copy, StageRecord& record) {
    const Wiring& w = stage.wiring;
    record.copy_in = host_copy;
    merge_copy(record.copy_in, run.copy_in);
    record.copy1 = record.copy_in.us;
    record.run = run.run_us;
    record.copy_out = run.copy_out;
    const auto copy_start = Clock::now();
    for (size_t i = 0; i < out.size(); ++i) {
      if (w.model_output[i]) {
        Tensor tensor = out[i].to_tensor();
        record.copy_out.path = std::max(record.copy_out.path, CopyPath::HOST);
        record.copy_out.bytes += static_cast<int64_t>(tensor.data.size());
        request.outputs[w.outputs[i]] = std::move(tensor);
      }
      if (w.keep[i]) request.values[w.outputs[i]] = std::move(out[i]);
    }
    record.copy2 = micros(copy_start, Clock::now());
    record.copy_out.us += record.copy2;
    for (const std::string& name : w.drop) request.values.erase(name);
  }

  // Runs one request through one stage; the error when it failed.
  std::exception_ptr process(Stage& stage, Request& request, StageRecord& record) {
    try {
      if (stopping) throw Error(ErrorCode::CANCELLED, "cancelled");
      CopyStat host_copy;
      const std::vector<const Value*> in = inputs_of(stage, request, host_copy);
      detail::RunRecord run;
      std::vector<Value> out = stage.session->run_values(stage.wiring.inputs, in, stage.wiring.outputs,
                                                         stage.wiring.to_host, &stage.control, &run);
      store_outputs(stage, request, out, run, host_copy, record);
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  }

  // A stage on another rank, in two halves so that the next request travels while this one runs there: the worker
  // sends, the stage's receiver collects the answers in the same order.
  std::exception_ptr send_remote(Stage& stage, Request& request) {
    try {
      if (stopping) throw Error(ErrorCode::CANCELLED, "cancelled");
      CopyStat none;
      stage.remote->send(request.record.id, stage.wiring.inputs, inputs_of(stage, request, none));
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  }

  std::exception_ptr collect_remote(Stage& stage, Request& request, StageRecord& record) {
    try {
      detail::HopRecord hop;
      std::vector<Value> out = stage.remote->receive(request.record.id, stage.wiring.outputs, &hop);
      detail::RunRecord run;
      run.run_us = hop.run_us;
      record.rank = stage.remote->rank();
      record.hop_bytes = hop.bytes;
      record.hop_us = hop.us;
      store_outputs(stage, request, out, run, CopyStat{}, record);
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  }

  void collect(Stage& stage) {
    Pending pending;
    while (stage.sent->pop(pending)) {
      const std::exception_ptr error =
          pending.error ? pending.error : collect_remote(stage, *pending.request, pending.record);
      finish(stage, pending.request, pending.record, error);
    }
  }

  void work(Stage& stage) {
    while (true) {
      const auto t_wait = Clock::now();
      RequestPtr request;
      if (!stage.queue->pop(request)) break;
      const auto t_begin = Clock::now();
      StageRecord record;
      record.request = request->record.id;
      record.stage = stage.index;
      record.lane = stage.lane;
      record.device = stage.device_text;
      record.wait = micros(t_wait, t_begin);
      if (!stage.seen_first) {
        record.wait0 = record.wait;
        stage.seen_first = true;
      }
      record.t_wait = micros(epoch, t_wait);
      record.t_begin = micros(epoch, t_begin);
      notify_begin(stage.index, request->record.id);
      if (stage.remote) {
        const std::exception_ptr error = send_remote(stage, *request);
        Pending pending{std::move(request), record, error};  // answered in order, failed or not
        if (!stage.sent->push(pending)) {
          finish(stage, pending.request, pending.record,
                 std::make_exception_ptr(Error(ErrorCode::CANCELLED, "cancelled")));
        }
        continue;
      }
      const std::exception_ptr error = process(stage, *request, record);
      finish(stage, request, record, error);
    }
  }

  // Hands a request on after a stage: to the next stage, or its answer (or failure) to the caller.
  void finish(Stage& stage, RequestPtr& request, StageRecord& record, const std::exception_ptr& error) {
    const auto t_end = Clock::now();
    record.failed = error != nullptr;
    record.t_end = micros(epoch, t_end);
    record.ttime = record.t_end - record.t_wait;
    // Observers see the record before the caller sees the answer.
    request->record.stages.push_back(record);
    notify_end(record);
    if (error) {
      fail(*request, stage, error);
    } else if (!stage.next) {
      answer(*request);
    } else if (stage.next->queue->push(request)) {
      return;
    } else {
      fail(*request, stage, std::make_exception_ptr(Error(ErrorCode::CANCELLED, "cancelled")));
    }
    request.reset();
    gate.release();
  }
};

Pipeline::Pipeline(const std::string& source, PipelineOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& impl = *impl_;
  if (impl.options.devices.empty()) throw Error(ErrorCode::USAGE, "no device given");
  if (impl.options.max_inflight < 1) throw Error(ErrorCode::USAGE, "max_inflight must be >= 1");
  for (const std::string& device : impl.options.devices) parse_device(device);
  if (!fs::exists(source)) throw Error(ErrorCode::IO, source + ": no such file or directory");
  const bool is_plan = fs::is_directory(source);
  if (!impl.options.ranks.empty() && (impl.options.mode != PipelineMode::PIPELINE || !is_plan)) {
    throw Error(ErrorCode::USAGE,
                "stages on ranks need pipeline mode and a plan directory (every rank loads its pieces)");
  }
  if (impl.options.mode == PipelineMode::PIPELINE) {
    std::string dir = source;
    if (!is_plan) {
      SplitOptions split = impl.options.split;
      split.parts = static_cast<int>(impl.options.devices.size());  // one piece per device
      dir = impl.split.emplace(source, split, impl.options.devices).dir();
    }
    impl.build_from_plan(dir);
  } else if (is_plan) {
    const Plan plan = Plan::load(source);
    fs::path model = plan.source_path;
    if (model.is_relative() && !fs::exists(model)) model = fs::path(source) / model;
    if (!fs::exists(model)) {
      throw Error(ErrorCode::IO, "plan " + source + ": source model '" + plan.source_path +
                                     "' not found: give the model file for " + pipeline_mode_name(impl.options.mode) +
                                     " mode");
    }
    impl.build_from_model(model.string());
  } else {
    impl.build_from_model(source);
  }
  impl.start();
}

Pipeline::~Pipeline() = default;

Ticket Pipeline::submit(TensorMap inputs) { return submit(std::move(inputs), nullptr); }

Ticket Pipeline::submit(TensorMap inputs, const std::function<bool()>& interrupted) {
  Impl& impl = *impl_;
  if (impl.rank != 0)
    throw Error(ErrorCode::USAGE, "requests are submitted on rank 0; this is rank " + std::to_string(impl.rank));
  auto request = std::make_unique<Request>();
  request->record.submitted = impl.now_us();
  detail::validate_inputs(impl.inputs, inputs);
  for (const std::string& name : impl.passthrough) request->outputs[name] = inputs.at(name);
  request->host_inputs = std::move(inputs);
  Ticket ticket;
  ticket.result = request->promise.get_future();
  bool stopped = false;
  const bool admitted =
      interrupted ? impl.gate.acquire([&] { return stopped = interrupted(); }, kInterruptPoll) : impl.gate.acquire();
  if (!admitted) throw Error(ErrorCode::CANCELLED, stopped ? "submit interrupted" : "pipeline shut down");
  std::lock_guard<std::mutex> lock(impl.submit_mutex);
  ticket.id = request->record.id = impl.next_id;
  request->record.admitted = impl.now_us();  // before the first stage can take it
  Stage& first = *impl.lanes[static_cast<size_t>(ticket.id) % impl.lanes.size()].front();
  if (!first.queue->push(request)) {
    impl.gate.release();
    throw Error(ErrorCode::CANCELLED, "pipeline shut down");
  }
  ++impl.next_id;  // only admitted requests take an id
  return ticket;
}

void Pipeline::serve() {
  if (impl_->rank != 0) detail::serve_stages(*impl_->transport, impl_->served);
}

std::vector<TensorMap> Pipeline::run(std::vector<TensorMap> requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      detail::validate_inputs(impl_->inputs, requests[i]);
    } catch (const Error& e) {
      throw e.with_context("request " + std::to_string(i));
    }
  }
  std::vector<Ticket> futures;
  futures.reserve(requests.size());
  for (TensorMap& request : requests) futures.push_back(submit(std::move(request)));
  std::vector<TensorMap> results(futures.size());
  std::exception_ptr first_error;
  for (size_t i = 0; i < futures.size(); ++i) {
    try {
      results[i] = futures[i].get();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  return results;
}

TensorMap Pipeline::run_batch(const TensorMap& batch, int micro_batch) {
  if (micro_batch < 0) micro_batch = impl_->options.micro_batch;
  const int64_t rows = detail::batch_size(batch);
  if (micro_batch == 0 || micro_batch >= rows) return submit(batch).get();
  std::vector<TensorMap> parts = detail::split_batch(batch, micro_batch);
  std::vector<int64_t> part_rows;
  for (const TensorMap& part : parts) part_rows.push_back(part.begin()->second.shape[0]);
  return detail::concat_batches(run(std::move(parts)), part_rows);
}

PipelineMode Pipeline::mode() const { return impl_->options.mode; }
const std::vector<ValueDesc>& Pipeline::inputs() const { return impl_->inputs; }
const std::vector<ValueDesc>& Pipeline::outputs() const { return impl_->outputs; }
int Pipeline::stage_count() const {
  return impl_->lanes.empty() ? impl_->parts : static_cast<int>(impl_->lanes.front().size());
}
int Pipeline::lane_count() const { return std::max<int>(1, static_cast<int>(impl_->lanes.size())); }
const TimingCollector& Pipeline::timings() const { return impl_->collector; }
TimingCollector& Pipeline::timings() { return impl_->collector; }
double Pipeline::now_us() const { return impl_->now_us(); }

std::vector<StageInfo> Pipeline::stages() const {
  std::vector<StageInfo> result;
  for (const auto& lane : impl_->lanes) {
    for (const auto& stage : lane) {
      StageInfo info;
      info.stage = stage->index;
      info.lane = stage->lane;
      info.piece = stage->piece;
      info.device = stage->device_text;
      if (stage->remote) {  // its memory is on its rank
        info.rank = stage->remote->rank();
        info.host = stage->remote->host();
        info.inputs = stage->declared_inputs;
        info.outputs = stage->declared_outputs;
      } else {
        if (impl_->transport) info.host = impl_->transport->host(0);
        info.inputs = stage->session->inputs();
        info.outputs = stage->session->outputs();
        info.memory = stage->session->memory_stats();
      }
      result.push_back(std::move(info));
    }
  }
  for (const detail::ServedStage& stage : impl_->served) result.push_back(served_stage_info(stage, *impl_->transport));
  return result;
}

}  // namespace onnxpipe
