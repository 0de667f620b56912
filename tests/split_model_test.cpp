// The seed's three models (exported by scripts/export_models.py into $ONNXPIPE_MODELS or models/), split into 2 and
// 4 pieces with every balance criterion: the pieces reproduce the model (on CPU bitwise, or within 1e-5).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "model_io.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/models_dir.h"
#include "support/onnx_check.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

struct Case {
  std::string model;
  int parts;
  Balance balance;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return info.param.model + "_" + std::to_string(info.param.parts) + "_" + balance_name(info.param.balance);
}

void PrintTo(const Case& c, std::ostream* out) { *out << case_name({c, 0}); }

// Sequence length 8 for GPT-2, batch 1: every symbolic dim of a 2-D int64 input's second axis is the sequence.
std::map<std::string, int64_t> dims_for(const fs::path& model) {
  std::map<std::string, int64_t> dims;
  for (const auto& input : detail::Model::load(model.string()).graph().inputs)
    if (input.dtype == DType::INT64 && input.dims.size() == 2 && !input.dims[1].param.empty())
      dims[input.dims[1].param] = 8;
  return dims;
}

class SplitModel : public testing::TestWithParam<Case> {};

TEST_P(SplitModel, PiecesReproduceTheModel) {
  const Case& param = GetParam();
  const fs::path model = test::models_dir() / (param.model + ".onnx");
  if (!fs::exists(model)) GTEST_SKIP() << model << " is absent: run `make models` to export it";
  const test::TempDir dir;  // a fresh one: several test runs may share the machine
  const fs::path out = dir.path() / "pieces";
  SplitOptions options;
  options.parts = param.parts;
  options.balance = param.balance;
  options.dims = dims_for(model);
  options.output_dir = out.string();
  options.force = true;
  options.profile_runs = 5;
  const Plan plan = split_model(model.string(), options);
  ASSERT_EQ(plan.parts(), param.parts);
  // The ONNX checker reads every piece back whole: done on the small models only.
  const bool check = fs::file_size(model) < (100 << 20);
  for (const auto& piece : plan.pieces) {
    EXPECT_GT(piece.node_count, 0);
    if (check) {
      EXPECT_NO_THROW(test::check_onnx_file((out / piece.file).string())) << piece.file;
    }
  }

  VerifyOptions verify;
  verify.dims = options.dims;
  verify.rtol = 0;
  verify.atol = 1e-5;
  const VerifyReport report = verify_split(model.string(), out.string(), verify);
  ASSERT_FALSE(report.outputs.empty());
  for (const auto& output : report.outputs) {
    EXPECT_TRUE(output.diff.pass()) << output.name << ": max abs " << output.diff.max_abs;
    EXPECT_LE(output.diff.max_abs, 1e-5) << output.name;
  }
}

std::vector<Case> cases() {
  std::vector<Case> all;
  for (const char* model : {"mobilenet_v2", "resnet18", "gpt2"})
    for (int parts : {2, 4})
      for (Balance balance : {Balance::BYTES, Balance::FLOPS, Balance::TIME}) all.push_back({model, parts, balance});
  return all;
}

INSTANTIATE_TEST_SUITE_P(Seed, SplitModel, testing::ValuesIn(cases()), case_name);

}  // namespace

// The exported files are the models torch computed: their pieces give torch's outputs (saved by the export script
// beside each model, batch 2).
class SeedModel : public testing::TestWithParam<std::string> {};

TEST_P(SeedModel, PiecesGiveTorchOutputs) {
  const fs::path dir = test::models_dir();
  const fs::path model = dir / (GetParam() + ".onnx");
  const fs::path input = dir / (GetParam() + ".input.npy"), output = dir / (GetParam() + ".output.npy");
  if (!fs::exists(model) || !fs::exists(input) || !fs::exists(output))
    GTEST_SKIP() << model << " or its torch reference is absent: run `make models`";
  auto desc = detail::Model::load(model.string()).graph();
  const std::string input_name = desc.inputs.at(0).name, output_name = desc.outputs.at(0).name;
  const test::TempDir scratch;
  const fs::path out = scratch.path() / "pieces";
  SplitOptions options;
  options.parts = 3;
  options.balance = Balance::FLOPS;
  options.output_dir = out.string();
  options.force = true;
  split_model(model.string(), options);
  const Tensor expected = read_npy(output.string());
  const auto produced = run_pieces(out.string(), {{input_name, read_npy(input.string())}});
  const Difference diff = compare(produced.at(output_name), expected, 1e-3, 1e-4);
  EXPECT_TRUE(diff.pass()) << "max abs " << diff.max_abs << ", mismatches " << diff.mismatches;
}

INSTANTIATE_TEST_SUITE_P(Torch, SeedModel, testing::Values("mobilenet_v2", "resnet18", "gpt2"));
