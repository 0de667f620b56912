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
  // completion thread; returns the request id.
  int64_t submit(const py::handle& feeds, py::object future);
  // Submits every request and waits for all, checking for Ctrl-C every few milliseconds: then the pipeline is closed
  // (what is in flight is cancelled) and KeyboardInterrupt raised. Rethrows the first failure once all are done.
  py::list run(const py::list& feeds_list);
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
  void complete_loop();
  void complete(Pending& pending);  // with the GIL held

  mutable std::mutex mutex_;
  std::shared_ptr<Pipeline> pipeline_;
  std::condition_variable ready_;
  std::deque<Pending> pending_;
  bool closing_ = false;
  std::thread completer_;
};

void bind_pipeline(py::module_& module);

}  // namespace onnxpipe::python
