#pragma once
// Cooperative cancellation of long library calls (split, verify): the caller's `cancelled` question, asked between
// costly steps, and Error(CANCELLED) once it says yes.
#include <functional>
#include <string>
#include <utility>

#include "onnxpipe/error.h"
#include "onnxpipe/split.h"

namespace onnxpipe::detail {

// Throws Error(CANCELLED) "WHAT cancelled" when `cancelled` says so (an empty one never does).
inline void check_cancelled(const std::function<bool()>& cancelled, const char* what) {
  if (cancelled && cancelled()) throw Error(ErrorCode::CANCELLED, std::string(what) + " cancelled");
}

// `progress` asking `cancelled` at each report first: wherever long work reports progress, it can be stopped.
inline ProgressFn cancellable(ProgressFn progress, std::function<bool()> cancelled, const char* what) {
  return [progress = std::move(progress), cancelled = std::move(cancelled), what](const std::string& step, int64_t done,
                                                                                  int64_t total) {
    check_cancelled(cancelled, what);
    if (progress) progress(step, done, total);
  };
}

}  // namespace onnxpipe::detail
