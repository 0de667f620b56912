#include "log.h"

#include <array>
#include <atomic>
#include <mutex>
#include <utility>

#include "enum_names.h"

namespace onnxpipe {
namespace {

struct LogChannel {
  std::mutex mutex;  // held while the callback runs: one call at a time, and a replaced callback is never running
  LogCallback callback;
  std::atomic<int> min_level{static_cast<int>(LogLevel::ERROR) + 1};  // nobody listens
};

LogChannel& channel() {
  static LogChannel instance;
  return instance;
}

}  // namespace

const char* log_level_name(LogLevel level) {
  static constexpr std::array<const char*, 4> kNames = {"debug", "info", "warning", "error"};
  return detail::enum_name(kNames, level);
}

void set_log_callback(LogLevel min_level, LogCallback callback) {
  LogChannel& c = channel();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.min_level = callback ? static_cast<int>(min_level) : static_cast<int>(LogLevel::ERROR) + 1;
  c.callback = std::move(callback);
}

namespace detail {

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= channel().min_level.load(); }

void log(LogLevel level, const std::string& text) {
  if (!log_enabled(level)) return;
  LogChannel& c = channel();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.callback && static_cast<int>(level) >= c.min_level.load()) c.callback(level, text);
}

}  // namespace detail
}  // namespace onnxpipe
