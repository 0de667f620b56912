#include "progress.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace onnxpipe::cli {

namespace {
constexpr auto kQuietStart = std::chrono::seconds(1);  // short work shows no bar
constexpr auto kTtyInterval = std::chrono::milliseconds(100);
constexpr auto kLineInterval = std::chrono::seconds(1);
constexpr int kBarWidth = 30;
}  // namespace

Progress::Progress(bool enabled, bool tty) : enabled_(enabled), tty_(tty), start_(Clock::now()) {}

Progress::~Progress() { clear(); }

void Progress::update(const std::string& what, int64_t done, int64_t total) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = Clock::now();
  bool finished = total > 0 && done >= total;
  if (now - start_ < kQuietStart) return;
  if (!finished && drawn_ && now - last_draw_ < (tty_ ? kTtyInterval : kLineInterval)) return;
  last_draw_ = now;
  std::cerr << (tty_ ? "\r\x1b[K" : "") << line(what, done, total) << (tty_ ? "" : "\n") << std::flush;
  drawn_ = true;
}

ProgressFn Progress::callback() {
  return [this](const std::string& what, int64_t done, int64_t total) { update(what, done, total); };
}

void Progress::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (drawn_ && tty_) std::cerr << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

std::string Progress::line(const std::string& what, int64_t done, int64_t total) const {
  double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  char text[128];
  if (total > 0) {
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    int filled = static_cast<int>(fraction * kBarWidth + 0.5);
    std::string bar = std::string(filled, '#') + std::string(kBarWidth - filled, '.');
    std::snprintf(text, sizeof text, " [%s] %3d%% %lld/%lld %.1fs", bar.c_str(), static_cast<int>(fraction * 100),
                  static_cast<long long>(done), static_cast<long long>(total), seconds);
  } else {
    std::snprintf(text, sizeof text, " %lld %.1fs", static_cast<long long>(done), seconds);
  }
  return what + text;
}

}  // namespace onnxpipe::cli
