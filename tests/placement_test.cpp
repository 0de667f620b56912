// Placement: splits that fit the devices' memory, the error when none does (nothing written), the report plan makes
// without writing, and a saved plan re-checked against smaller devices.
#include "onnxpipe/placement.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "placement.h"
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
  options.measure_memory = false;
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
    EXPECT_EQ(e.code(), ErrorCode::DOES_NOT_FIT);
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
    EXPECT_EQ(e.code(), ErrorCode::DOES_NOT_FIT);
    EXPECT_NE(std::string(e.what()).find("piece 1 needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(cap 40 KiB)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_plan_fits(plan, devices("cpu:1")), Error);  // one device for two pieces
}

TEST(Placement, APlanReCheckedAgainstSmallerCapsIsRefusedBeforeAnySessionLoads) {
  test::TempDir dir;
  const std::string model = matmul_chain(dir);
  SplitOptions options = split_options(dir, "cpu:1,cpu:1");
  split_model(model, options);
  // Piece 1 can no longer load: a pipeline that got as far as loading it would fail with ORT's error.
  { std::ofstream(fs::path(options.output_dir) / "piece_1.onnx") << "not a model"; }
  PipelineOptions pipeline;
  pipeline.devices = {"cpu:1=1GiB", "cpu:1=1MiB"};  // ORT's session overhead alone is more
  try {
    Pipeline refused(options.output_dir, pipeline);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::DOES_NOT_FIT) << e.what();
    EXPECT_NE(std::string(e.what()).find("piece 1 needs"), std::string::npos) << e.what();
  }
  pipeline.devices = {"cpu:1=1GiB", "cpu:1=1GiB"};  // caps that fit: now it loads, and fails loading piece 1
  try {
    Pipeline loaded(options.output_dir, pipeline);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.code(), ErrorCode::DOES_NOT_FIT) << e.what();
    EXPECT_NE(std::string(e.what()).find("piece_1.onnx"), std::string::npos) << e.what();
  }
}

TEST(Placement, ACudaStageArenaIsLimitedToItsPlannedActivationsUnlessTheUserSetIt) {
  StageMemory stage;
  stage.weights = int64_t(1) << 30;  // reserved outside the limit
  stage.activations = 100 << 20;
  stage.in_flight = 20 << 20;
  EXPECT_EQ(detail::arena_limit(stage), (120 << 20) + (60 << 20) + (64 << 20));
  const auto planned = detail::planned_provider_options({{"arena_extend_strategy", "kSameAsRequested"}}, stage);
  EXPECT_EQ(planned.at("gpu_mem_limit"), std::to_string(detail::arena_limit(stage)));
  EXPECT_EQ(planned.at("arena_extend_strategy"), "kSameAsRequested");
  EXPECT_EQ(detail::planned_provider_options({{"gpu_mem_limit", "12345"}}, stage).at("gpu_mem_limit"), "12345");
}

TEST(Placement, MeasuredMemoryConstantsAreRecordedInCostsAndThePlanCarriesItsPrediction) {
  test::TempDir dir;
  test::ModelBuilder builder;  // x[1,512] -> MatMul with a 1 MiB weight -> Relu
  builder.input("x", DType::FLOAT, {1, 512});
  builder.initializer(test::random_tensor("w", {512, 512}, 1));
  builder.node("MatMul", {"x", "w"}, {"h"});
  builder.node("Relu", {"h"}, {"y"});
  builder.output("y", DType::FLOAT, {1, 512});
  const std::string model = builder.save(dir.file("big.onnx"));
  SplitOptions options = split_options(dir, "cpu:1,cpu:1");
  options.placement.measure_memory = true;
  const Plan plan = split_model(model, options);
  std::ifstream costs(fs::path(options.output_dir) / "costs.json");
  const std::string text((std::istreambuf_iterator<char>(costs)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"weight_factor\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"MatMul\""), std::string::npos) << text;
  ASSERT_EQ(plan.pieces.size(), 2u);
  EXPECT_GE(plan.pieces[0].resident_weight_bytes, plan.pieces[0].weight_bytes);  // ORT holds at least the weight
  EXPECT_EQ(plan.pieces[1].resident_weight_bytes, 0);
  EXPECT_GE(plan.pieces[1].activation_bytes, 2 * 512 * 4);  // Relu's input and output
  const Plan loaded = Plan::load(options.output_dir);
  EXPECT_EQ(loaded.pieces[0].activation_bytes, plan.pieces[0].activation_bytes);

  // The re-check reads the plan's prediction, not a lower bound.
  PlacementOptions devices_only = devices("cpu:1,cpu:1");
  EXPECT_EQ(check_plan_fits(plan, devices_only)[0].weights, plan.pieces[0].resident_weight_bytes);
}

