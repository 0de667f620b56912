#pragma once
// The one exception type of onnxpipe: a code (what kind of failure, which CLI exit status) and a message that carries
// its context, outermost first: "stage 2 (piece_2.onnx, cuda:1): input 'x': expected float, got int64".
#include <stdexcept>
#include <string>

namespace onnxpipe {

enum class ErrorCode {
  USAGE,            // bad arguments or options (CLI exit 2)
  INVALID_MODEL,    // not ONNX, truncated, cyclic, dangling input, bad plan.json
  IO,               // a file that cannot be read or written
  RUNTIME,          // ONNX Runtime or device failure
  VERIFY_MISMATCH,  // the pieces do not reproduce the model (CLI exit 3)
  CANCELLED,        // a request dropped because its pipeline shut down
  INTERNAL,         // a bug of ours
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }
  // The same error with "context: " in front of its message.
  Error with_context(const std::string& context) const;

 private:
  ErrorCode code_;
};

// CLI exit status for an error code: 2 usage, 3 verification mismatch, 1 otherwise.
int exit_status(ErrorCode code);

}  // namespace onnxpipe
