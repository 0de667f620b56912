#include "onnxpipe/error.h"

namespace onnxpipe {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::USAGE:
      return "usage";
    case ErrorCode::INVALID_MODEL:
      return "invalid_model";
    case ErrorCode::IO:
      return "io";
    case ErrorCode::RUNTIME:
      return "runtime";
    case ErrorCode::VERIFY_MISMATCH:
      return "verify_mismatch";
    case ErrorCode::CANCELLED:
      return "cancelled";
    case ErrorCode::INTERNAL:
      return "internal";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

Error Error::with_context(const std::string& context) const { return Error(code_, context + ": " + what()); }

int exit_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::USAGE:
      return 2;
    case ErrorCode::VERIFY_MISMATCH:
      return 3;
    default:
      return 1;
  }
}

}  // namespace onnxpipe
