#pragma once
// The library's log channel. onnxpipe never writes to stdout or stderr itself: what it has to say beyond its results
// and errors (a fallback taken, a value left unsized, progress of a long step) goes to one process-wide callback.
// Without a callback, messages are dropped.
//
//   onnxpipe::set_log_callback(onnxpipe::LogLevel::INFO, [](onnxpipe::LogLevel level, const std::string& text) {
//     std::cerr << onnxpipe::log_level_name(level) << ": " << text << "\n";
//   });
#include <functional>
#include <string>

namespace onnxpipe {

enum class LogLevel {
  DEBUG,  // details for whoever investigates (-v on the CLI)
  INFO,   // what a long step is doing
  WARN,   // a fallback taken or a result that may not be what the caller expects
  ERROR,  // a failure that is reported elsewhere too (an exception) but worth a line where it happened
};

const char* log_level_name(LogLevel level);  // "debug", "info", "warning", "error"

using LogCallback = std::function<void(LogLevel level, const std::string& text)>;

// Messages at `min_level` and above go to `callback` (empty: dropped). Replaces the previous callback; thread-safe.
// The callback may be called from any thread the library runs (pipeline workers, loaders), one call at a time.
void set_log_callback(LogLevel min_level, LogCallback callback);

}  // namespace onnxpipe
