#include "runtime_profile.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "onnxpipe/error.h"
#include "stats.h"

namespace onnxpipe::detail {

std::map<std::string, double> node_times_from_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::IO, "profile trace '" + path + "': cannot read");
  nlohmann::json trace;
  try {
    trace = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::RUNTIME, "profile trace '" + path + "': " + e.what());
  }
  if (trace.is_object() && trace.contains("traceEvents")) trace = trace["traceEvents"];
  if (!trace.is_array()) throw Error(ErrorCode::RUNTIME, "profile trace '" + path + "': not an event array");

  std::vector<std::pair<int64_t, int64_t>> run_ranges;  // [ts, ts + dur] of each model_run, in time order
  for (const auto& event : trace) {
    if (event.value("cat", "") == "Session" && event.value("name", "") == "model_run") {
      const int64_t ts = event.value("ts", int64_t(0));
      run_ranges.emplace_back(ts, ts + event.value("dur", int64_t(0)));
    }
  }
  std::sort(run_ranges.begin(), run_ranges.end());

  static const std::string suffix = "_kernel_time";
  std::map<std::string, std::vector<double>> per_run;  // node -> microseconds in each run (index 0: the warm-up)
  for (const auto& event : trace) {
    if (event.value("cat", "") != "Node") continue;
    const std::string name = event.value("name", "");
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const int64_t ts = event.value("ts", int64_t(0));
    // The run this event belongs to: the last run that started at or before it.
    auto it = std::upper_bound(run_ranges.begin(), run_ranges.end(), std::make_pair(ts, INT64_MAX));
    if (it == run_ranges.begin()) continue;
    const size_t run = static_cast<size_t>(it - run_ranges.begin()) - 1;
    if (run == 0 || ts > run_ranges[run].second) continue;  // the warm-up run, or outside any run
    std::string node = name.substr(0, name.size() - suffix.size());
    const auto args = event.find("args");
    if (args != event.end() && args->is_object() && args->contains("node_name")) {
      node = (*args)["node_name"].get<std::string>();
    }
    std::vector<double>& times = per_run[node];
    times.resize(run_ranges.size(), 0.0);
    times[run] += event.value("dur", 0.0);
  }
  std::map<std::string, double> median;
  for (auto& [node, times] : per_run) {
    median[node] = detail::median(std::vector<double>(times.begin() + 1, times.end()));
  }
  return median;
}

}  // namespace onnxpipe::detail
