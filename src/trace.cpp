#include "trace.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "onnxpipe/error.h"
#include "staging.h"

namespace onnxpipe::detail {

namespace {

using Json = nlohmann::ordered_json;

Json span(const std::string& name, const char* category, int tid, double begin, double end, Json args) {
  return {{"name", name},
          {"cat", category},
          {"ph", "X"},
          {"ts", begin},
          {"dur", std::max(0.0, end - begin)},
          {"pid", 1},
          {"tid", tid},
          {"args", std::move(args)}};
}

Json metadata(const char* what, int tid, Json args) {
  return {{"name", what}, {"ph", "M"}, {"pid", 1}, {"tid", tid}, {"args", std::move(args)}};
}

std::string track_name(const StageInfo& stage, bool replicas) {
  if (replicas) return "replica " + std::to_string(stage.lane) + " (" + stage.device + ")";
  return "stage " + std::to_string(stage.stage) + " (" + stage.piece + ", " + stage.device + ")";
}

}  // namespace

double steady_now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void TraceObserver::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.clear();
  start_us_ = steady_now_us();
  recording_ = true;
}

void TraceObserver::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  recording_ = false;
}

void TraceObserver::on_stage_begin(int, int64_t) {}

void TraceObserver::on_stage_end(const StageRecord& record) {
  // The worker stamped t_end just before calling observers: the smallest gap seen is the clock offset.
  const double now = steady_now_us();
  std::lock_guard<std::mutex> lock(mutex_);
  offset_us_ = std::min(offset_us_, now - record.t_end);
  if (recording_) records_.push_back(record);
}

std::vector<StageRecord> TraceObserver::records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

double TraceObserver::clock_offset_us() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::isfinite(offset_us_) ? offset_us_ : std::nan("");
}

double TraceObserver::origin_us() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::isfinite(offset_us_) ? start_us_ - offset_us_ : std::nan("");
}

std::string TraceObserver::chrome_trace(const std::vector<StageInfo>& stages, const std::string& title) const {
  const std::vector<StageRecord> all = records();
  const double origin = origin_us();
  int stage_count = 1;
  for (const StageInfo& s : stages) stage_count = std::max(stage_count, s.stage + 1);
  const bool replicas = std::any_of(stages.begin(), stages.end(), [](const StageInfo& s) { return s.lane > 0; });
  auto tid = [&](int lane, int stage) { return lane * stage_count + stage; };

  Json events = Json::array();
  events.push_back(metadata("process_name", 0, {{"name", title}}));
  for (const StageInfo& s : stages) {
    const int t = tid(s.lane, s.stage);
    events.push_back(metadata("thread_name", t, {{"name", track_name(s, replicas)}}));
    events.push_back(metadata("thread_sort_index", t, {{"sort_index", t}}));
  }

  // Requests are numbered from the window's first one (#0), so that a trace reads like the seed's t_1 ... t_7.
  int64_t first = 0;
  if (!all.empty()) {
    first = std::min_element(all.begin(), all.end(), [](const StageRecord& a, const StageRecord& b) {
              return a.request < b.request;
            })->request;
  }
  const double zero = std::isnan(origin) ? 0 : origin;
  auto at = [zero](double t) { return std::round((t - zero) * 1e3) / 1e3; };  // µs from start(), to the ns
  std::map<std::pair<int64_t, int>, std::pair<int, double>> run_at;           // (request, stage) -> (track, run start)
  for (const StageRecord& r : all) {
    const int t = tid(r.lane, r.stage);
    const int64_t index = r.request - first;
    const std::string request = "#" + std::to_string(index);
    const Json ids = {{"request", index}, {"request_id", r.request}};
    // Copy in, then the run, inside [t_begin, t_end]; copy out ends the stage's work. Hand-offs that move no bytes
    // (CPU values passed on as they are) get no copy span.
    const double begin = r.t_begin;
    const double run_from = begin + r.copy1;
    const double run_to = std::min(run_from + r.run, r.t_end);
    const double wait_from = std::max(r.t_wait, zero);
    if (begin > wait_from) events.push_back(span("wait " + request, "wait", t, at(wait_from), at(begin), ids));
    if (r.copy_in.bytes > 0 || r.copy_in.path != CopyPath::NONE) {
      Json args = ids;
      args.update({{"bytes", r.copy_in.bytes}, {"path", copy_path_name(r.copy_in.path)}});
      events.push_back(span("copy in " + request, "copy", t, at(begin), at(run_from), args));
    }
    Json run_args = ids;
    run_args.update({{"device", r.device}, {"failed", r.failed}});
    events.push_back(span("run " + request, "run", t, at(run_from), at(run_to), run_args));
    if (r.copy_out.bytes > 0 || r.copy_out.path != CopyPath::NONE) {
      Json args = ids;
      args.update({{"bytes", r.copy_out.bytes}, {"path", copy_path_name(r.copy_out.path)}});
      events.push_back(
          span("copy out " + request, "copy", t, at(std::max(run_to, r.t_end - r.copy2)), at(r.t_end), args));
    }
    run_at[{index, r.stage}] = {t, at(run_from)};
  }
  // Arrows: each request from its run on one stage to its run on the next.
  for (const auto& [key, where] : run_at) {
    const auto next = run_at.find({key.first, key.second + 1});
    if (next == run_at.end()) continue;
    const int64_t id = key.first * stage_count + key.second;
    events.push_back({{"name", "request"},
                      {"cat", "handoff"},
                      {"ph", "s"},
                      {"id", id},
                      {"ts", where.second},
                      {"pid", 1},
                      {"tid", where.first}});
    events.push_back({{"name", "request"},
                      {"cat", "handoff"},
                      {"ph", "f"},
                      {"bp", "e"},
                      {"id", id},
                      {"ts", next->second.second},
                      {"pid", 1},
                      {"tid", next->second.first}});
  }
  return Json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump();
}

void TraceObserver::write(const std::string& path, const std::vector<StageInfo>& stages,
                          const std::string& title) const {
  write_file_atomically(path, chrome_trace(stages, title) + "\n");
}

}  // namespace onnxpipe::detail
