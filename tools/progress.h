#pragma once
// A progress bar on stderr for work that takes longer than a second: drawn on a terminal, or as a line per second
// with -v when stderr is not a terminal; never with -q. Thread-safe, so workers may report.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "onnxpipe/split.h"

namespace onnxpipe::cli {

class Progress {
 public:
  // enabled: draw at all; tty: redraw one line in place (else print whole lines, at most one a second).
  Progress(bool enabled, bool tty);
  ~Progress();  // clears the bar
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` steps of `what` (total 0: unknown).
  void update(const std::string& what, int64_t done, int64_t total);
  // The same, as a callback for the library (SplitOptions::progress). The Progress must outlive its use.
  ProgressFn callback();
  // Clears the bar; later updates draw again.
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  std::string line(const std::string& what, int64_t done, int64_t total) const;

  bool enabled_;
  bool tty_;
  std::mutex mutex_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  bool drawn_ = false;  // a bar is on the terminal now
};

}  // namespace onnxpipe::cli
