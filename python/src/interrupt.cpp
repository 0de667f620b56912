#include "interrupt.h"

#include <mutex>
#include <vector>

namespace onnxpipe::python {

namespace {

std::mutex abandoned_mutex;
std::vector<std::thread> abandoned;

}  // namespace

void abandon(std::thread worker) {
  std::lock_guard<std::mutex> lock(abandoned_mutex);
  abandoned.push_back(std::move(worker));
}

void join_abandoned() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(abandoned_mutex);
    workers.swap(abandoned);
  }
  py::gil_scoped_release release;  // an abandoned call may log, which takes the GIL
  for (std::thread& worker : workers) worker.join();
}

}  // namespace onnxpipe::python
