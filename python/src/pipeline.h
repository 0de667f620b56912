#pragma once
// onnxpipe.Pipeline's native half. Thread contract: every method is called from Python with the GIL held and
// releases it while the library works (loading, submitting, waiting, closing).
//
// The futures of submit() complete in submission order, each in whichever thread gets there without a thread switch:
// a thread in submit() holds the GIL already, so it completes what is answered before it returns (the answer that
// frees its permit under back-pressure, among others). A completion thread takes over only while no submit() is in
// progress and someone waits on a future (its Condition made), woken by the pipeline's request observer: handing the
// GIL to it for every answer would cost two thread switches per request.
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "convert.h"
#include "onnxpipe/pipeline.h"

namespace onnxpipe::python {

// PipelineOptions from the keyword arguments of onnxpipe.Pipeline (a dict; absent keys keep the defaults).
PipelineOptions pipeline_options(const py::dict& options);

class PyPipeline {
 public:
  PyPipeline(const std::string& source, const py::dict& options);
  ~PyPipeline();  // close()

  // Converts the feeds, submits them (blocking under back-pressure, GIL released) and queues `future`, completing
  // the futures answered meanwhile; returns the request id. Ctrl-C while back-pressure holds the request raises
  // KeyboardInterrupt with nothing enqueued (the pipeline stays open).
  int64_t submit(const py::handle& feeds, py::object future);
  // Submits every request and waits for all, checking for Ctrl-C every few milliseconds: then the pipeline is closed
  // (what is in flight is cancelled) and KeyboardInterrupt raised. Rethrows the first failure once all are done.
  py::list run(const py::list& feeds_list);
  // run() over the micro-batches of `batch` (split along axis 0), their outputs concatenated.
  py::dict run_batch(const py::handle& batch, int micro_batch);
  // Cancels what is queued (its futures fail with CancelledError), stops the runs, joins. Idempotent.
  void close();
  bool closed() const;
  // A future of submit() is waited on (its Condition was made): the completion thread then completes the answered
  // ones as they come, else they wait for the next submit() or close().
  void awaited();

  std::shared_ptr<Pipeline> shared() const;  // Error(USAGE) once closed

 private:
  struct Answers;  // the futures in flight, shared with the pipeline's observer
  class Submitting;
  std::vector<TensorMap> run_all(std::vector<TensorMap> requests);  // run()'s work, with the GIL held
  void complete_loop();
  // Completes the answered futures at the head of the queue, in order (GIL held); nothing when another thread is
  // completing (`claimed`: this thread holds that claim already).
  void complete_answered(bool claimed = false);

  int micro_batch_;  // the pipeline's default
  size_t max_inflight_;
  std::shared_ptr<Answers> answers_;
  std::shared_ptr<Pipeline> pipeline_;  // guarded by answers_->mutex
  std::thread completer_;
};

void bind_pipeline(py::module_& module);

}  // namespace onnxpipe::python
