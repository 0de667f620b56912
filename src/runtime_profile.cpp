#include "runtime_profile.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

std::vector<std::map<std::string, double>> node_runs_from_trace(const std::string& path) {
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
  // Every run but the warm-up gets an entry, so that a node missing from one run counts 0 there.
  std::vector<std::map<std::string, double>> runs(run_ranges.size() > 1 ? run_ranges.size() - 1 : 0);
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
    runs[run - 1][node] += event.value("dur", 0.0);
  }
  std::set<std::string> nodes;
  for (const auto& run : runs)
    for (const auto& [node, us] : run) nodes.insert(node);
  for (auto& run : runs)
    for (const auto& node : nodes) run.emplace(node, 0.0);
  return runs;
}

}  // namespace onnxpipe::detail
