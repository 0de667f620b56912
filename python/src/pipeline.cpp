#include "pipeline.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>

#include "batching.h"
#include "interrupt.h"
#include "onnxpipe/error.h"

namespace onnxpipe::python {

namespace {

DeviceOptions device_options(const py::handle& object) {
  DeviceOptions options;
  if (object.is_none()) return options;
  const auto dict = py::reinterpret_borrow<py::dict>(object);
  if (dict.contains("provider_options")) {
    options.provider_options = cast_map<std::string>(dict["provider_options"]);
  }
  if (dict.contains("session_options")) options.session_options = cast_map<std::string>(dict["session_options"]);
  return options;
}

// The pending exception of a failed C++ future, as a Python exception object.
py::object exception_object(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const Error& error) {
    return error_object(error);
  } catch (const std::exception& error) {
    return error_object(Error(ErrorCode::INTERNAL, error.what()));
  }
}

// How often run() looks for Ctrl-C while it waits.
constexpr auto kSignalPoll = std::chrono::milliseconds(20);

// Whether a signal handler raised (Ctrl-C: KeyboardInterrupt, left pending), asked from a thread without the GIL.
// Only the main thread sees signals: elsewhere this is false.
bool signalled() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

// Adds `n` to `count` (guarded by `mutex`) for its lifetime.
class Counted {
 public:
  Counted(std::mutex& mutex, size_t& count, size_t n) : mutex_(mutex), count_(count), n_(n) {
    std::lock_guard<std::mutex> lock(mutex_);
    count_ += n_;
  }
  ~Counted() {
    std::lock_guard<std::mutex> lock(mutex_);
    count_ -= n_;
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;

 private:
  std::mutex& mutex_;
  size_t& count_;
  size_t n_;
};

// Submits with the GIL released. Ctrl-C while back-pressure holds the request: KeyboardInterrupt, nothing enqueued.
Ticket admit(Pipeline& pipeline, TensorMap inputs) {
  bool interrupted = false;
  try {
    py::gil_scoped_release release;
    return pipeline.submit(std::move(inputs), [&] { return interrupted = signalled(); });
  } catch (const Error&) {
    if (interrupted) throw py::error_already_set();
    throw;
  }
}

}  // namespace

PipelineOptions pipeline_options(const py::dict& options) {
  PipelineOptions result;
  if (auto v = option(options, "mode")) result.mode = pipeline_mode_from_name(v.cast<std::string>());
  if (auto v = option(options, "devices")) result.devices = v.cast<std::vector<std::string>>();
  if (auto v = option(options, "max_inflight")) result.max_inflight = v.cast<int>();
  if (auto v = option(options, "micro_batch")) result.micro_batch = v.cast<int>();
  if (auto v = option(options, "optimization_level")) result.optimization_level = v.cast<int>();
  if (auto v = option(options, "collect_timings")) result.collect_timings = v.cast<bool>();
  result.all_devices.provider_options = cast_map<std::string>(options.attr("get")("provider_options", py::none()));
  result.all_devices.session_options = cast_map<std::string>(options.attr("get")("session_options", py::none()));
  if (auto v = option(options, "per_device")) {
    for (auto item : py::reinterpret_borrow<py::dict>(v)) {
      result.per_device[item.first.cast<std::string>()] = device_options(item.second);
    }
  }
  if (auto v = option(options, "balance")) result.split.balance = balance_from_name(v.cast<std::string>());
  if (auto v = option(options, "cuts")) result.split.cuts = v.cast<std::vector<std::string>>();
  if (auto v = option(options, "dims")) result.split.dims = cast_map<int64_t>(v);
  if (auto v = option(options, "device")) result.split.device = v.cast<std::string>();
  return result;
}

// A submitted request: its answer and its concurrent.futures.Future (a strong reference, released under the GIL).
struct Pending {
  int64_t id = -1;
  std::future<TensorMap> result;
  PyObject* future = nullptr;
  bool answered() const { return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
};

struct PyPipeline::Answers : StageObserver {
  std::mutex mutex;
  std::condition_variable wake;  // the completion thread's
  std::deque<Pending> pending;   // in submission order
  // Requests that may hold a permit of the pipeline's admission gate besides `pending`: those being submitted, and
  // those of a run() in progress.
  size_t admitting = 0;
  size_t running = 0;
  size_t submitting = 0;    // threads in submit(): the last one out completes what is answered, or hands it on
  bool completing = false;  // a thread is completing futures; the others leave them to it, so that they stay in order
  // Someone waits on a future in the queue (it made its Condition): answers are completed as they come. Unawaited
  // ones wait for the next submit() or close(): nobody would see them sooner, and waking a thread costs.
  bool awaited = false;
  bool wanted = false;  // an answer came while no submit() was in progress: the completion thread's turn
  bool closing = false;
  // Requests answered while a submit() was in progress, their futures not completed yet. An answer is announced just
  // before its future is set, so the last submit() out may not see it answered: it hands these to the completion
  // thread.
  std::vector<int64_t> unseen;

