#include "onnxpipe/error.h"

#include <array>
#include <utility>

#include "enum_names.h"

namespace onnxpipe {

const char* error_code_name(ErrorCode code) {
  static constexpr std::array<const char*, 9> kNames = {"usage",     "invalid_model", "invalid_data",
                                                        "io",        "runtime",       "verify_mismatch",
                                                        "cancelled", "does_not_fit",  "internal"};
  return detail::enum_name(kNames, code);
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
