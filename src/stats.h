#pragma once
// Order statistics of measured times, one definition for every report (bench rows, stage summaries, node profiles,
// the CLI's latencies), so that "p50" means the same everywhere.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace onnxpipe::detail {

// The value at rank round(p * (n - 1)) of the sorted values (nearest rank, no interpolation: a reported latency is
// one that happened); NaN for no values.
inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::nan("");
  const auto rank = static_cast<size_t>(std::lround(p * static_cast<double>(values.size() - 1)));
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(std::min(rank, values.size() - 1));
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

inline double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

}  // namespace onnxpipe::detail