  void on_request_done(const RequestRecord& record) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (submitting > 0) {
      unseen.push_back(record.id);
    } else if (awaited && !pending.empty()) {
      want();
    }
  }

  // A future in the queue is waited on (GIL held): complete what is answered now, and the rest as it comes.
  void await() {
    std::lock_guard<std::mutex> lock(mutex);
    awaited = true;
    if (submitting == 0 && !pending.empty()) want();
  }

  void want() {  // with `mutex` held
    wanted = true;
    wake.notify_one();
  }

  // The head, once answered, off the queue (with `mutex` held); false when there is none.
  bool take_answered(Pending& next) {
    if (pending.empty() || !pending.front().answered()) return false;
    next = std::move(pending.front());
    pending.pop_front();
    unseen.erase(std::remove(unseen.begin(), unseen.end(), next.id), unseen.end());
    if (pending.empty()) awaited = false;
    return true;
  }
};

// A thread in submit() (GIL held). leave() completes what is answered on the way out; without it (an exception on the
// way) what is answered goes to the completion thread.
class PyPipeline::Submitting {
 public:
  explicit Submitting(PyPipeline& owner) : owner_(owner), answers_(*owner.answers_) {
    std::lock_guard<std::mutex> lock(answers_.mutex);
    ++answers_.submitting;
  }
  ~Submitting() {
    if (left_) return;
    std::lock_guard<std::mutex> lock(answers_.mutex);
    exit();
  }
  Submitting(const Submitting&) = delete;
  Submitting& operator=(const Submitting&) = delete;

  void leave() {
    for (;;) {
      owner_.complete_answered();
      std::lock_guard<std::mutex> lock(answers_.mutex);
      // Answered while this thread completed the others, with nobody left to see it: once more.
      if (answers_.submitting == 1 && !answers_.completing && !answers_.pending.empty() &&
          answers_.pending.front().answered())
        continue;
      left_ = true;
      exit();
      return;
    }
  }

 private:
  void exit() {  // with the mutex held
    if (--answers_.submitting > 0) return;
    if (answers_.awaited && !answers_.unseen.empty() && !answers_.pending.empty()) answers_.want();
    answers_.unseen.clear();
  }

