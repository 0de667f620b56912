#pragma once
// Micro-batching: cutting a batch of named tensors along axis 0 and joining the answers back.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/tensor.h"

namespace onnxpipe::detail {

// The common size of axis 0 of every tensor; Error(USAGE) when a tensor has no axis 0 or the sizes differ.
int64_t batch_size(const std::map<std::string, Tensor>& batch);

// Consecutive slices of `size` rows (the last one may be shorter) of every tensor; those of a borrowed tensor are views
// sharing its owner.
std::vector<std::map<std::string, Tensor>> split_batch(const std::map<std::string, Tensor>& batch, int64_t size);

// Concatenates each named tensor along axis 0 over the parts. Error(USAGE) when a tensor has no axis 0 or its other
// dimensions or dtype differ between parts; expected_rows[i] (when given) is the number of rows part i must have.
std::map<std::string, Tensor> concat_batches(const std::vector<std::map<std::string, Tensor>>& parts,
                                             const std::vector<int64_t>& expected_rows = {});

}  // namespace onnxpipe::detail
