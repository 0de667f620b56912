#include "onnxpipe/device.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "onnxpipe/error.h"

namespace onnxpipe {
namespace {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// A non-negative decimal integer filling the whole of `text`, or -1.
int parse_count(const std::string& text) {
  if (text.empty() || text.size() > 6) return -1;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

Error bad_device(const std::string& text, const std::string& why) {
  return Error(ErrorCode::USAGE,
               "device '" + text + "': " + why + " (expected cpu, cpu:T, cpu:T@C or cpu:T@C0-C1, cuda:K)");
}

}  // namespace

int DeviceSpec::thread_count() const { return threads > 0 ? threads : hardware_threads(); }

std::string DeviceSpec::to_string() const {
  if (kind == DeviceKind::CUDA) return "cuda:" + std::to_string(device_id);
  std::string text = "cpu";
  if (threads > 0) text += ":" + std::to_string(threads);
  if (!cores.empty()) {
    text += "@" + std::to_string(cores.front());
    if (cores.size() > 1) text += "-" + std::to_string(cores.back());
  }
  return text;
}

bool DeviceSpec::operator==(const DeviceSpec& other) const {
  return kind == other.kind && threads == other.threads && cores == other.cores && device_id == other.device_id;
}

DeviceSpec parse_device(const std::string& text) {
  DeviceSpec spec;
  if (text.rfind("cuda:", 0) == 0) {
    spec.kind = DeviceKind::CUDA;
    spec.device_id = parse_count(text.substr(5));
    if (spec.device_id < 0) throw bad_device(text, "the CUDA device is not a number");
    return spec;
  }
  if (text == "cpu") return spec;
  if (text.rfind("cpu:", 0) != 0) throw bad_device(text, "unknown device");
  const std::string rest = text.substr(4);
  const size_t at = rest.find('@');
  spec.threads = parse_count(rest.substr(0, at));
  if (spec.threads < 1) throw bad_device(text, "the thread count must be a number >= 1");
  if (at == std::string::npos) return spec;

  const std::string range = rest.substr(at + 1);
  const size_t dash = range.find('-');
  const int first = parse_count(range.substr(0, dash));
  const int last = dash == std::string::npos ? first : parse_count(range.substr(dash + 1));
  if (first < 0 || last < 0) throw bad_device(text, "cores must be C or C0-C1");
  if (last < first) throw bad_device(text, "empty core range");
  if (last >= hardware_threads()) {
    throw bad_device(text, "core " + std::to_string(last) + " does not exist (this machine has " +
                               std::to_string(hardware_threads()) + ")");
  }
  for (int core = first; core <= last; ++core) spec.cores.push_back(core);
  return spec;
}

std::vector<DeviceSpec> parse_devices(const std::string& list) {
  std::vector<DeviceSpec> devices;
  size_t begin = 0;
  while (true) {
    const size_t comma = list.find(',', begin);
    devices.push_back(parse_device(list.substr(begin, comma - begin)));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return devices;
}

void pin_current_thread(const DeviceSpec& device) {
  if (device.kind != DeviceKind::CPU || device.cores.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(device.cores.front(), &set);
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) {
    throw Error(ErrorCode::RUNTIME, "device " + device.to_string() + ": cannot pin thread to core " +
                                        std::to_string(device.cores.front()) + ": " + std::strerror(rc));
  }
}

std::string contention_warning(const std::vector<DeviceSpec>& devices) {
  int threads = 0;
  std::map<int, size_t> pinned_by;  // core -> the first device pinned to it
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].is_cuda()) continue;
    threads += devices[i].thread_count();
    for (int core : devices[i].cores) {
      const auto [it, first] = pinned_by.emplace(core, i);
      if (!first && it->second != i) {
        return "devices " + std::to_string(it->second) + " (" + devices[it->second].to_string() + ") and " +
               std::to_string(i) + " (" + devices[i].to_string() + ") are both pinned to core " + std::to_string(core) +
               ": they take turns on it";
      }
    }
  }
  if (threads > hardware_threads()) {
    return std::to_string(threads) + " CPU threads for " + std::to_string(hardware_threads()) +
           " hardware threads: the stages compete for cores (give each its own, e.g. cpu:1@0,cpu:1@1)";
  }
  return "";
}

int64_t host_memory_available() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    int64_t kib = -1;
    return fields >> kib ? kib * 1024 : -1;
  }
  return -1;
}

}  // namespace onnxpipe
