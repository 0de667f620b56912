// The seed's models (label model; skipped with a message when `make models` has not exported them): split in 2 and
// 4, run as CPU pipelines, answers equal to the unsplit model's in sequence mode.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "support/model_builder.h"
#include "support/models_dir.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

class PipelineModelTest : public ::testing::TestWithParam<std::string> {};

std::vector<TensorMap> run_sequence(const std::string& model, int optimization_level,
                                    const std::vector<TensorMap>& requests) {
  PipelineOptions options;
  options.mode = PipelineMode::SEQUENCE;
  options.devices = {"cpu:1"};
  options.optimization_level = optimization_level;
  return Pipeline(model, options).run(requests);
}

// The pieces run one after the other on this thread, host tensors in between: what the pipeline must reproduce.
TensorMap chain_pieces(const std::string& plan_dir, const TensorMap& inputs) {
  const Plan plan = Plan::load(plan_dir);
  TensorMap pool = inputs;
  TensorMap outputs;
  for (const PieceDesc& piece : plan.pieces) {
    detail::SessionConfig config;
    config.device = "cpu:1";
    detail::Session session((fs::path(plan_dir) / piece.file).string(), config);
    TensorMap feed;
    for (const ValueDesc& in : piece.inputs) feed[in.name] = pool.at(in.name);
    for (auto& [name, tensor] : session.run(feed)) pool[name] = std::move(tensor);
  }
  for (const ValueDesc& out : plan.model_outputs) outputs[out.name] = pool.at(out.name);
  return outputs;
}

void expect_equal(const std::vector<TensorMap>& actual, const std::vector<TensorMap>& expected, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    for (const auto& [output, tensor] : expected[i]) {
      const Difference diff = compare(actual[i].at(output), tensor, 0, tolerance);
      if (tolerance == 0) {
        EXPECT_TRUE(diff.bitwise_equal) << what << ": request " << i << " " << output << " max abs " << diff.max_abs;
      } else {
        EXPECT_TRUE(diff.pass()) << what << ": request " << i << " " << output << " max abs " << diff.max_abs;
      }
    }
  }
}

// ORT's full optimisation (level 99) rewrites convolutions to a blocked layout, differently for a whole model and for
// its pieces (about 1e-7 apart on resnet18); up to the extended level (2) the pieces compute exactly what the model
// does. So: bitwise against the unsplit model at level 2, and at level 99 bitwise against the same pieces run one
// by one (the pipeline itself changes nothing) and within 1e-5 of the unsplit model.
TEST_P(PipelineModelTest, PipelineOfTwoAndFourPiecesEqualsSequence) {
  const std::string name = GetParam();
  const std::string model = test::models_dir().string() + "/" + name + ".onnx";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not found: run `make models`";
  const std::string dir = test::temp_dir("pipeline_model_test");
  // A batch of 2 (and 8 tokens for GPT-2).
  std::map<std::string, int64_t> dims = {{"batch", 2}};
  if (name.rfind("gpt2", 0) == 0) dims["seq"] = 8;
  std::vector<TensorMap> requests;
  {
    PipelineOptions probe;
    probe.mode = PipelineMode::SEQUENCE;
    probe.devices = {"cpu:1"};
    const std::vector<ValueDesc> inputs = Pipeline(model, probe).inputs();
    VerifyOptions random;
    random.dims = dims;
    for (uint64_t seed = 0; seed < 3; ++seed) {
      random.seed = seed;
      requests.push_back(make_inputs(inputs, random));
    }
  }
  const std::vector<TensorMap> extended = run_sequence(model, 2, requests);
  const std::vector<TensorMap> full = run_sequence(model, 99, requests);
  for (int parts : {2, 4}) {
    SCOPED_TRACE(name + " n=" + std::to_string(parts));
    SplitOptions split;
    split.parts = parts;
    split.balance = Balance::BYTES;  // the criterion does not change what the pieces compute
    split.dims = dims;
    split.output_dir = dir + "/n" + std::to_string(parts);
    split_model(model, split);
    for (int level : {2, 99}) {
      PipelineOptions options;
      options.devices = {"cpu:1"};
      options.optimization_level = level;
      Pipeline pipeline(split.output_dir, options);
      const std::vector<TensorMap> actual = pipeline.run(requests);
      if (level == 2) {
        expect_equal(actual, extended, 0, "level 2 against the model");
      } else {
        std::vector<TensorMap> chained;
        for (const TensorMap& request : requests) chained.push_back(chain_pieces(split.output_dir, request));
        expect_equal(actual, chained, 0, "level 99 against the pieces chained");
        expect_equal(actual, full, 1e-5, "level 99 against the model");
      }
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(SeedModels, PipelineModelTest, ::testing::Values("resnet18", "mobilenet_v2", "gpt2"));

}  // namespace
}  // namespace onnxpipe
