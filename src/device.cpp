#include "onnxpipe/device.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
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
               "device '" + text + "': " + why +
                   " (expected cpu, cpu:T, cpu:T@C or cpu:T@C0-C1, cuda:K, each optionally =CAP such as =4GiB)");
}

struct Unit {
  const char* name;
  int64_t bytes;
};
constexpr Unit UNITS[] = {{"TiB", int64_t(1) << 40},
                          {"GiB", int64_t(1) << 30},
                          {"MiB", int64_t(1) << 20},
                          {"KiB", int64_t(1) << 10},
                          {"TB", 1000000000000},
                          {"GB", 1000000000},
                          {"MB", 1000000},
                          {"KB", 1000},
                          {"B", 1}};

// The exact text of a capacity: the largest binary unit that divides it.
std::string exact_bytes_text(int64_t bytes) {
  for (const Unit& unit : UNITS)
    if (unit.name[1] == 'i' && bytes >= unit.bytes && bytes % unit.bytes == 0)
      return std::to_string(bytes / unit.bytes) + unit.name;
  return std::to_string(bytes);
}

std::string cpu_text(int threads, const std::vector<int>& cores) {
  std::string text = "cpu";
  if (threads > 0) text += ":" + std::to_string(threads);
  if (!cores.empty()) {
    text += "@" + std::to_string(cores.front());
    if (cores.size() > 1) text += "-" + std::to_string(cores.back());
  }
  return text;
}

}  // namespace

int DeviceSpec::thread_count() const { return threads > 0 ? threads : hardware_threads(); }

std::string DeviceSpec::to_string() const {
  std::string text = kind == DeviceKind::CUDA ? "cuda:" + std::to_string(device_id) : cpu_text(threads, cores);
  return capacity >= 0 ? text + "=" + exact_bytes_text(capacity) : text;
}

bool DeviceSpec::operator==(const DeviceSpec& other) const {
  return kind == other.kind && threads == other.threads && cores == other.cores && device_id == other.device_id &&
         capacity == other.capacity;
}

namespace {

// The device before its `=CAP`.
DeviceSpec parse_device_without_capacity(const std::string& text) {
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

}  // namespace

DeviceSpec parse_device(const std::string& full_text) {
  const size_t equals = full_text.find('=');
  DeviceSpec spec = parse_device_without_capacity(full_text.substr(0, equals));
  if (equals == std::string::npos) return spec;
  try {
    spec.capacity = parse_bytes(full_text.substr(equals + 1));
  } catch (const Error& error) {
    throw bad_device(full_text, error.what());
  }
  return spec;
}

int64_t parse_bytes(const std::string& text) {
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
  const std::string number = text.substr(0, end), unit_name = text.substr(end);
  auto bad = [&text](const std::string& why) {
    return Error(ErrorCode::USAGE, "byte count '" + text + "': " + why +
                                       " (expected a number with an optional unit: B, KiB, MiB, GiB, TiB, KB, MB, "
                                       "GB, TB)");
  };
  const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  if (std::none_of(number.begin(), number.end(), digit) || std::count(number.begin(), number.end(), '.') > 1)
    throw bad("no number");
  int64_t scale = 1;
  if (!unit_name.empty()) {
    const Unit* unit =
        std::find_if(std::begin(UNITS), std::end(UNITS), [&unit_name](const Unit& u) { return unit_name == u.name; });
    if (unit == std::end(UNITS)) throw bad("unknown unit '" + unit_name + "'");
    scale = unit->bytes;
  }
  if (scale == 1 && number.find('.') != std::string::npos) throw bad("a fraction of a byte");
  const double value = std::stod(number) * static_cast<double>(scale);
  if (!(value < 9.0e18)) throw bad("too large");
  return static_cast<int64_t>(std::llround(value));
}

std::string bytes_text(int64_t bytes) {
  const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (unit < 4 && std::abs(value) >= 1024) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0 || std::abs(value) >= 10)
    std::snprintf(text, sizeof text, "%.0f %s", value, names[unit]);
  else
    std::snprintf(text, sizeof text, "%.1f %s", value, names[unit]);
  return text;
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
