#include "sweep.h"

#include <algorithm>

#include "onnxpipe/error.h"
#include "options.h"

namespace onnxpipe::cli {

namespace {

std::vector<std::string> split_range(const std::string& item) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = item.find(':', start);
    parts.push_back(item.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

int sweep_number(const std::string& text, const std::string& spec) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + text + "' is not a positive integer " +
                                      "(expected N, A:B or A:B:STEP, comma-separated)");
  }
  if (text.size() > 7) throw Error(ErrorCode::USAGE, "--images '" + spec + "': " + text + " images is too many");
  const int value = std::stoi(text);
  if (value < 1) throw Error(ErrorCode::USAGE, "--images '" + spec + "': counts start at 1");
  return value;
}

}  // namespace

detail::ImageSweep parse_image_sweep(const std::string& spec) {
  const std::vector<std::string> items = split_list(spec, "--images");
  std::vector<int> counts;
  for (const std::string& item : items) {
    const std::vector<std::string> parts = split_range(item);
    if (parts.size() > 3) {
      throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + item + "' has more than A:B:STEP");
    }
    if (parts.size() == 1) {
      counts.push_back(sweep_number(parts[0], spec));
      continue;
    }
    const int start = sweep_number(parts[0], spec);
    const int stop = sweep_number(parts[1], spec);
    const int step = parts.size() == 3 ? sweep_number(parts[2], spec) : 1;
    if (stop <= start) {
      throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + item + "' is empty (the stop " +
                                        std::to_string(stop) + " is excluded, like Python's range)");
    }
    if (items.size() == 1) return detail::ImageSweep::range(start, stop, step);
    for (int n = start; n < stop; n += step) counts.push_back(n);
  }
  return detail::ImageSweep::list(counts);
}

std::vector<PipelineMode> parse_modes(const std::string& list) {
  std::vector<PipelineMode> modes;
  for (const std::string& item : split_list(list, "--modes")) {
    PipelineMode mode;
    try {
      mode = pipeline_mode_from_name(item);
    } catch (const Error& e) {
      throw e.with_context("--modes");
    }
    if (std::find(modes.begin(), modes.end(), mode) != modes.end()) {
      throw Error(ErrorCode::USAGE, "--modes '" + list + "': '" + item + "' is given twice");
    }
    modes.push_back(mode);
  }
  return modes;
}

}  // namespace onnxpipe::cli
