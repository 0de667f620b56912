// Option text through the --devices parser (parse_devices, parse_device, contention_warning), the --dim parser
// (parse_dims, one NAME=VALUE per line) and the --cut list (split_list), plus the integer parsers they share.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "onnxpipe/device.h"
#include "options.h"

using namespace onnxpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::vector<DeviceSpec> devices;
  if (fuzz::accepts([&] { devices = parse_devices(text); })) {
    for (const DeviceSpec& device : devices) {
      DeviceSpec again;
      fuzz::require(fuzz::accepts([&] { again = parse_device(device.to_string()); }) && again == device,
                    "parse_device(to_string()) == device");
    }
    contention_warning(devices);
  }

  std::vector<std::string> specs;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) specs.push_back(line);
  std::map<std::string, int64_t> dims;
  if (fuzz::accepts([&] { dims = cli::parse_dims(specs); })) {
    for (const auto& [name, value] : dims) fuzz::require(!name.empty() && value >= 1, "a --dim is NAME=VALUE >= 1");
  }

  std::vector<std::string> cuts;
  if (fuzz::accepts([&] { cuts = cli::split_list(text, "--cut"); })) {
    fuzz::require(!cuts.empty(), "a list has an item");
    for (const std::string& cut : cuts) fuzz::require(!cut.empty(), "no empty item in a list");
  }

  std::pair<int64_t, int64_t> range;
  if (fuzz::accepts([&] { range = cli::parse_int_range(text, "--range"); })) {
    fuzz::require(range.first < range.second, "LO < HI");
  }
  fuzz::accepts([&] { cli::parse_int(text, "--int"); });
  return 0;
}
