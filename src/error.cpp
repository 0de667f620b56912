#include "onnxpipe/error.h"

#include <utility>

namespace onnxpipe {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::USAGE:
      return "usage";
    case ErrorCode::INVALID_MODEL:
      return "invalid_model";
    case ErrorCode::INVALID_DATA:
      return "invalid_data";
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

std::string StageContext::label() const {
  return kind + " " + std::to_string(index) + " (" + piece + ", " + device + ")";
}

Error::Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

Error::Error(ErrorCode code, const std::string& message, ArgumentContext argument)
    : std::runtime_error(message), code_(code), argument_(std::move(argument)) {}

Error Error::with_context(const std::string& context) const {
  Error error(code_, context + ": " + what());
  error.stage_ = stage_;
  return error;
}

Error Error::with_stage(const StageContext& stage) const {
  if (stage_) return *this;
  Error error = with_context(stage.label());
  error.stage_ = stage;
  return error;
}

}  // namespace onnxpipe
