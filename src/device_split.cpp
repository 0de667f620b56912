#include "device_split.h"

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
  split.output_dir = dir_;
  plan_ = split_model(model, split);
}

}  // namespace onnxpipe::detail
