// The pipeline on CUDA (label gpu; skipped without a CUDA device, a failure instead with ONNXPIPE_REQUIRE_CUDA=1):
// IoBinding hand-off that stays on the device, copies counted by path, per-stage memory limits, replicas. With one
// GPU, several stages share cuda:0.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/cuda_gate.h"
#include "support/model_builder.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

class PipelineGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ONNXPIPE_SKIP_WITHOUT_CUDA();
    dir_ = test::temp_dir("pipeline_gpu_test");
    model_ = test::mask_read_by_every_block(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string split(int parts) const { return split_model_at(model_, parts); }
  std::string split_model_at(const std::string& model, int parts) const {
    SplitOptions options;
    options.parts = parts;
    options.balance = Balance::BYTES;
    options.output_dir = dir_ + "/plan_" + fs::path(model).stem().string() + "_" + std::to_string(parts);
    split_model(model, options);
    return options.output_dir;
  }

  TensorMap inputs(uint64_t seed) const { return inputs_of(model_, seed); }
  static TensorMap inputs_of(const std::string& model, uint64_t seed) {
    VerifyOptions random;
    random.dims = {{"batch", 3}};
    random.seed = seed;
    PipelineOptions cpu;
    cpu.mode = PipelineMode::SEQUENCE;
    cpu.devices = {"cpu:1"};
    return make_inputs(Pipeline(model, cpu).inputs(), random);
  }

  TensorMap cpu_answer(const TensorMap& in) const { return cpu_answer_of(model_, in); }
  static TensorMap cpu_answer_of(const std::string& model, const TensorMap& in) {
    PipelineOptions cpu;
    cpu.mode = PipelineMode::SEQUENCE;
    cpu.devices = {"cpu:1"};
    return Pipeline(model, cpu).submit(in).get();
  }

  // x[batch, n] -> MatMul(w1[n, n]) -> Relu -> MatMul(w2[n, m]) -> y: the second piece reads nothing but what the
  // first one made.
  std::string chain(int64_t n, int64_t m) const {
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {"batch", n});
    b.initializer(test::random_tensor("w1", {n, n}, 1, 0.05f));
    b.initializer(test::random_tensor("w2", {n, m}, 2, 0.05f));
    b.node("MatMul", {"x", "w1"}, {"h"});
    b.node("Relu", {"h"}, {"r"});
    b.node("MatMul", {"r", "w2"}, {"y"});
    b.output("y", DType::FLOAT, {"batch", m});
    return b.save(dir_ + "/chain_" + std::to_string(n) + "_" + std::to_string(m) + ".onnx");
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
  const std::string model = chain(8, 8);
  PipelineOptions options;
  options.devices = {"cuda:0", "cuda:0"};
  Pipeline pipeline(split_model_at(model, 2), options);
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const TensorMap in = inputs_of(model, seed);
    expect_close(pipeline.submit(in).get(), cpu_answer_of(model, in));
  }
  ASSERT_EQ(pipeline.timings().records().size(), 8u);
  for (const StageRecord& r : pipeline.timings().records()) {
    if (r.stage == 0) {
      EXPECT_EQ(r.copy_in.path, CopyPath::H2D);  // the model input enters from pinned host memory
      EXPECT_EQ(r.copy_in.bytes, 3 * 8 * 4);
      EXPECT_EQ(r.copy_out.bytes, 0) << "stage 0's output left the device";
    } else {
      EXPECT_EQ(r.copy_in.path, CopyPath::NONE);
      EXPECT_EQ(r.copy_in.bytes, 0) << "stage 1 did not read stage 0's output where it was";
      EXPECT_EQ(r.copy_out.path, CopyPath::D2H);  // the model output comes back once, into pinned memory
      EXPECT_GT(r.copy_out.bytes, 0);
    }
  }
}

TEST_F(PipelineGpuTest, ModelInputsReadByLaterStagesComeFromTheHost) {
  PipelineOptions options;
  options.devices = {"cuda:0", "cuda:0"};
  Pipeline pipeline(split(2), options);
  const TensorMap in = inputs(3);
  expect_close(pipeline.submit(in).get(), cpu_answer(in));
  const int64_t mask_bytes = 3 * 1 * 8 * 4;
  for (const StageRecord& r : pipeline.timings().records()) {
    if (r.stage == 0) {
      EXPECT_EQ(r.copy_out.bytes, 0);
    } else {
      // The mask stage 0 put in pinned memory is host memory: stage 1 copies it in; stage 0's outputs it reads
      // where they are.
      EXPECT_EQ(r.copy_in.path, CopyPath::H2D);
      EXPECT_EQ(r.copy_in.bytes, mask_bytes);
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

// Two stages on one device each get their own arena, with the limit as its Limit and only their own weights in it:
// w1 (16 MiB) in stage 0's, w2 (4 MiB) in stage 1's. The device's free/total memory is the whole device's.
TEST_F(PipelineGpuTest, MemoryLimitIsAppliedToEachStageAndReported) {
  const int64_t limit = int64_t{64} << 20, w1_bytes = int64_t{2048} * 2048 * 4, w2_bytes = int64_t{2048} * 512 * 4;
  const std::string model = chain(2048, 512);
  PipelineOptions options;
  options.devices = {"cuda:0", "cuda:0"};
  options.per_device["cuda:0"].provider_options = {{"gpu_mem_limit", std::to_string(limit)},
                                                   {"arena_extend_strategy", "kSameAsRequested"}};
  Pipeline pipeline(split_model_at(model, 2), options);
  pipeline.submit(inputs_of(model, 1)).get();
  const std::vector<StageInfo> stages = pipeline.stages();
  ASSERT_EQ(stages.size(), 2u);
  for (const StageInfo& stage : stages) {
    EXPECT_EQ(stage.device, "cuda:0");
    ASSERT_TRUE(stage.memory.count("Limit")) << "no arena statistics for stage " << stage.stage;
    EXPECT_EQ(stage.memory.at("Limit"), limit) << "stage " << stage.stage;
    EXPECT_LE(stage.memory.at("MaxInUse"), limit);
    ASSERT_TRUE(stage.memory.count("device_total_bytes")) << "CUDA runtime not reachable";
    EXPECT_GT(stage.memory.at("device_total_bytes"), 0);
  }
  EXPECT_GE(stages[0].memory.at("InUse"), w1_bytes);
  EXPECT_GE(stages[1].memory.at("InUse"), w2_bytes);
  EXPECT_LT(stages[1].memory.at("InUse"), w1_bytes) << "stage 1's arena holds stage 0's weights too";
  EXPECT_EQ(stages[0].memory.at("device_total_bytes"), stages[1].memory.at("device_total_bytes"));
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
