// chrome_trace (declared in onnxpipe/pipeline.h): the one Chrome / Perfetto trace writer, for run, bench and library
// callers, from the requests' records.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "onnxpipe/pipeline.h"

namespace onnxpipe {

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

// Times on the trace: microseconds from `zero` (the first submission), to the nanosecond.
struct Clip {
  double zero = 0;
  double at(double t) const { return std::round((t - zero) * 1e3) / 1e3; }
};

// One stage's work on one request: copy in, then the run, inside [t_begin, t_end]; copy out ends it. A wait that
// began before the trace's zero is cut there; hand-offs that move no bytes (CPU values passed on as they are) get no
// copy span. Returns where the run starts, on the trace.
double add_stage_spans(Json& events, const StageRecord& r, int track, const std::string& request, const Json& ids,
                       const Clip& clip) {
  const double begin = r.t_begin;
  const double run_from = begin + r.copy1;
  const double run_to = std::min(run_from + r.run, r.t_end);
  const double wait_from = std::max(r.t_wait, clip.zero);
  if (begin > wait_from) {
    events.push_back(span("wait " + request, "wait", track, clip.at(wait_from), clip.at(begin), ids));
  }
  if (r.copy_in.bytes > 0 || r.copy_in.path != CopyPath::NONE) {
    Json args = ids;
    args.update({{"bytes", r.copy_in.bytes}, {"path", copy_path_name(r.copy_in.path)}});
    events.push_back(span("copy in " + request, "copy", track, clip.at(begin), clip.at(run_from), args));
  }
  Json run_args = ids;
  run_args.update({{"device", r.device}, {"failed", r.failed}});
  events.push_back(span("run " + request, "run", track, clip.at(run_from), clip.at(run_to), run_args));
  if (r.copy_out.bytes > 0 || r.copy_out.path != CopyPath::NONE) {
    Json args = ids;
    args.update({{"bytes", r.copy_out.bytes}, {"path", copy_path_name(r.copy_out.path)}});
    events.push_back(span("copy out " + request, "copy", track, clip.at(std::max(run_to, r.t_end - r.copy2)),
                          clip.at(r.t_end), args));
  }
  return clip.at(run_from);
}

}  // namespace

std::string chrome_trace(const std::vector<RequestRecord>& requests, const std::vector<StageInfo>& stages,
                         const std::string& title) {
  int stage_count = 1;
  for (const StageInfo& s : stages) stage_count = std::max(stage_count, s.stage + 1);
  for (const RequestRecord& request : requests) {
    for (const StageRecord& r : request.stages) stage_count = std::max(stage_count, r.stage + 1);
  }
  const bool replicas = std::any_of(stages.begin(), stages.end(), [](const StageInfo& s) { return s.lane > 0; });
  auto tid = [&](int lane, int stage) { return lane * stage_count + stage; };

  Json events = Json::array();
  events.push_back(metadata("process_name", 0, {{"name", title}}));
  for (const StageInfo& s : stages) {
    const int t = tid(s.lane, s.stage);
    events.push_back(metadata("thread_name", t, {{"name", track_name(s, replicas)}}));
    events.push_back(metadata("thread_sort_index", t, {{"sort_index", t}}));
  }

  std::vector<const RequestRecord*> by_id;
  for (const RequestRecord& request : requests) by_id.push_back(&request);
  std::sort(by_id.begin(), by_id.end(), [](const RequestRecord* a, const RequestRecord* b) { return a->id < b->id; });
  Clip clip;
  for (size_t i = 0; i < by_id.size(); ++i)
    clip.zero = i ? std::min(clip.zero, by_id[i]->submitted) : by_id[i]->submitted;
  // Requests are numbered in id order (#0 ...), so that a trace reads like the seed's t_1 ... t_7.
  for (size_t index = 0; index < by_id.size(); ++index) {
    const std::string request = "#" + std::to_string(index);
    const Json ids = {{"request", index}, {"request_id", by_id[index]->id}};
    std::pair<int, double> previous{-1, 0};  // track and run start on the stage before
    for (const StageRecord& r : by_id[index]->stages) {
      const int track = tid(r.lane, r.stage);
      const double run_from = add_stage_spans(events, r, track, request, ids, clip);
      // An arrow from its run on one stage to its run on the next.
      if (previous.first >= 0) {
        const int64_t id = static_cast<int64_t>(index) * stage_count + r.stage - 1;
        events.push_back({{"name", "request"},
                          {"cat", "handoff"},
                          {"ph", "s"},
                          {"id", id},
                          {"ts", previous.second},
                          {"pid", 1},
                          {"tid", previous.first}});
        events.push_back({{"name", "request"},
                          {"cat", "handoff"},
                          {"ph", "f"},
                          {"bp", "e"},
                          {"id", id},
                          {"ts", run_from},
                          {"pid", 1},
                          {"tid", track}});
      }
      previous = {track, run_from};
    }
  }
  return Json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump();
}

}  // namespace onnxpipe
