// Node costs per device: devices of another kind or speed get their own costs (times per CPU thread count, flops
// scaled by a calibration run), and the partition under caps cuts with each stage's own costs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis.h"
#include "partition.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe::detail {
namespace {

TEST(DeviceCosts, KeyIsTheKindAndTheCpuThreadCount) {
  EXPECT_EQ(device_cost_key(parse_device("cpu:1@0")), device_cost_key(parse_device("cpu:1")));
  EXPECT_NE(device_cost_key(parse_device("cpu:1")), device_cost_key(parse_device("cpu:2")));
  EXPECT_EQ(device_cost_key(parse_device("cuda:0")), device_cost_key(parse_device("cuda:1")));
  EXPECT_NE(device_cost_key(parse_device("cuda:0")), device_cost_key(parse_device("cpu:1")));
}

TEST(DeviceCosts, EachStageCutsWithItsOwnDevicesCosts) {
  Costs costs;
  costs.node.assign(12, 10.0);                                              // cpu:1
  costs.by_device[device_cost_key(parse_device("cpu:2"))].assign(12, 5.0);  // twice as fast
  const std::vector<DeviceSpec> devices = {parse_device("cpu:1"), parse_device("cpu:2")};
  EXPECT_EQ(&costs.on(devices[0]), &costs.node);
  EXPECT_EQ(costs.on(devices[1]).front(), 5.0);

  PlacementProblem problem;
  for (const DeviceSpec& device : devices) problem.node_cost.push_back(costs.on(device));
  problem.transfer_cost.assign(13, 0.0);
  problem.crossing_bytes.assign(13, 0);
  problem.memory.weights_read.assign(12, {});
  problem.memory.live.assign(12, 0);
  problem.memory.overhead.assign(2, 0);
  problem.capacity.assign(2, -1);
  const PlacedPartition placed = partition_under_caps(problem);
  ASSERT_TRUE(placed.feasible);
  // 4 nodes x 10 on cpu:1, 8 nodes x 5 on cpu:2: both 40, where equal costs would cut 6 / 6 (60 / 30).
  EXPECT_EQ(placed.partition.starts, (std::vector<int>{0, 4, 12}));
  EXPECT_DOUBLE_EQ(placed.partition.max_cost, 40.0);
}

std::string chain_model(const std::string& path) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {1, 64});
  std::string value = "x";
  for (int i = 0; i < 6; ++i) {
    const std::string w = "w" + std::to_string(i), y = "y" + std::to_string(i);
    b.initializer(test::random_tensor(w, {64, 64}, static_cast<uint32_t>(i + 1)));
    b.node("MatMul", {value, w}, {y});
    value = y;
  }
  b.output(value, DType::FLOAT, {1, 64});
  return b.save(path);
}

// A split placed on cpu:1 and cpu:2 measures (time) or calibrates (flops) the second device too, and says so in
// costs.json; one kind of device needs no second set.
TEST(DeviceCosts, SplitOnDevicesOfTwoSpeedsCostsEach) {
  test::TempDir dir;
  const std::string model = chain_model(dir.file("chain.onnx"));
  for (const Balance balance : {Balance::TIME, Balance::FLOPS}) {
    for (const std::string list : {"cpu:1,cpu:2", "cpu:1,cpu:1"}) {
      SplitOptions options;
      options.parts = 2;
      options.balance = balance;
      options.profile_runs = 3;
      options.placement.devices = parse_devices(list);
      options.output_dir = dir.file("out");
      options.force = true;
      split_model(model, options);
      std::ifstream in(dir.file("out/costs.json"));
      const nlohmann::json costs = nlohmann::json::parse(in);
      SCOPED_TRACE(std::string(balance_name(balance)) + " on " + list);
      EXPECT_EQ(costs.at("device"), "cpu:1");
      if (list == "cpu:1,cpu:1") {
        EXPECT_TRUE(costs.at("devices").empty());
        continue;
      }
      ASSERT_TRUE(costs.at("devices").contains("cpu:2"));
      EXPECT_EQ(costs.at("devices").at("cpu:2").size(), costs.at("nodes").size());
      for (const auto& [node, cost] : costs.at("devices").at("cpu:2").items()) EXPECT_GE(cost.get<double>(), 0) << node;
    }
  }
}

}  // namespace
}  // namespace onnxpipe::detail
