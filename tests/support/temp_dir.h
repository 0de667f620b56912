#pragma once
// The tests' scratch directory: a fresh one per test, removed with all it holds when the test ends.
#include <filesystem>
#include <string>

#include "staging.h"

namespace onnxpipe::test {

// The library's detail::TempDir, named after the running test ("onnxpipe_<Suite>_<Test>_XXXXXX").
class TempDir : public detail::TempDir {
 public:
  TempDir();
  std::string file(const std::string& name) const { return (path() / name).string(); }
};

}  // namespace onnxpipe::test
