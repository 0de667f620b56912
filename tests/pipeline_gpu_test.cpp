// The pipeline on CUDA (label gpu; skipped without a CUDA device): IoBinding hand-off that stays on the device,
// copies counted by path, per-device memory limits, replicas. With one GPU, several stages share cuda:0.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "support/model_builder.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

class PipelineGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("pipeline_gpu_test");
    model_ = test::mask_read_by_every_block(dir_);
    detail::SessionConfig config;
    config.device = "cuda:0";
    try {
      detail::Session probe(model_, config);
    } catch (const Error& e) {
      GTEST_SKIP() << "no usable CUDA device: " << e.what();
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string split(int parts) {
    SplitOptions options;
    options.parts = parts;
    options.balance = Balance::BYTES;
    options.output_dir = dir_ + "/plan_" + std::to_string(parts);
    split_model(model_, options);
    return options.output_dir;
  }

  TensorMap inputs(uint64_t seed) const {
    VerifyOptions random;
    random.dims = {{"batch", 3}};
    random.seed = seed;
    PipelineOptions cpu;
    cpu.mode = PipelineMode::SEQUENCE;
    cpu.devices = {"cpu:1"};
    return make_inputs(Pipeline(model_, cpu).inputs(), random);
  }

  TensorMap cpu_answer(const TensorMap& in) const {
    PipelineOptions cpu;
    cpu.mode = PipelineMode::SEQUENCE;
    cpu.devices = {"cpu:1"};
    return Pipeline(model_, cpu).submit(in).get();
  }

  static void expect_close(const TensorMap& actual, const TensorMap& expected) {
    ASSERT_EQ(actual.size(), expected.size());
    for (const auto& [name, tensor] : expected) {
      const Difference diff = compare(actual.at(name), tensor, 1e-3, 1e-4);
      EXPECT_TRUE(diff.pass()) << name << ": max abs " << diff.max_abs;
    }
  }

  std::string dir_;
  std::string model_;
};

TEST_F(PipelineGpuTest, StagesOnOneDeviceHandOffOnTheDevice) {
  PipelineOptions options;
  options.devices = {"cuda:0", "cuda:0"};
  Pipeline pipeline(split(2), options);
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const TensorMap in = inputs(seed);
    expect_close(pipeline.submit(in).get(), cpu_answer(in));
  }
  for (const StageRecord& r : pipeline.timings().records()) {
    if (r.stage == 0) {
      EXPECT_EQ(r.copy_in.path, CopyPath::H2D);  // inputs enter from (pinned) host memory
      EXPECT_GT(r.copy_in.bytes, 0);
    } else {
      // Stage 1 reads stage 0's outputs where they are; only the model inputs it reads itself come from the host.
      EXPECT_NE(r.copy_in.path, CopyPath::D2D);
      EXPECT_EQ(r.copy_out.path, CopyPath::D2H);  // the model output comes back once
    }
  }
}

TEST_F(PipelineGpuTest, CpuAndCudaStagesMix) {
  PipelineOptions options;
  options.devices = {"cpu:1", "cuda:0", "cuda:0", "cpu:1"};
  Pipeline pipeline(split(4), options);
  const TensorMap in = inputs(7);
  expect_close(pipeline.submit(in).get(), cpu_answer(in));
  for (const StageRecord& r : pipeline.timings().records()) {
    if (r.stage == 1) {
      EXPECT_EQ(r.copy_in.path, CopyPath::H2D);
    } else if (r.stage == 2) {
      EXPECT_EQ(r.copy_out.path, CopyPath::D2H);  // a CPU stage reads its output
    } else if (r.stage == 3) {
      EXPECT_EQ(r.copy_in.bytes, 0);
    }
  }
}

TEST_F(PipelineGpuTest, MemoryLimitIsAppliedAndReported) {
  PipelineOptions options;
  options.devices = {"cuda:0", "cuda:0"};
  options.per_device["cuda:0"].provider_options = {{"gpu_mem_limit", std::to_string(256 << 20)},
                                                   {"arena_extend_strategy", "kSameAsRequested"},
                                                   {"cudnn_conv_algo_search", "HEURISTIC"}};
  Pipeline pipeline(split(2), options);
  pipeline.submit(inputs(1)).get();
  for (const StageInfo& stage : pipeline.stages()) {
    EXPECT_EQ(stage.device, "cuda:0");
    ASSERT_TRUE(stage.memory.count("device_total_bytes")) << "CUDA runtime not reachable";
    EXPECT_GT(stage.memory.at("device_total_bytes"), 0);
    if (stage.memory.count("MaxInUse")) {
      EXPECT_LE(stage.memory.at("MaxInUse"), 256 << 20);
    }
  }
}

TEST_F(PipelineGpuTest, ReplicasShareTheDeviceInOrder) {
  PipelineOptions options;
  options.mode = PipelineMode::REPLICAS;
  options.devices = {"cuda:0", "cuda:0"};
  Pipeline replicas(model_, options);
  std::vector<TensorMap> requests;
  for (uint64_t seed = 0; seed < 6; ++seed) requests.push_back(inputs(seed));
  const auto answers = replicas.run(requests);
  for (size_t i = 0; i < requests.size(); ++i) expect_close(answers[i], cpu_answer(requests[i]));
}

}  // namespace
}  // namespace onnxpipe
