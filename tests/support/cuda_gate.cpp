#include "support/cuda_gate.h"

#include <cstdlib>
#include <exception>
#include <filesystem>

#include "runtime.h"
#include "support/model_builder.h"

namespace onnxpipe::test {

const std::string& cuda_unavailable() {
  static const std::string reason = [] {
    const std::string dir = temp_dir("cuda_gate");
    std::string why;
    try {
      ModelBuilder b;
      b.input("x", DType::FLOAT, {2});
      b.node("Relu", {"x"}, {"y"});
      b.output("y", DType::FLOAT, {2});
      detail::SessionConfig config;
      config.device = "cuda:0";
      detail::Session probe(b.save(dir + "/probe.onnx"), config);
    } catch (const std::exception& e) {
      // Any failure: no device, no driver, a provider or cuDNN that does not load.
      why = *e.what() ? e.what() : "creating a cuda:0 session failed";
    } catch (...) {
      why = "creating a cuda:0 session failed";
    }
    std::filesystem::remove_all(dir);
    return why;
  }();
  return reason;
}

bool cuda_required() {
  const char* value = std::getenv("ONNXPIPE_REQUIRE_CUDA");
  return value && std::string(value) == "1";
}

}  // namespace onnxpipe::test
