#include "onnxpipe/stage_timing.h"

#include <algorithm>
#include <array>

#include "enum_names.h"
#include "stats.h"

namespace onnxpipe {

const char* copy_path_name(CopyPath path) {
  static constexpr std::array<const char*, 5> kNames = {"none", "host", "h2d", "d2d", "d2h"};
  return detail::enum_name(kNames, path);
}

void TimingCollector::on_stage_end(const StageRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.push_back(record);
}

void TimingCollector::on_request_done(const RequestRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  requests_.push_back(record);
}

std::vector<StageRecord> TimingCollector::records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

std::vector<RequestRecord> TimingCollector::requests() const {
  std::vector<RequestRecord> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all = requests_;
  }
  std::sort(all.begin(), all.end(), [](const RequestRecord& a, const RequestRecord& b) { return a.id < b.id; });
  return all;
}

void TimingCollector::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.clear();
  requests_.clear();
}

std::vector<StageSummary> TimingCollector::summary() const {
  const std::vector<StageRecord> all = records();
  std::map<int, StageSummary> by_stage;
  std::map<int, std::vector<double>> runs;
  for (const StageRecord& r : all) {
    StageSummary& s = by_stage[r.stage];
    s.stage = r.stage;
    if (s.device.empty()) {
      s.device = r.device;
    } else if (s.device.find(r.device) == std::string::npos) {
      s.device += "," + r.device;  // replicas: one stage index on several devices
    }
    ++s.requests;
    if (r.failed) ++s.failures;
    s.wait0 += r.wait0;
    s.wait += r.wait;
    s.copy1 += r.copy1;
    s.run += r.run;
    s.copy2 += r.copy2;
    s.ttime += r.ttime;
    s.rank = r.rank;
    s.hop_bytes += static_cast<double>(r.hop_bytes);
    s.hop += r.hop_us;
    runs[r.stage].push_back(r.run);
    for (const CopyStat* copy : {&r.copy_in, &r.copy_out}) {
      if (copy->bytes == 0 && copy->path == CopyPath::NONE) continue;
      s.copy_bytes[copy->path] += copy->bytes;
      ++s.copy_count[copy->path];
    }
  }
  std::vector<StageSummary> result;
  for (auto& [stage, s] : by_stage) {
    const double n = static_cast<double>(s.requests);
    s.wait /= n;
    s.copy1 /= n;
    s.run /= n;
    s.copy2 /= n;
    s.ttime /= n;
    s.hop_bytes /= n;
    s.hop /= n;
    s.run_median = detail::median(std::move(runs[stage]));
    result.push_back(s);
  }
  return result;
}

}  // namespace onnxpipe
