#pragma once
// Sequences of tensors: the values of models whose inputs, outputs or crossing values are ONNX sequences
// (SequenceConstruct, SplitToSequence, Loop over a sequence...). Plain data, no ORT or protobuf types.
#include <string>
#include <vector>

#include "onnxpipe/tensor.h"

namespace onnxpipe {

// An ONNX sequence of tensors, all of one dtype (their shapes may differ). ONNX Runtime cannot make an empty
// sequence from values (it would not know the dtype), so onnxpipe hands only non-empty ones to it.
struct TensorSequence {
  DType dtype = DType::UNDEFINED;
  std::vector<Tensor> tensors;
};

// A serialized onnx.SequenceProto of tensors, as the ONNX test data ships sequence values (input_K.pb). Errors name
// the file: Error(IO) unreadable, Error(INVALID_DATA) not a SequenceProto, not of tensors, or elements whose dtype is
// not the sequence's.
TensorSequence read_sequence_pb(const std::string& path);

}  // namespace onnxpipe
