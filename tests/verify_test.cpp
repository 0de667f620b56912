// verify on graphs built in code: the tolerances follow the graph's precision, every statistic is reported, and a
// mismatch names where the pieces first part from the model.
#include "onnxpipe/verify.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "error_stats.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "support/model_builder.h"
#include "support/tamper.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

Plan split(const std::string& model, const fs::path& out, int parts) {
  SplitOptions options;
  options.parts = parts;
  options.balance = Balance::FLOPS;
  options.output_dir = out.string();
  options.force = true;
  options.dims = {{"batch", 4}};
  return split_model(model, options);
}

Tensor floats(const std::vector<float>& values) {
  Tensor tensor = make_tensor(DType::FLOAT, {int64_t(values.size())});
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

Tensor halves(const std::vector<uint16_t>& bits) {
  Tensor tensor = make_tensor(DType::FLOAT16, {int64_t(bits.size())});
  std::memcpy(tensor.data.data(), bits.data(), tensor.data.size());
  return tensor;
}

}  // namespace

TEST(ErrorStats, AbsRelMeanMedianAndP99) {
  const Tensor expected = floats({1, 2, 4, 0});
  const Tensor actual = floats({1, 2.5f, 3, 0.25f});
  const ErrorStats stats = detail::error_stats(actual, expected);
  EXPECT_EQ(stats.elements, 4);
  EXPECT_DOUBLE_EQ(stats.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(stats.mean_abs, (0 + 0.5 + 1 + 0.25) / 4);
  EXPECT_DOUBLE_EQ(stats.median_abs, 0.25);  // nearest rank: the 2nd of 0, 0.25, 0.5, 1
  EXPECT_DOUBLE_EQ(stats.p99_abs, 1.0);
  EXPECT_DOUBLE_EQ(stats.max_rel, 0.25);  // the element whose expected value is 0 has no relative error
  EXPECT_DOUBLE_EQ(stats.mean_rel, (0 + 0.25 + 0.25) / 3);
}

TEST(ErrorStats, UlpsCountRepresentableValuesBetween) {
  // float16 1.0 is 0x3c00; its neighbours up are 0x3c01, 0x3c02; -0 and +0 are 0 apart, +-smallest subnormal 2.
  EXPECT_EQ(detail::error_stats(halves({0x3c02}), halves({0x3c00})).max_ulp, 2);
  EXPECT_EQ(detail::error_stats(halves({0x8000}), halves({0x0000})).max_ulp, 0);
  EXPECT_EQ(detail::error_stats(halves({0x8001}), halves({0x0001})).max_ulp, 2);
  float one = 1, next = std::nextafter(1.0f, 2.0f);
  EXPECT_EQ(detail::error_stats(floats({next}), floats({one})).max_ulp, 1);
  Tensor a = make_tensor(DType::INT64, {2}), b = make_tensor(DType::INT64, {2});
  a.as<int64_t>()[1] = 7;
  EXPECT_EQ(detail::error_stats(a, b).max_ulp, 7);  // integers must be exact: the plain difference
  const Tensor nan = floats({std::nanf("")});
  EXPECT_EQ(detail::error_stats(nan, nan).max_abs, 0);
  EXPECT_TRUE(std::isinf(detail::error_stats(nan, floats({1})).max_abs));
}

TEST(ErrorStats, CheckedStatisticFollowsPolygraphy) {
  // One outlier among many exact elements: elementwise and max fail, mean and median pass.
  std::vector<float> values(100, 1.0f), near = values;
  near[0] = 2.0f;
  const Tensor expected = floats(values), actual = floats(near);
  const ErrorStats stats = detail::error_stats(actual, expected);
  const Difference diff = compare(actual, expected, 1e-3, 1e-3);
  EXPECT_FALSE(detail::stat_passes(ErrorStat::ELEMENTWISE, stats, diff, 1e-3, 1e-3));
  EXPECT_FALSE(detail::stat_passes(ErrorStat::MAX, stats, diff, 1e-3, 1e-3));
  EXPECT_FALSE(detail::stat_passes(ErrorStat::MEAN, stats, diff, 1e-3, 1e-3));  // mean abs 0.01
  EXPECT_TRUE(detail::stat_passes(ErrorStat::MEAN, stats, diff, 1e-3, 2e-2));
  EXPECT_TRUE(detail::stat_passes(ErrorStat::MEDIAN, stats, diff, 1e-3, 1e-3));
  EXPECT_EQ(error_stat_from_name("elemwise"), ErrorStat::ELEMENTWISE);
  EXPECT_THROW(error_stat_from_name("p99"), Error);
}

TEST(Verify, Float16SplitPassesWithFloat16TolerancesAndReportsUlps) {
  test::TempDir dir;
  const std::string model = test::half_mlp(dir.path().string());
  split(model, dir.path() / "pieces", 3);
  VerifyOptions options;
  options.dims = {{"batch", 4}};
  const VerifyReport report = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_DOUBLE_EQ(report.tolerance.rtol, 1e-3);
  EXPECT_DOUBLE_EQ(report.tolerance.atol, 1e-3);
  EXPECT_NE(report.tolerance.why.find("float16"), std::string::npos) << report.tolerance.why;
  ASSERT_EQ(report.outputs.size(), 1u);
  const OutputCheck& y = report.outputs[0];
  EXPECT_TRUE(report.pass()) << "max abs " << y.stats.max_abs;
  // The cuts round to float16 where the whole model keeps fp32: not bitwise, some float16 ULPs off.
  EXPECT_FALSE(y.diff.bitwise_equal);
  EXPECT_GT(y.stats.max_ulp, 0);
  EXPECT_TRUE(std::isfinite(y.stats.max_ulp));
  EXPECT_GT(y.stats.p99_abs, 0);
  EXPECT_LE(y.stats.p99_abs, y.stats.max_abs);

  // fp32's tolerances, given, do not hold: the divergence is the rounding at a cut, within float16's tolerances.
  options.rtol = 1e-5;
  options.atol = 1e-6;
  const VerifyReport strict = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_EQ(strict.tolerance.why, "given");
  ASSERT_FALSE(strict.pass());
  ASSERT_TRUE(strict.divergence.has_value());
  EXPECT_TRUE(strict.divergence->rounding) << strict.divergence->message;
  EXPECT_EQ(strict.divergence->precision, "float16");
  EXPECT_GE(strict.divergence->piece, 1);
  EXPECT_NE(strict.divergence->message.find("rounding at cut " + std::to_string(strict.divergence->piece)),
            std::string::npos)
      << strict.divergence->message;
}

// Asked between its costly steps, verify stops at whichever one first says yes.
TEST(Verify, CancelledAtAnyStepStopsThere) {
  test::TempDir dir;
  const std::string model = test::half_mlp(dir.path().string());
  const std::string pieces = (dir.path() / "pieces").string();
  split(model, pieces, 3);
  VerifyOptions options;
  options.dims = {{"batch", 4}};
  options.rtol = 1e-5;  // a mismatch: the divergence is located too
  options.atol = 1e-6;
  int questions = 0;
  options.cancelled = [&questions] { return ++questions < 0; };
  EXPECT_FALSE(verify_split(model, pieces, options).pass());
  const int asked = questions;
  EXPECT_GE(asked, 3 + 2) << "asked before each piece runs, the model's run and the divergence's";
  for (int stop = 1; stop <= asked; ++stop) {
    questions = 0;
    options.cancelled = [&questions, stop] { return ++questions >= stop; };
    try {
      verify_split(model, pieces, options);
      ADD_FAILURE() << "not cancelled at question " << stop;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::CANCELLED) << error.what();
      EXPECT_EQ(questions, stop) << "stopped at once";
    }
  }
}

