// A program written against the installed package the way README's "Library" section shows: split a model, prove
// the pieces, pipeline a request. Its link proves the config hands onnxpipe's own dependencies (ONNX Runtime, ONNX,
// protobuf) on to consumers; its run proves they work from the install prefix.
//
//   consumer MODEL OUT_DIR   the README flow on MODEL (split in 2 into OUT_DIR)
//   consumer                 only that a missing model fails cleanly with an onnxpipe::Error
#include <onnxpipe/error.h>
#include <onnxpipe/pipeline.h>
#include <onnxpipe/split.h>
#include <onnxpipe/verify.h>

#include <cstdio>
#include <future>

int main(int argc, char** argv) {
  try {
    onnxpipe::SplitOptions missing;
    missing.output_dir = "onnxpipe_consumer_missing";
    onnxpipe::split_model("no_such_model.onnx", missing);
    return 2;
  } catch (const onnxpipe::Error& e) {
    std::printf("missing model: %s: %s\n", onnxpipe::error_code_name(e.code()), e.what());
  }
  if (argc < 3) return 0;
  const char* model = argv[1];
  const char* out = argv[2];
  try {
    onnxpipe::SplitOptions split;
    split.parts = 2;
    split.balance = onnxpipe::Balance::TIME;  // measured per node with ORT's profiler on split.device
    split.output_dir = out;
    onnxpipe::Plan plan = onnxpipe::split_model(model, split);  // pieces + plan.json

    onnxpipe::VerifyReport proof = onnxpipe::verify_split(model, out, {});
    if (!proof.pass()) return 3;  // every output compared

    onnxpipe::PipelineOptions options;
    options.devices = {"cpu:1", "cpu:1"};  // one per stage
    onnxpipe::Pipeline pipeline(out, options);
    const onnxpipe::TensorMap inputs = onnxpipe::make_inputs(plan.model_inputs, {});
    std::future<onnxpipe::TensorMap> result = pipeline.submit(inputs);  // results in order
    const onnxpipe::TensorMap outputs = result.get();
    const onnxpipe::TensorMap chained = onnxpipe::run_pieces(out, inputs);
    for (const auto& [name, tensor] : chained) {
      if (!outputs.count(name) || outputs.at(name).data != tensor.data) return 4;
    }
    std::printf("consumer: %d pieces of %s reproduce it; the pipeline answered %zu outputs\n", plan.parts(), model,
                outputs.size());
  } catch (const onnxpipe::Error& e) {
    std::printf("consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