TEST(Placement, DryRunsReplaceTheActivationEstimateInThePlanAndInThePlacementReport) {
  test::TempDir dir;
  test::ModelBuilder builder;  // x[1,65536] -> Relu -> Sigmoid -> Tanh: 256 KiB values
  builder.input("x", DType::FLOAT, {1, 65536});
  builder.node("Relu", {"x"}, {"a"});
  builder.node("Sigmoid", {"a"}, {"b"});
  builder.node("Tanh", {"b"}, {"y"});
  builder.output("y", DType::FLOAT, {1, 65536});
  const std::string model = builder.save(dir.file("chain.onnx"));
  SplitOptions options = split_options(dir, "cpu:1,cpu:1");
  options.placement.measure_memory = true;
  const Plan plan = split_model(model, options);
  const PlacementReport report = plan_placement(model, options, options.placement);
  ASSERT_EQ(report.stages.size(), 2u);
  for (const StageMemory& stage : report.stages) {
    EXPECT_GE(stage.activations_estimate, 0) << "stage " << stage.index << ": not dry-run";
    // Its input (held by the caller) and its output (in its arena) at the least; the same run in both.
    EXPECT_GE(stage.activations, 2 * 65536 * 4) << "stage " << stage.index;
    EXPECT_EQ(stage.activations, plan.pieces[stage.index].activation_bytes) << "stage " << stage.index;
  }
  // Without measuring, the estimate it is.
  options.placement.measure_memory = false;
  for (const StageMemory& stage : plan_placement(model, options, options.placement).stages)
    EXPECT_EQ(stage.activations_estimate, -1);
}

// A cap between what the static estimate and the dry run predict: the dry run's figure decides, both ways.
TEST(Placement, ACapBetweenTheEstimateAndTheDryRunIsJudgedByTheDryRun) {
  test::TempDir dir;
  test::ModelBuilder builder;  // x[1,65536] -> Relu -> Sigmoid -> Tanh -> Exp: four 256 KiB values
  builder.input("x", DType::FLOAT, {1, 65536});
  builder.node("Relu", {"x"}, {"a"});
  builder.node("Sigmoid", {"a"}, {"b"});
  builder.node("Tanh", {"b"}, {"c"});
  builder.node("Exp", {"c"}, {"y"});
  builder.output("y", DType::FLOAT, {1, 65536});
  const std::string model = builder.save(dir.file("chain.onnx"));
  const auto placed = [&](const std::string& device, bool measured) {
    SplitOptions options = split_options(dir, device);
    options.placement.measure_memory = measured;
    return plan_placement(model, options, options.placement).stages.at(0);
  };
  const StageMemory estimated = placed("cpu:1", false), dry_run = placed("cpu:1", true);
  ASSERT_EQ(dry_run.activations_estimate, estimated.activations);
  ASSERT_NE(dry_run.total, estimated.total) << "the two predictions agree: no cap lies between them";
  const int64_t cap = (dry_run.total + estimated.total) / 2;
  const std::string capped = "cpu:1=" + std::to_string(cap);
  const bool dry_run_fits = dry_run.total <= cap;
  const auto fits = [&](bool measured) {
    try {
      placed(capped, measured);
      return true;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::DOES_NOT_FIT) << e.what();
      return false;
    }
  };
  EXPECT_EQ(fits(true), dry_run_fits) << "cap " << cap << ", dry run " << dry_run.total;
  EXPECT_EQ(fits(false), !dry_run_fits) << "cap " << cap << ", estimate " << estimated.total;
}

TEST(Placement, CapacitiesAreTheGivenOnesAndACpuWithoutOneIsUnbounded) {
  EXPECT_EQ(device_capacities(devices("cpu:1=1GiB,cpu:1,cpu=512MB")),
            (std::vector<int64_t>{int64_t(1) << 30, -1, 512000000}));
}

}  // namespace
}  // namespace onnxpipe