TEST(Verify, Float16SplitWithABrokenPieceFailsAndNamesThatPiece) {
  test::TempDir dir;
  const std::string model = test::half_mlp(dir.path().string());
  const Plan plan = split(model, dir.path() / "pieces", 3);
  const std::string broken = test::shift_a_weight((dir.path() / "pieces").string(), 0.5f);
  VerifyOptions options;
  options.dims = {{"batch", 4}};
  const VerifyReport report = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_FALSE(report.pass());
  ASSERT_TRUE(report.divergence.has_value());
  EXPECT_EQ(plan.pieces.at(size_t(report.divergence->piece)).file, fs::path(broken).filename().string());
  EXPECT_FALSE(report.divergence->is_input);
  EXPECT_FALSE(report.divergence->rounding);
  EXPECT_NE(report.divergence->message.find("while its inputs match: the piece computes differently"),
            std::string::npos)
      << report.divergence->message;
}

TEST(Verify, Float32DivergenceNamesTheFirstPieceThatComputesDifferently) {
  test::TempDir dir;
  const std::string model = test::skip_connections(dir.path().string());
  const Plan plan = split(model, dir.path() / "pieces", 3);
  const std::string broken = test::shift_a_weight((dir.path() / "pieces").string());
  VerifyOptions options;
  options.dims = {{"batch", 4}};
  const VerifyReport report = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_NE(report.tolerance.why.find("float32"), std::string::npos);
  ASSERT_FALSE(report.pass());
  ASSERT_TRUE(report.divergence.has_value());
  const Divergence& found = *report.divergence;
  EXPECT_EQ(plan.pieces.at(size_t(found.piece)).file, fs::path(broken).filename().string());
  EXPECT_GT(found.max_abs, 0);
  EXPECT_EQ(found.message.rfind("piece " + std::to_string(found.piece) + " output " + found.value + " differs", 0), 0u)
      << found.message;
  EXPECT_NE(found.message.find("the piece computes differently"), std::string::npos);
}

TEST(Verify, GivenExpectedOutputsAreTheReference) {
  test::TempDir dir;
  const std::string model = test::skip_connections(dir.path().string());
  split(model, dir.path() / "pieces", 2);
  VerifyOptions options;
  options.dims = {{"batch", 2}};
  options.inputs["x"] = make_tensor(DType::FLOAT, {2, 8});
  options.expected["y"] = make_tensor(DType::FLOAT, {2, 8});  // x = 0 through the model: y = 0 too (no biases)
  VerifyReport report = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_EQ(report.reference, "expected");
  EXPECT_TRUE(report.pass());
  options.expected["y"].as<float>()[3] = 1.0f;
  report = verify_split(model, (dir.path() / "pieces").string(), options);
  EXPECT_FALSE(report.pass());
  EXPECT_EQ(report.outputs[0].diff.mismatches, 1);
  options.expected["nope"] = make_tensor(DType::FLOAT, {1});
  try {
    verify_split(model, (dir.path() / "pieces").string(), options);
    FAIL() << "an expected value for no output is an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(error.what()).find("'nope'"), std::string::npos);
  }
}

TEST(Verify, TensorDirReadsNumberedPbOrNamedNpy) {
  test::TempDir dir;
  std::vector<ValueDesc> values(2);
  values[0].name = "a";
  values[1].name = "b";
  write_npy(dir.path().string() + "/b.npy", floats({3, 4}));
  EXPECT_THROW(read_tensor_dir(dir.path().string(), {values[0]}, "input_"), Error);
  const auto tensors = read_tensor_dir(dir.path().string(), values, "input_");
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors.at("b").shape, (std::vector<int64_t>{2}));
}
