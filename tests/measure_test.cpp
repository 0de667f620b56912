// What only a run in ONNX Runtime tells: value sizes that shape inference cannot know. The run makes zeros in place of
// the weights stored on disk; the sizes must still be those of the model.
#include "measure.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;

class Measure : public ::testing::Test {
 protected:
  test::TempDir temp_;
  std::string dir_ = temp_.str();
};

std::vector<int64_t> dims_of(const ValueDesc& v) {
  std::vector<int64_t> dims;
  for (const Dim& d : v.dims) dims.push_back(d.value);
  return dims;
}

// h = x @ big (big stored on disk, replaced by zeros for the run) and positions = Range(0, Shape(x)[0], 1): a
// length that onnx's inference cannot tell, from data, like GPT-2's position ids.
std::string positions_model(const std::string& dir, bool external) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 128});
  b.initializer(test::random_tensor("big", {128, 256}, 5));  // 128 KiB
  b.initializer(test::int64_tensor("zero", {}, {0}));
  b.initializer(test::int64_tensor("one", {}, {1}));
  b.node("MatMul", {"x", "big"}, {"h"});
  b.node("Relu", {"h"}, {"y"});
  b.node("Shape", {"x"}, {"shape"});
  b.node("Gather", {"shape", "zero"}, {"n"});
  b.node("Range", {"zero", "n", "one"}, {"positions"});
  b.output("y", DType::FLOAT, {"batch", 256});
  b.output("positions", DType::INT64, {"n"});
  return b.save(dir + (external ? "/positions_external.onnx" : "/positions.onnx"), external);
}

TEST_F(Measure, RunValueTypesSizesDataDependentValuesWithZeroedWeights) {
  for (const bool external : {false, true}) {
    const Model model = Model::load(positions_model(dir_, external));
    const auto types = run_value_types(model, {{"batch", 3}}, {}, {"h", "n", "positions"});
    ASSERT_EQ(types.size(), 3u) << "external " << external;
    EXPECT_EQ(types.at("h").dtype, DType::FLOAT);
    EXPECT_EQ(dims_of(types.at("h")), (std::vector<int64_t>{3, 256}));
    EXPECT_EQ(types.at("h").bytes, 3 * 256 * 4);
    EXPECT_EQ(types.at("n").dtype, DType::INT64);
    EXPECT_TRUE(dims_of(types.at("n")).empty());
    EXPECT_EQ(types.at("positions").dtype, DType::INT64);
    EXPECT_EQ(dims_of(types.at("positions")), (std::vector<int64_t>{3}));
    EXPECT_EQ(types.at("positions").bytes, 3 * 8);
  }
}

}  // namespace
}  // namespace onnxpipe::detail
