#pragma once
// Inside the library: a message to the caller's log callback (include/onnxpipe/log.h).
#include <string>

#include "onnxpipe/log.h"

namespace onnxpipe::detail {

bool log_enabled(LogLevel level);  // false when nobody listens at this level: skip building the message
void log(LogLevel level, const std::string& text);

}  // namespace onnxpipe::detail