  PyPipeline& owner_;
  Answers& answers_;
  bool left_ = false;
};

PyPipeline::PyPipeline(const std::string& source, const py::dict& options) : answers_(std::make_shared<Answers>()) {
  PipelineOptions parsed = pipeline_options(options);
  micro_batch_ = parsed.micro_batch;
  max_inflight_ = static_cast<size_t>(std::max(parsed.max_inflight, 1));
  parsed.observers.push_back(answers_);
  const CancelFlag cancel;  // Ctrl-C: a split made on the fly stops at its next step; loading the sessions ends first
  parsed.split.cancelled = cancel.question();
  pipeline_ = call_interruptibly(
      [source, parsed = std::move(parsed)]() mutable { return std::make_shared<Pipeline>(source, std::move(parsed)); },
      &cancel);
  completer_ = std::thread([this] { complete_loop(); });
}

PyPipeline::~PyPipeline() { close(); }

std::shared_ptr<Pipeline> PyPipeline::shared() const {
  std::lock_guard<std::mutex> lock(answers_->mutex);
  if (!pipeline_) throw Error(ErrorCode::USAGE, "the pipeline is closed");
  return pipeline_;
}

bool PyPipeline::closed() const {
  std::lock_guard<std::mutex> lock(answers_->mutex);
  return !pipeline_;
}

namespace {

// Sets the outcome of an onnxpipe.Request: where no Condition was made yet (nobody waits, no callback), by setting its
// state directly, which runs no Python code and so cannot be interleaved with a thread making the Condition.
void set_outcome(const py::object& future, const py::object& result, const py::object& exception) {
  const py::dict attributes = future.attr("__dict__");
  if (!PyDict_GetItemString(attributes.ptr(), "_condition")) {
    if (PyDict_SetItemString(attributes.ptr(), "_result", result.ptr()) != 0 ||
        PyDict_SetItemString(attributes.ptr(), "_exception", exception.ptr()) != 0 ||
        PyDict_SetItemString(attributes.ptr(), "_state", py::str("FINISHED").ptr()) != 0) {
      throw py::error_already_set();
    }
  } else if (exception.is_none()) {
    future.attr("set_result")(result);
  } else {
    future.attr("set_exception")(exception);
  }
}

// Completes a request's future with its answer (GIL held).
void complete(Pending& pending) {
  const auto future = py::reinterpret_steal<py::object>(pending.future);
  try {
    try {
      set_outcome(future, to_dict(pending.result.get()), py::none());
    } catch (py::error_already_set&) {
      throw;
    } catch (...) {
      set_outcome(future, py::none(), exception_object(std::current_exception()));
    }
  } catch (py::error_already_set& error) {
    // The caller cancelled the future (InvalidStateError), or a done-callback raised: nothing to hand it to.
    error.discard_as_unraisable("onnxpipe: completing a request's future");
  }
}

}  // namespace

int64_t PyPipeline::submit(const py::handle& feeds, py::object future) {
  TensorMap inputs = to_tensor_map(feeds);
  Answers& answers = *answers_;
  Submitting submitting(*this);
  // What is answered leaves the queue first, so that the estimate below counts only what may hold a permit. Before
  // the pipeline is held here: a done-callback may close it.
  complete_answered();
  std::shared_ptr<Pipeline> pipeline = shared();
  Pending pending;
  {
    bool surely_admitted = false;
    {
      std::lock_guard<std::mutex> lock(answers.mutex);
      surely_admitted = answers.admitting + answers.running + answers.pending.size() < max_inflight_;
    }
    const Counted admitting(answers.mutex, answers.admitting, 1);
    // With a permit surely free, submit cannot block and keeps the GIL: dropping it could hand it to another thread.
    Ticket ticket = surely_admitted ? pipeline->submit(std::move(inputs)) : admit(*pipeline, std::move(inputs));
    future.attr("request_id") = ticket.id;  // before another thread can complete the future
    pending = Pending{ticket.id, std::move(ticket.result), future.release().ptr()};
    std::lock_guard<std::mutex> lock(answers.mutex);
    if (!answers.closing) {
      answers.pending.push_back(std::move(pending));
      pending.future = nullptr;
    }
  }
  if (!pending.future) {
    pipeline.reset();  // a done-callback run on the way out may close the pipeline
    submitting.leave();
    return pending.id;
  }
  // Closed while this request was being admitted: the completion thread is gone; answer here once the pipeline is
  // down (its last holder is this call: dropping it cancels the request).
  {
    py::gil_scoped_release release;
    pipeline.reset();
    pending.result.wait();
  }
  complete(pending);
  return pending.id;
}

void PyPipeline::awaited() { answers_->await(); }

void PyPipeline::complete_answered(bool claimed) {
  Answers& answers = *answers_;
  if (!claimed) {
    std::lock_guard<std::mutex> lock(answers.mutex);
    if (answers.completing) return;
    answers.completing = true;
  }
  for (;;) {
    Pending next;
    {
      std::lock_guard<std::mutex> lock(answers.mutex);
      if (!answers.take_answered(next)) {
        answers.completing = false;
        if (answers.wanted) answers.wake.notify_one();
        break;
      }
    }
    complete(next);
  }
  release_arrays();
}

void PyPipeline::complete_loop() {
  Answers& answers = *answers_;
  std::unique_lock<std::mutex> lock(answers.mutex);
  for (;;) {
    answers.wake.wait(
        lock, [&] { return answers.closing || (answers.wanted && answers.submitting == 0 && !answers.completing); });
    if (answers.closing) break;
    answers.wanted = false;
    if (answers.pending.empty()) continue;
    answers.completing = true;  // the head is this thread's to wait for: nobody takes it off the queue meanwhile
    const Pending& head = answers.pending.front();
    lock.unlock();
    head.result.wait();
    lock.lock();
    if (answers.submitting > 0 && !answers.closing) {  // the last submit() out completes it, without a thread switch
      answers.completing = false;
      continue;
    }
    lock.unlock();
    {
      py::gil_scoped_acquire gil;
      complete_answered(true);
    }
    lock.lock();
  }
  // Closing: the pipeline is down or going, so every request gets its answer; complete them all (a thread that was
  // completing when a done-callback closed the pipeline completes no more than the future it is at).
  for (;;) {
    if (answers.pending.empty()) return;
    Pending next = std::move(answers.pending.front());
    answers.pending.pop_front();
    lock.unlock();
    next.result.wait();
    {
      py::gil_scoped_acquire gil;
      complete(next);
      release_arrays();
    }
    lock.lock();
  }
}

py::list PyPipeline::run(const py::list& feeds_list) {
  std::vector<TensorMap> requests;
  for (const py::handle feeds : feeds_list) requests.push_back(to_tensor_map(feeds));
  py::list results;
  for (TensorMap& outputs : run_all(std::move(requests))) results.append(to_dict(std::move(outputs)));
  return results;
}

std::vector<TensorMap> PyPipeline::run_all(std::vector<TensorMap> requests) {
  const std::shared_ptr<Pipeline> pipeline = shared();
  const Counted running(answers_->mutex, answers_->running, requests.size());
  std::vector<std::future<TensorMap>> futures;
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    const auto stop = [&] { return interrupted = signalled(); };
    for (size_t i = 0; i < requests.size() && !interrupted; ++i) {
      try {
        futures.push_back(pipeline->submit(std::move(requests[i]), stop).result);
      } catch (const Error& e) {
        if (!interrupted) throw e.with_context("request " + std::to_string(i));
      }
    }
    for (size_t i = 0; i < futures.size() && !interrupted; ++i) {
      while (futures[i].wait_for(kSignalPoll) != std::future_status::ready && !stop()) {
      }
    }
  }
  if (interrupted) {
    py::error_already_set keyboard_interrupt;  // fetched: closing must not run with it pending
    close();
    throw keyboard_interrupt;
  }
  std::vector<TensorMap> results;
  std::exception_ptr first_failure;
  for (auto& future : futures) {
    try {
      results.push_back(future.get());
    } catch (...) {
      if (!first_failure) first_failure = std::current_exception();
    }
  }
  release_arrays();
  if (first_failure) std::rethrow_exception(first_failure);
  return results;
}

