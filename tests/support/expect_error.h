#pragma once
// The code of the onnxpipe::Error that `f` throws (its message in *message when given); a test failure, and
// INTERNAL, when it throws none.
#include <gtest/gtest.h>

#include <string>

#include "onnxpipe/error.h"

namespace onnxpipe::test {

template <typename F>
ErrorCode error_code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no onnxpipe::Error thrown";
  return ErrorCode::INTERNAL;
}

}  // namespace onnxpipe::test
