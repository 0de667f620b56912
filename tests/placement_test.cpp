// Placement: splits that fit the devices' memory, the error when none does (nothing written), the report plan makes
// without writing, and a saved plan re-checked against smaller devices.
#include "onnxpipe/placement.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace onnxpipe {
namespace {

constexpr int64_t WEIGHT = 64 * 64 * 4;  // each MatMul's weight

// x[1,64] through six MatMuls of equal weights: cost balance cuts in the middle.
std::string matmul_chain(const test::TempDir& dir) {
  test::ModelBuilder builder;
  builder.input("x", DType::FLOAT, {1, 64});
  std::string previous = "x";
  for (int i = 0; i < 6; ++i) {
    const std::string weight = "w" + std::to_string(i), out = "h" + std::to_string(i);
    builder.initializer(test::random_tensor(weight, {64, 64}, i + 1));
    builder.node("MatMul", {previous, weight}, {out});
    previous = out;
  }
  builder.output(previous, DType::FLOAT, {1, 64});
  return builder.save(dir.file("chain.onnx"));
}

PlacementOptions devices(const std::string& list) {
  PlacementOptions options;
  options.devices = parse_devices(list);
  options.cpu_overhead = 0;  // the arithmetic below is the model's alone
  return options;
}

SplitOptions split_options(const test::TempDir& dir, const std::string& list) {
  SplitOptions options;
  options.parts = static_cast<int>(parse_devices(list).size());
  options.balance = Balance::FLOPS;
  options.output_dir = dir.file("out");
  options.placement = devices(list);
  return options;
}

TEST(Placement, ASmallFirstDeviceMovesTheCutAndThePiecesVerify) {
  test::TempDir dir;
  const std::string model = matmul_chain(dir);
  SplitOptions balanced = split_options(dir, "cpu:1,cpu:1");
  EXPECT_EQ(split_model(model, balanced).pieces[0].node_count, 3);

  // One weight, its activations (256 B in, 256 B out) and two queued inputs: room for one node only.
  SplitOptions capped = split_options(dir, "cpu:1=" + std::to_string(WEIGHT + 1024) + ",cpu:1");
  capped.force = true;
  const Plan plan = split_model(model, capped);
  EXPECT_EQ(plan.pieces[0].node_count, 1);
  EXPECT_EQ(plan.pieces[1].node_count, 5);
  EXPECT_TRUE(verify_split(model, capped.output_dir, {}).pass());
}

TEST(Placement, InfeasibleCapsNameTheShortfallAndWriteNothing) {
  test::TempDir dir;
  const std::string model = matmul_chain(dir);
  SplitOptions options = split_options(dir, "cpu:1=20KiB,cpu:1=20KiB");
  try {
    split_model(model, options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    const std::string message = e.what();
    EXPECT_NE(message.find("needs"), std::string::npos) << message;
    EXPECT_NE(message.find("on cpu:1 (cap 20 KiB)"), std::string::npos) << message;
    EXPECT_NE(message.find("with these caps the model needs at least 6 devices"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(options.output_dir));
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename(), "chain.onnx") << "left behind: " << entry.path();
}

TEST(Placement, PlanReportsEveryStageAndWritesNothing) {
  test::TempDir dir;
  const std::string model = matmul_chain(dir);
  SplitOptions options = split_options(dir, "cpu:1=40KiB,cpu:1=80KiB");
  const PlacementReport report = plan_placement(model, options, options.placement);
  ASSERT_EQ(report.stages.size(), 2u);
  int64_t nodes = 0;
  for (const StageMemory& stage : report.stages) {
    nodes += stage.node_count;
    EXPECT_EQ(stage.weights, stage.node_count * WEIGHT);
    EXPECT_EQ(stage.activations, 512);
    EXPECT_EQ(stage.in_flight, 2 * 256);
    EXPECT_EQ(stage.total, stage.weights + stage.activations + stage.in_flight + stage.overhead);
    EXPECT_GE(stage.headroom(), 0);
    EXPECT_EQ(stage.device, "cpu:1");
  }
  EXPECT_EQ(nodes, 6);
  EXPECT_EQ(report.stages[0].capacity, 40 << 10);
  EXPECT_EQ(report.stages[0].node_count, 2);  // 3 weights are 48 KiB
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST(Placement, APlanIsRefusedBySmallerDevicesBeforeAnythingLoads) {
  test::TempDir dir;
  const std::string model = matmul_chain(dir);
  SplitOptions options = split_options(dir, "cpu:1,cpu:1");
  const Plan plan = split_model(model, options);
  const std::vector<StageMemory> fit = check_plan_fits(plan, devices("cpu:1=1MiB,cpu:1=1MiB"));
  ASSERT_EQ(fit.size(), 2u);
  EXPECT_EQ(fit[1].weights, 3 * WEIGHT);
  try {
    check_plan_fits(plan, devices("cpu:1=1MiB,cpu:1=40KiB"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("piece 1 needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(cap 40 KiB)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_plan_fits(plan, devices("cpu:1")), Error);  // one device for two pieces
}

TEST(Placement, CapacitiesAreTheGivenOnesAndACpuWithoutOneIsUnbounded) {
  EXPECT_EQ(device_capacities(devices("cpu:1=1GiB,cpu:1,cpu=512MB")),
            (std::vector<int64_t>{int64_t(1) << 30, -1, 512000000}));
}

}  // namespace
}  // namespace onnxpipe
