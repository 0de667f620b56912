#pragma once
// Ctrl-C for library calls that block for long (split, verify, bench, loading a pipeline): the call runs on a thread
// of its own while the caller waits with the GIL released, looking for signals every few milliseconds.
// A call with a place to stop at (a CancelFlag wired to the library's `cancelled` option: split, verify) is asked to
// stop and waited for: it ends at its next check, leaving nothing behind, and then KeyboardInterrupt is raised. A
// call without one, or a second Ctrl-C, is left to finish in the background (its result dropped): KeyboardInterrupt
// at once, and join_abandoned(), at interpreter exit, waits for it. Call with the GIL held.
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "convert.h"

namespace onnxpipe::python {

// Keeps an interrupted call's thread until join_abandoned.
void abandon(std::thread worker);
// Waits (GIL released) for every abandoned call to finish.
void join_abandoned();

// Raised by call_interruptibly on Ctrl-C; question() is what the library's `cancelled` options ask.
class CancelFlag {
 public:
  std::function<bool()> question() const {
    return [flag = flag_] { return flag->load(); };
  }
  void raise() const { *flag_ = true; }

 private:
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

// Runs `work()` (which must not touch Python objects) on its own thread; returns its result or rethrows its error.
// Interrupted, it raises `cancel` (when given: `work` then stops at its next check) and waits for `work` to end.
template <typename F>
auto call_interruptibly(F work, const CancelFlag* cancel = nullptr) -> decltype(work()) {
  using Result = decltype(work());
  auto task = std::make_shared<std::packaged_task<Result()>>(std::move(work));
  std::future<Result> result = task->get_future();
  std::thread worker([task] { (*task)(); });
  std::optional<py::error_already_set> interrupt;  // fetched: no Python exception pending while waiting on
  bool abandoned = false;
  {
    py::gil_scoped_release release;
    while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() == 0) continue;
      abandoned = interrupt.has_value() || !cancel;  // a second Ctrl-C, or nowhere to stop: do not wait
      interrupt.emplace();
      if (abandoned) break;
      cancel->raise();
    }
  }
  if (abandoned) {
    abandon(std::move(worker));
    throw *interrupt;
  }
  worker.join();
  if (interrupt) throw *interrupt;  // the call stopped (or had just finished): the caller gets the interrupt
  return result.get();
}

}  // namespace onnxpipe::python
