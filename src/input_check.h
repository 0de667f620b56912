#pragma once
// A request's inputs checked against the model's declared inputs before anything is enqueued: names, dtypes, ranks,
// fixed dims, and symbolic dims that must agree across inputs. Error(USAGE) names the input and what is wrong.
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/plan.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe::detail {

void validate_inputs(const std::vector<ValueDesc>& declared, const std::map<std::string, Tensor>& inputs);

}  // namespace onnxpipe::detail
