#pragma once
// Model I/O, part 4: ONNX shape inference (onnx 1.12) on a weightless copy of a loaded model, behind
// Model::infer_shapes (see there for what it returns). A model-I/O file: its .cpp includes onnx headers.
#include <cstdint>
#include <map>
#include <string>

#include "model_impl.h"

namespace onnxpipe::detail {

std::map<std::string, ValueDesc> infer_value_types(const Model::Impl& model, const std::map<std::string, int64_t>& dims,
                                                   bool* complete);

}  // namespace onnxpipe::detail
