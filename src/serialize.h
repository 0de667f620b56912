#pragma once
// Model I/O, part 5: a loaded model as bytes, behind Model::serialize: as it is, or as the sizing model where each
// large weight is a ConstantOfShape node making zeros of its dtype and shape. A model-I/O file: its .cpp includes
// onnx headers.
#include <map>
#include <string>
#include <vector>

#include "model_impl.h"

namespace onnxpipe::detail {

std::string serialize_model(const Model::Impl& model, const std::vector<std::string>& extra_outputs,
                            Model::Weights weights, const std::vector<std::string>& shape_outputs,
                            const std::map<std::string, DType>& typed);

}  // namespace onnxpipe::detail
