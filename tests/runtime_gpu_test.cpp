// The runtime on CUDA (label gpu; skipped without a CUDA device, a failure instead with ONNXPIPE_REQUIRE_CUDA=1):
// values that stay on the device from one session to the next, pinned memory counted as host memory, device values
// refused by CPU sessions, and nodes the CUDA provider leaves on the CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "onnxpipe/error.h"
#include "onnxpipe/log.h"
#include "runtime.h"
#include "support/cuda_gate.h"
#include "support/expect_error.h"
#include "support/model_builder.h"

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;

Tensor floats(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t = make_tensor(DType::FLOAT, std::move(shape));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<float> values_of(const Tensor& t) {
  return std::vector<float>(t.as<float>(), t.as<float>() + t.element_count());
}

class RuntimeGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ONNXPIPE_SKIP_WITHOUT_CUDA();
    dir_ = test::temp_dir("runtime_gpu_test");
    // z = x + y; w = z * y, x and y float [batch, 3].
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {"batch", 3});
    b.input("y", DType::FLOAT, {"batch", 3});
    b.node("Add", {"x", "y"}, {"z"});
    b.node("Mul", {"z", "y"}, {"w"});
    b.output("z", DType::FLOAT, {"batch", 3});
    b.output("w", DType::FLOAT, {"batch", 3});
    model_ = b.save(dir_ + "/add_mul.onnx");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static SessionConfig on(const std::string& device) {
    SessionConfig config;
    config.device = device;
    return config;
  }

  std::string dir_;
  std::string model_;
};

TEST_F(RuntimeGpuTest, DeviceOutputFeedsASessionOnTheSameDeviceWithoutACopy) {
  Session first(model_, on("cuda:0"));
  Session second(model_, on("cuda:0"));
  Value x = first.make_input(floats({2, 3}, {1, 2, 3, 4, 5, 6}));
  Value y = first.make_input(floats({2, 3}, {1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(x.device_id(), -1);  // pinned host memory is host memory

  RunRecord produced;
  std::vector<Value> zw = first.run_values({"x", "y"}, {&x, &y}, {"z", "w"}, {false, false}, nullptr, &produced);
  EXPECT_EQ(produced.copy_in.path, CopyPath::H2D);
  EXPECT_EQ(produced.copy_in.bytes, 48);
  EXPECT_EQ(produced.copy_out.bytes, 0);
  ASSERT_EQ(zw.size(), 2u);
  EXPECT_EQ(zw[0].device_id(), 0);
  EXPECT_EQ(zw[1].device_id(), 0);
  EXPECT_EQ(test::error_code_of([&] { zw[0].to_tensor(); }), ErrorCode::RUNTIME);  // device memory: bind to the host

  RunRecord consumed;
  std::vector<Value> out =
      second.run_values({"x", "y"}, {&zw[0], &zw[1]}, {"z", "w"}, {true, true}, nullptr, &consumed);
  EXPECT_EQ(consumed.copy_in.path, CopyPath::NONE);
  EXPECT_EQ(consumed.copy_in.bytes, 0);
  EXPECT_EQ(consumed.copy_out.path, CopyPath::D2H);
  EXPECT_EQ(consumed.copy_out.bytes, 48);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].device_id(), -1);  // bound to (pinned) host memory: readable
  EXPECT_EQ(values_of(out[0].to_tensor()), (std::vector<float>{4, 6, 8, 18, 21, 24}));
  EXPECT_EQ(values_of(out[1].to_tensor()), (std::vector<float>{8, 18, 32, 216, 294, 384}));
}

TEST_F(RuntimeGpuTest, CpuSessionRejectsADeviceValueAndTakesAPinnedOne) {
  Session gpu(model_, on("cuda:0"));
  Session cpu(model_, on("cpu:1"));
  Value x = gpu.make_input(floats({1, 3}, {1, 2, 3}));
  Value y = gpu.make_input(floats({1, 3}, {1, 1, 1}));
  std::vector<Value> z_device = gpu.run_values({"x", "y"}, {&x, &y}, {"z"}, {false});
  std::string message;
  EXPECT_EQ(test::error_code_of(
                [&] {
                  cpu.run_values({"x", "y"}, {&z_device[0], &y}, {"w"});
                },
                &message),
            ErrorCode::USAGE);
  EXPECT_NE(message.find("input 'x' is in device memory of cuda:0"), std::string::npos) << message;

  std::vector<Value> z_host = gpu.run_values({"x", "y"}, {&x, &y}, {"z"}, {true});
  ASSERT_EQ(z_host[0].device_id(), -1);
  std::vector<Value> w = cpu.run_values({"x", "y"}, {&z_host[0], &y}, {"w"});
  EXPECT_EQ(values_of(w[0].to_tensor()), (std::vector<float>{3, 4, 5}));  // (2,3,4) + 1, times 1
}

TEST_F(RuntimeGpuTest, HostRunsReadOutputsBackFromPinnedMemory) {
  Session session(model_, on("cuda:0"));
  const auto out = session.run({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {2, 2, 2})}});
  EXPECT_EQ(values_of(out.at("w")), (std::vector<float>{6, 8, 10}));
}

// Reshape reads its shape on the host: the CUDA provider leaves the chain that
// computes it (Shape -> Gather -> Concat) to the CPU, as in GPT-2. The session loads, says so, and strict placement is
// opt-in.
TEST_F(RuntimeGpuTest, ShapeComputationsOnTheCpuDoNotStopACudaSession) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 8});
  b.initializer(test::int64_tensor("zero", {1}, {0}));
  b.initializer(test::int64_tensor("rest", {2}, {2, 4}));
  b.node("Shape", {"x"}, {"shape"});
  b.node("Gather", {"shape", "zero"}, {"batch"});
  b.node("Concat", {"batch", "rest"}, {"target"}, {test::attr_i("axis", 0)});
  b.node("Reshape", {"x", "target"}, {"r"});
  b.node("Relu", {"r"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 2, 4});
  const std::string model = b.save(dir_ + "/reshape.onnx");

  std::mutex mutex;
  std::vector<std::string> warnings;
  set_log_callback(LogLevel::WARN, [&](LogLevel, const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    warnings.push_back(text);
  });
  Session session(model, on("cuda:0"));
  set_log_callback(LogLevel::WARN, nullptr);
  const auto out = session.run({{"x", floats({1, 8}, {-1, 1, -2, 2, -3, 3, -4, 4})}});
  EXPECT_EQ(out.at("y").shape, (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(values_of(out.at("y")), (std::vector<float>{0, 1, 0, 2, 0, 3, 0, 4}));

  const Placement& placement = session.placement();
  ASSERT_GT(placement.total_nodes(), 0) << "placement not recorded";
  EXPECT_GT(placement.nodes_per_provider.count("CUDAExecutionProvider"), 0u);
  if (placement.cpu_nodes() > 0) {
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("nodes run on the CPU"), std::string::npos) << warnings[0];
    SessionConfig strict = on("cuda:0");
    strict.session_options = {{"session.disable_cpu_ep_fallback", "1"}};
    EXPECT_EQ(test::error_code_of([&] { Session failing(model, strict); }), ErrorCode::RUNTIME);
  } else {
    EXPECT_TRUE(warnings.empty());
  }
}

}  // namespace
}  // namespace onnxpipe::detail
