// A serialized onnx.TensorProto through read_tensor_pb.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onnxpipe::fuzz::read_consistent_tensor("tensor.pb", onnxpipe::read_tensor_pb, data, size);
  return 0;
}