py::dict PyPipeline::run_batch(const py::handle& batch, int micro_batch) {
  TensorMap inputs = to_tensor_map(batch);
  if (micro_batch < 0) micro_batch = micro_batch_;
  std::vector<TensorMap> parts;
  std::vector<int64_t> part_rows;
  const int64_t rows = detail::batch_size(inputs);
  if (micro_batch == 0 || micro_batch >= rows) {
    parts.push_back(std::move(inputs));
  } else {
    parts = detail::split_batch(inputs, micro_batch);  // views of borrowed inputs: no copy
    for (const TensorMap& part : parts) part_rows.push_back(part.begin()->second.shape[0]);
  }
  std::vector<TensorMap> outputs = run_all(std::move(parts));
  if (part_rows.empty()) return to_dict(std::move(outputs.front()));
  TensorMap joined;
  {
    py::gil_scoped_release release;
    joined = detail::concat_batches(outputs, part_rows);
  }
  return to_dict(std::move(joined));
}

void PyPipeline::close() {
  Answers& answers = *answers_;
  std::shared_ptr<Pipeline> pipeline;
  {
    std::lock_guard<std::mutex> lock(answers.mutex);
    pipeline = std::move(pipeline_);
    answers.closing = true;
  }
  answers.wake.notify_all();
  py::gil_scoped_release release;  // the workers and the completion thread may need the GIL to finish
  pipeline.reset();                // cancels what is queued, stops the runs, joins (unless submit still holds it)
  if (completer_.joinable()) {
    if (completer_.get_id() == std::this_thread::get_id()) {
      completer_.detach();  // closed from a done-callback: the loop ends by itself once the queue is empty
    } else {
      completer_.join();
    }
  }
}

