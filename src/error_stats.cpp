#include "error_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "half.h"
#include "onnxpipe/error.h"

namespace onnxpipe {

ErrorStat error_stat_from_name(const std::string& name) {
  if (name == "elementwise" || name == "elemwise") return ErrorStat::ELEMENTWISE;
  if (name == "max") return ErrorStat::MAX;
  if (name == "mean") return ErrorStat::MEAN;
  if (name == "median") return ErrorStat::MEDIAN;
  throw Error(ErrorCode::USAGE, "unknown error statistic '" + name + "' (elementwise, max, mean or median)");
}

const char* error_stat_name(ErrorStat stat) {
  switch (stat) {
    case ErrorStat::ELEMENTWISE:
      return "elementwise";
    case ErrorStat::MAX:
      return "max";
    case ErrorStat::MEAN:
      return "mean";
    case ErrorStat::MEDIAN:
      return "median";
  }
  return "?";
}

namespace detail {
namespace {

template <typename T>
T load(const Tensor& t, int64_t i) {
  T value;
  std::memcpy(&value, t.bytes() + i * sizeof(T), sizeof(T));
  return value;
}

// Element i as a double, and its place on the line of representable values of its dtype (floats: the bit pattern
// ordered so that neighbours differ by 1; integers: the value).
struct Element {
  double value;
  double place;
};

// Sign-magnitude bits to a line where adjacent representable values are 1 apart and -0 meets +0.
double ordered(uint64_t bits, int width) {
  const uint64_t sign = uint64_t(1) << (width - 1);
  return (bits & sign) ? -double(bits & ~sign) : double(bits);
}

Element element(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::FLOAT: {
      const uint32_t bits = load<uint32_t>(t, i);
      return {load<float>(t, i), ordered(bits, 32)};
    }
    case DType::DOUBLE: {
      const uint64_t bits = load<uint64_t>(t, i);
      return {load<double>(t, i), ordered(bits, 64)};
    }
    case DType::FLOAT16: {
      const uint16_t bits = load<uint16_t>(t, i);
      return {double(detail::half_to_float(bits)), ordered(bits, 16)};
    }
    case DType::BFLOAT16: {
      const uint16_t bits = load<uint16_t>(t, i);
      const uint32_t widened = uint32_t(bits) << 16;
      float value;
      std::memcpy(&value, &widened, 4);
      return {value, ordered(bits, 16)};
    }
    case DType::INT8:
      return {double(load<int8_t>(t, i)), double(load<int8_t>(t, i))};
    case DType::UINT8:
      return {double(load<uint8_t>(t, i)), double(load<uint8_t>(t, i))};
    case DType::BOOL:
      return {double(load<uint8_t>(t, i) != 0), double(load<uint8_t>(t, i) != 0)};
    case DType::INT16:
      return {double(load<int16_t>(t, i)), double(load<int16_t>(t, i))};
    case DType::UINT16:
      return {double(load<uint16_t>(t, i)), double(load<uint16_t>(t, i))};
    case DType::INT32:
      return {double(load<int32_t>(t, i)), double(load<int32_t>(t, i))};
    case DType::UINT32:
      return {double(load<uint32_t>(t, i)), double(load<uint32_t>(t, i))};
    case DType::INT64:
      return {double(load<int64_t>(t, i)), double(load<int64_t>(t, i))};
    case DType::UINT64:
      return {double(load<uint64_t>(t, i)), double(load<uint64_t>(t, i))};
    default:
      throw Error(ErrorCode::INTERNAL, "error_stats: no statistics for " + dtype_name(t.dtype));
  }
}

// The q-quantile of `values` (nearest rank), reordering them.
double quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  size_t rank = size_t(std::ceil(q * double(values.size())));
  rank = std::min(values.size() - 1, rank > 0 ? rank - 1 : 0);
  std::nth_element(values.begin(), values.begin() + rank, values.end());
  return values[rank];
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double value : values) sum += value;
  return values.empty() ? 0 : sum / double(values.size());
}

}  // namespace

ErrorStats error_stats(const Tensor& actual, const Tensor& expected) {
  ErrorStats stats;
  if (actual.dtype != expected.dtype || actual.shape != expected.shape) {
    const double inf = std::numeric_limits<double>::infinity();
    stats = {std::max(actual.element_count(), expected.element_count()), inf, inf, inf, inf, inf, inf, inf, inf};
    return stats;
  }
  stats.elements = expected.element_count();
  if (expected.dtype == DType::STRING || expected.dtype == DType::COMPLEX64 || expected.dtype == DType::COMPLEX128) {
    // No order to measure in: an error is a difference, 1 per element that differs (compare() counts them).
    const Difference diff = compare(actual, expected, 0, 0);
    stats.max_abs = stats.max_rel = stats.max_ulp = diff.mismatches > 0 ? diff.max_abs : 0;
    return stats;
  }
  std::vector<double> abs(size_t(stats.elements)), rel;
  rel.reserve(abs.size());
  for (int64_t i = 0; i < stats.elements; ++i) {
    const Element a = element(actual, i), e = element(expected, i);
    double error = 0, ulp = 0;
    if (std::isnan(a.value) || std::isnan(e.value)) {
      error = ulp = std::isnan(a.value) && std::isnan(e.value) ? 0 : std::numeric_limits<double>::infinity();
    } else if (a.value != e.value) {
      error = std::fabs(a.value - e.value);
      ulp = std::fabs(a.place - e.place);
    }
    abs[size_t(i)] = error;
    if (e.value != 0) rel.push_back(error / std::fabs(e.value));
    stats.max_abs = std::max(stats.max_abs, error);
    stats.max_ulp = std::max(stats.max_ulp, ulp);
  }
  stats.mean_abs = mean(abs);
  stats.mean_rel = mean(rel);
  stats.max_rel = rel.empty() ? 0 : *std::max_element(rel.begin(), rel.end());
  stats.p99_abs = quantile(abs, 0.99);
  stats.median_abs = quantile(abs, 0.5);
  stats.median_rel = quantile(rel, 0.5);
  return stats;
}

bool stat_passes(ErrorStat stat, const ErrorStats& stats, const Difference& diff, double rtol, double atol) {
  if (diff.shape_mismatch) return false;
  switch (stat) {
    case ErrorStat::ELEMENTWISE:
      return diff.mismatches == 0;
    case ErrorStat::MAX:
      return stats.max_abs <= atol || stats.max_rel <= rtol;
    case ErrorStat::MEAN:
      return stats.mean_abs <= atol || stats.mean_rel <= rtol;
    case ErrorStat::MEDIAN:
      return stats.median_abs <= atol || stats.median_rel <= rtol;
  }
  return false;
}

Tolerance default_tolerance(DType dtype) {
  // fp16 keeps 11 significant bits (unit roundoff 4.9e-4), bfloat16 8 (3.9e-3): a few roundings each.
  if (dtype == DType::FLOAT16) return {1e-3, 1e-3, "float16"};
  if (dtype == DType::BFLOAT16) return {1e-2, 1e-2, "bfloat16"};
  return {1e-5, 1e-6, "float32"};
}

}  // namespace detail
}  // namespace onnxpipe
