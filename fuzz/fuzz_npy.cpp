// A .npy byte string through read_npy. What it returns must be a consistent tensor that write_npy takes back.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "onnxpipe/tensor.h"

using namespace onnxpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::input_file("tensor.npy", data, size);
  Tensor tensor;
  if (!fuzz::accepts([&] { tensor = read_npy(path); })) return 0;
  fuzz::require(fuzz::accepts([&] { check_tensor("fuzz", tensor); }), "read_npy returns a consistent tensor");
  return 0;
}