namespace {

py::dict stage_record_dict(const StageRecord& r) {
  py::dict d;
  d["request"] = r.request;
  d["stage"] = r.stage;
  d["lane"] = r.lane;
  d["device"] = r.device;
  d["wait0"] = r.wait0;
  d["wait"] = r.wait;
  d["copy1"] = r.copy1;
  d["run"] = r.run;
  d["copy2"] = r.copy2;
  d["ttime"] = r.ttime;
  d["copy_in_path"] = copy_path_name(r.copy_in.path);
  d["copy_in_bytes"] = r.copy_in.bytes;
  d["copy_out_path"] = copy_path_name(r.copy_out.path);
  d["copy_out_bytes"] = r.copy_out.bytes;
  d["t_wait"] = r.t_wait;
  d["t_begin"] = r.t_begin;
  d["t_end"] = r.t_end;
  d["failed"] = r.failed;
  return d;
}

py::dict request_dict(const RequestRecord& r) {
  py::dict d;
  d["id"] = r.id;
  d["submitted"] = r.submitted;
  d["admitted"] = r.admitted;
  d["answered"] = r.answered;
  d["latency_us"] = r.latency_us();
  d["failed"] = r.failed;
  d["stages"] = static_cast<int64_t>(r.stages.size());
  return d;
}

py::dict summary_dict(const StageSummary& s) {
  py::dict d;
  d["stage"] = s.stage;
  d["device"] = s.device;
  d["requests"] = s.requests;
  d["failures"] = s.failures;
  d["wait0"] = s.wait0;
  d["wait"] = s.wait;
  d["copy1"] = s.copy1;
  d["run"] = s.run;
  d["copy2"] = s.copy2;
  d["ttime"] = s.ttime;
  d["run_median"] = s.run_median;
  return d;
}

py::dict stage_info_dict(const StageInfo& s) {
  py::dict d;
  d["stage"] = s.stage;
  d["lane"] = s.lane;
  d["piece"] = s.piece;
  d["device"] = s.device;
  d["inputs"] = value_list(s.inputs);
  d["outputs"] = value_list(s.outputs);
  d["memory"] = py::cast(s.memory);
  return d;
}

// The loop of `onnxpipe run` (tools/cmd_run.cpp) on this pipeline, for the benchmarks' C++ path: `count` copies of
// `feeds` (owned, as the CLI's inputs read from files are) submitted, then each answer waited for, the GIL released
// throughout (not interruptible). Returns the seconds it took.
double run_native(const PyPipeline& owner, const py::handle& feeds, int count) {
  TensorMap inputs = to_tensor_map(feeds);
  for (auto& entry : inputs) entry.second.own();
  const std::shared_ptr<Pipeline> pipeline = owner.shared();
  py::gil_scoped_release release;
  const double start = pipeline->now_us();
  std::vector<Ticket> tickets;
  for (int i = 0; i < count; ++i) tickets.push_back(pipeline->submit(inputs));
  for (Ticket& ticket : tickets) ticket.get();
  return (pipeline->now_us() - start) / 1e6;
}

template <typename T, typename F>
py::list dict_list(const std::vector<T>& items, F to_dict_fn) {
  py::list list;
  for (const T& item : items) list.append(to_dict_fn(item));
  return list;
}

}  // namespace

void bind_pipeline(py::module_& m) {
  py::class_<PyPipeline>(m, "_Pipeline")
      .def(py::init<const std::string&, const py::dict&>())
      .def("submit", &PyPipeline::submit)
      .def("run", &PyPipeline::run)
      .def("run_batch", &PyPipeline::run_batch)
      .def("close", &PyPipeline::close)
      .def_property_readonly("closed", &PyPipeline::closed)
      .def_property_readonly("mode", [](const PyPipeline& p) { return pipeline_mode_name(p.shared()->mode()); })
      .def_property_readonly("inputs", [](const PyPipeline& p) { return value_list(p.shared()->inputs()); })
      .def_property_readonly("outputs", [](const PyPipeline& p) { return value_list(p.shared()->outputs()); })
      .def_property_readonly("stage_count", [](const PyPipeline& p) { return p.shared()->stage_count(); })
      .def_property_readonly("lane_count", [](const PyPipeline& p) { return p.shared()->lane_count(); })
      .def("now_us", [](const PyPipeline& p) { return p.shared()->now_us(); })
      .def("run_native", &run_native)
      .def("awaited", &PyPipeline::awaited)
      .def("stages", [](const PyPipeline& p) { return dict_list(p.shared()->stages(), stage_info_dict); })
      .def("records", [](const PyPipeline& p) { return dict_list(p.shared()->timings().records(), stage_record_dict); })
      .def("requests", [](const PyPipeline& p) { return dict_list(p.shared()->timings().requests(), request_dict); })
      .def("summary", [](const PyPipeline& p) { return dict_list(p.shared()->timings().summary(), summary_dict); })
      .def("clear_timings", [](PyPipeline& p) { p.shared()->timings().clear(); });
}

}  // namespace onnxpipe::python
