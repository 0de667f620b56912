#include "support/models_dir.h"

#include <cstdlib>

namespace onnxpipe::test {

std::filesystem::path models_dir() {
  const char* env = std::getenv("ONNXPIPE_MODELS");
  return env ? std::filesystem::path(env) : std::filesystem::path(ONNXPIPE_SOURCE_DIR) / "models";
}

}  // namespace onnxpipe::test
