#pragma once
// The onnx 1.12 checker on a written model file, for tests: the library never needs it (pieces are checked by
// loading them into ONNX Runtime), the tests use it to see that pieces are valid ONNX.
#include <string>

namespace onnxpipe::test {

// Checks the model at `onnx_path` when onnx 1.12 knows its IR version and every opset it imports (functions
// included); returns false when skipped. Throws Error(INVALID_MODEL) naming the file when the checker rejects it,
// Error(IO) when it cannot be read.
bool check_onnx_file(const std::string& onnx_path);

}  // namespace onnxpipe::test
