#pragma once
// onnxpipe.Pipeline's native half. Thread contract: every method is called from Python with the GIL held and
// releases it while the library works (loading, submitting, waiting, closing). A completion thread waits on the
// requests submitted with submit() in order and completes their concurrent.futures.Future under the GIL.
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

  // Converts the feeds, submits them (blocking under back-pressure, GIL released) and hands `future` to the
  // completion thread; returns the request id. Ctrl-C while back-pressure holds the request raises KeyboardInterrupt
  // with nothing enqueued (the pipeline stays open).
  int64_t submit(const py::handle& feeds, py::object future);
  // Submits every request and waits for all, checking for Ctrl-C every few milliseconds: then the pipeline is closed
  // (what is in flight is cancelled) and KeyboardInterrupt raised. Rethrows the first failure once all are done.
  py::list run(const py::list& feeds_list);
  // run() over the micro-batches of `batch` (split along axis 0), their outputs concatenated.
  py::dict run_batch(const py::handle& batch, int micro_batch);
  // Cancels what is queued (its futures fail with CancelledError), stops the runs, joins. Idempotent.
  void close();
  bool closed() const;

  std::shared_ptr<Pipeline> shared() const;  // Error(USAGE) once closed

 private:
  struct Pending {
    std::future<TensorMap> result;
    PyObject* future;  // a strong reference, released under the GIL
  };
  std::vector<TensorMap> run_all(std::vector<TensorMap> requests);  // run()'s work, with the GIL held
  void complete_loop();
  void complete(Pending& pending);  // with the GIL held

  int micro_batch_;  // the pipeline's default
  size_t max_inflight_;
  mutable std::mutex mutex_;
  // Requests that may hold a permit of the pipeline's admission gate: those being submitted, those of a run() in
  // progress, and pending_ (until their futures complete, which is after their permits went back).
  size_t admitting_ = 0;
  size_t running_ = 0;
  std::shared_ptr<Pipeline> pipeline_;
  std::condition_variable ready_;
  std::deque<Pending> pending_;
  bool closing_ = false;
  std::thread completer_;
};

void bind_pipeline(py::module_& module);

}  // namespace onnxpipe::python
