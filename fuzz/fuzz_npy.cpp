// A .npy byte string through read_npy.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onnxpipe::fuzz::read_consistent_tensor("tensor.npy", onnxpipe::read_npy, data, size);
  return 0;
}
