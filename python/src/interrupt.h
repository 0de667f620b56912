#pragma once
// Ctrl-C for library calls that cannot stop half-way (split, verify, bench, loading a pipeline): the call runs on a
// thread of its own while the caller waits with the GIL released, looking for signals every few milliseconds.
// Interrupted, the caller raises KeyboardInterrupt at once; the abandoned call finishes in the background (its
// result dropped) and join_abandoned(), at interpreter exit, waits for it. Call with the GIL held.
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "convert.h"

namespace onnxpipe::python {

// Keeps an interrupted call's thread until join_abandoned.
void abandon(std::thread worker);
// Waits (GIL released) for every abandoned call to finish.
void join_abandoned();

// Runs `work()` (which must not touch Python objects) on its own thread; returns its result or rethrows its error.
// Interrupted, it sets `*cancelled` (when given), which a call with a place to stop at may watch.
template <typename F>
auto call_interruptibly(F work, const std::shared_ptr<std::atomic<bool>>& cancelled = nullptr) -> decltype(work()) {
  using Result = decltype(work());
  auto task = std::make_shared<std::packaged_task<Result()>>(std::move(work));
  std::future<Result> result = task->get_future();
  std::thread worker([task] { (*task)(); });
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      py::gil_scoped_acquire gil;
      if ((interrupted = PyErr_CheckSignals() != 0)) break;
    }
  }
  if (interrupted) {
    if (cancelled) *cancelled = true;
    abandon(std::move(worker));
    throw py::error_already_set();
  }
  worker.join();
  return result.get();
}

}  // namespace onnxpipe::python
