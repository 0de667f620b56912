#include "device_split.h"

#include <algorithm>

#include "onnxpipe/device.h"
#include "onnxpipe/error.h"

namespace onnxpipe::detail {

DeviceSplit::DeviceSplit(const std::string& model, SplitOptions split, const std::vector<std::string>& devices)
    : temp_("split"), dir_((temp_.path() / "plan").string()) {
  if (devices.empty()) throw Error(ErrorCode::USAGE, "no device given");
  if (devices.size() > 1 && split.parts != static_cast<int>(devices.size())) {
    throw Error(ErrorCode::USAGE, std::to_string(devices.size()) + " devices for " + std::to_string(split.parts) +
                                      " parts: give one device per part (or one)");
  }
  if (split.device == SplitOptions().device) {
    // Balance on the kind of device the stages run on, without pinning this thread.
    const DeviceSpec stage = parse_device(devices.front());
    if (stage.is_cuda()) {
      split.device = stage.to_string();
    } else {
      split.device = stage.threads > 0 ? "cpu:" + std::to_string(stage.threads) : "cpu";
    }
  }
  // Devices with capacities: the fastest split whose pieces fit them (placement.h).
  std::vector<DeviceSpec> specs;
  for (const std::string& text : devices) specs.push_back(parse_device(text));
  const bool capped = std::any_of(specs.begin(), specs.end(), [](const DeviceSpec& d) { return d.capacity >= 0; });
  if (devices.size() > 1 && capped && split.placement.devices.empty()) split.placement.devices = specs;
  split.output_dir = dir_;
  plan_ = split_model(model, split);
}

}  // namespace onnxpipe::detail
