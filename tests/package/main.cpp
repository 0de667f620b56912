// Uses the installed headers and links the installed static library. Constructing a Pipeline and splitting a model
// reference the runtime (ONNX Runtime) and model I/O (ONNX, protobuf) objects, so the link proves the config hands
// the library's own dependencies on to its consumers; a missing file makes each fail cleanly with an onnxpipe::Error.
#include <onnxpipe/error.h>
#include <onnxpipe/pipeline.h>
#include <onnxpipe/split.h>

#include <cstdio>

int main() {
  if (onnxpipe::balance_from_name("flops") != onnxpipe::Balance::FLOPS) return 1;

  onnxpipe::SplitOptions split;
  split.parts = 2;
  split.balance = onnxpipe::Balance::FLOPS;
  split.output_dir = "onnxpipe_consumer_out";
  try {
    onnxpipe::split_model("no_such_model.onnx", split);
    return 2;
  } catch (const onnxpipe::Error& e) {
    std::printf("split_model: %s: %s\n", onnxpipe::error_code_name(e.code()), e.what());
  }

  onnxpipe::PipelineOptions options;
  options.devices = {"cpu:1"};
  try {
    onnxpipe::Pipeline pipeline("no_such_plan_dir", options);
    return 3;
  } catch (const onnxpipe::Error& e) {
    std::printf("Pipeline: %s: %s\n", onnxpipe::error_code_name(e.code()), e.what());
  }
  std::printf("onnxpipe consumer: ok (balance %s)\n", onnxpipe::balance_name(split.balance));
  return 0;
}
