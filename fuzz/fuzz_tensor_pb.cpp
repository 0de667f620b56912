// A serialized onnx.TensorProto through read_tensor_pb. What it returns must be a consistent tensor.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "onnxpipe/tensor.h"

using namespace onnxpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::input_file("tensor.pb", data, size);
  Tensor tensor;
  if (!fuzz::accepts([&] { tensor = read_tensor_pb(path); })) return 0;
  fuzz::require(fuzz::accepts([&] { check_tensor("fuzz", tensor); }), "read_tensor_pb returns a consistent tensor");
  return 0;
}
