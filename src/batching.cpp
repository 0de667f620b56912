#include "batching.h"

#include <algorithm>
#include <cstring>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {
namespace {

int64_t row_elements(const Tensor& t) {
  int64_t n = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) n *= t.shape[i];
  return n;
}

Tensor slice_rows(const Tensor& t, int64_t begin, int64_t end) {
  Tensor part;
  part.dtype = t.dtype;
  part.shape = t.shape;
  part.shape[0] = end - begin;
  const int64_t row = row_elements(t);
  if (t.dtype == DType::STRING) {
    part.strings.assign(t.strings.begin() + begin * row, t.strings.begin() + end * row);
    return part;
  }
  const size_t row_bytes = static_cast<size_t>(row) * dtype_size(t.dtype);
  if (t.is_borrowed()) {  // a view of a view: the rows stay where they are
    part.borrowed = {t.borrowed.owner, t.bytes() + begin * row_bytes, static_cast<size_t>(end - begin) * row_bytes};
    return part;
  }
  part.data.assign(t.bytes() + begin * row_bytes, t.bytes() + end * row_bytes);
  return part;
}

}  // namespace

int64_t batch_size(const std::map<std::string, Tensor>& batch) {
  int64_t size = -1;
  std::string first;
  for (const auto& [name, t] : batch) {
    if (t.shape.empty()) throw Error(ErrorCode::USAGE, "micro-batching: input '" + name + "' has no axis 0");
    if (size < 0) {
      size = t.shape[0];
      first = name;
    } else if (t.shape[0] != size) {
      throw Error(ErrorCode::USAGE, "micro-batching: input '" + name + "' has " + std::to_string(t.shape[0]) +
                                        " rows but input '" + first + "' has " + std::to_string(size));
    }
  }
  if (size < 0) throw Error(ErrorCode::USAGE, "micro-batching: no inputs");
  return size;
}

std::vector<std::map<std::string, Tensor>> split_batch(const std::map<std::string, Tensor>& batch, int64_t size) {
  if (size < 1) throw Error(ErrorCode::USAGE, "micro-batching: micro-batch size must be >= 1");
  const int64_t rows = batch_size(batch);
  std::vector<std::map<std::string, Tensor>> parts;
  for (int64_t begin = 0; begin < rows; begin += size) {
    const int64_t end = std::min(rows, begin + size);
    std::map<std::string, Tensor>& part = parts.emplace_back();
    for (const auto& [name, t] : batch) part[name] = slice_rows(t, begin, end);
  }
  return parts;
}

std::map<std::string, Tensor> concat_batches(const std::vector<std::map<std::string, Tensor>>& parts,
                                             const std::vector<int64_t>& expected_rows) {
  std::map<std::string, Tensor> result;
  if (parts.empty()) return result;
  for (const auto& [name, first] : parts[0]) {
    Tensor joined;
    joined.dtype = first.dtype;
    if (first.shape.empty()) throw Error(ErrorCode::USAGE, "micro-batching: output '" + name + "' has no axis 0");
    joined.shape = first.shape;
    joined.shape[0] = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto it = parts[i].find(name);
      if (it == parts[i].end()) throw Error(ErrorCode::INTERNAL, "micro-batching: output '" + name + "' missing");
      const Tensor& t = it->second;
      const bool same_rest = t.shape.size() == first.shape.size() &&
                             std::equal(t.shape.begin() + 1, t.shape.end(), first.shape.begin() + 1);
      if (t.dtype != first.dtype || !same_rest) {
        throw Error(ErrorCode::USAGE, "micro-batching: output '" + name + "' changes dtype or shape beyond axis 0");
      }
      if (!expected_rows.empty() && t.shape[0] != expected_rows[i]) {
        throw Error(ErrorCode::USAGE, "micro-batching: output '" + name + "' has " + std::to_string(t.shape[0]) +
                                          " rows for a micro-batch of " + std::to_string(expected_rows[i]) +
                                          ": it has no batch axis");
      }
      joined.shape[0] += t.shape[0];
      joined.data.insert(joined.data.end(), t.bytes(), t.bytes() + t.byte_size());
      joined.strings.insert(joined.strings.end(), t.strings.begin(), t.strings.end());
    }
    result[name] = std::move(joined);
  }
  return result;
}

}  // namespace onnxpipe::detail
