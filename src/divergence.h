#pragma once
// Where a split first parts from its model: the whole model run once more with every crossing value exposed, each
// piece's inputs and outputs compared with those values in pipeline order.
#include <map>
#include <optional>
#include <string>

#include "model_io.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace onnxpipe::detail {

// `pool`: what the chained pieces made from `inputs` (run_piece_chain). Values that are not tensors (sequences) are
// not compared. Empty when every compared value matches under `tolerance` and `stat`.
std::optional<Divergence> locate_divergence(const Model& model, const Plan& plan,
                                            const std::map<std::string, Value>& inputs,
                                            const std::map<std::string, Value>& pool, const Tolerance& tolerance,
                                            ErrorStat stat);

// The lowest precision among `dtypes` that has tolerances of its own (BFLOAT16 below FLOAT16), else FLOAT.
DType lowest_precision(DType a, DType b);

}  // namespace onnxpipe::detail
