// Pipeline stages on MPI ranks, run by CTest under `mpirun --oversubscribe -np 3` (label mpi). Every rank runs the
// same tests in the same order and builds the same pipelines; rank 0 submits and checks, the other ranks serve.
// Plans are split on each rank into its own directory (the split is deterministic: cuts or bytes balance).
#include "onnxpipe/ranks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/models_dir.h"
#include "support/temp_dir.h"
#include "transport.h"

extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;
using test::ModelBuilder;

RankSession* g_ranks = nullptr;
int rank() { return g_ranks->rank(); }

// Builds the pipeline on every rank: rank 0 runs `client` on it, the others serve it until rank 0 closes it.
void on_ranks(const std::string& plan, PipelineOptions options, const std::function<void(Pipeline&)>& client) {
  Pipeline pipeline(plan, options);
  if (rank() == 0) {
    client(pipeline);
  } else {
    pipeline.serve();
  }
}

PipelineOptions three_ranks() {
  PipelineOptions options;
  options.devices = {"cpu:1", "cpu:1", "cpu:1"};
  options.ranks = {0, 1, 2};
  return options;
}

PipelineOptions in_one_process() {
  PipelineOptions options;
  options.devices = {"cpu:1", "cpu:1", "cpu:1"};
  return options;
}

Tensor random_floats(std::vector<int64_t> shape, uint32_t seed) {
  Tensor t = make_tensor(DType::FLOAT, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (int64_t i = 0; i < t.element_count(); ++i) t.as<float>()[i] = uniform(rng);
  return t;
}

void expect_bitwise_equal(const TensorMap& got, const TensorMap& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, tensor] : want) {
    const auto it = got.find(name);
    ASSERT_NE(it, got.end()) << what << ": no output " << name;
    EXPECT_EQ(it->second.dtype, tensor.dtype) << what << ": " << name;
    EXPECT_EQ(it->second.shape, tensor.shape) << what << ": " << name;
    EXPECT_TRUE(it->second.data == tensor.data) << what << ": " << name << " differs";
  }
}

// x [1, seq, 4] -> a = Relu(x) -> b = Sigmoid(a) -> y = b + x (x skips to the last stage); a is an output too.
// Cut after a and b: three stages, the sequence length changes from request to request.
// The model in three pieces, cut after the values "a" and "b"; returns the plan directory.
// Three pieces, cut after the values named `first` and `second`.
std::string split_after(ModelBuilder& b, const std::string& dir, const std::string& first = "a",
                        const std::string& second = "b") {
  SplitOptions split;
  split.parts = 3;
  split.cuts = {first, second};
  split.balance = Balance::BYTES;
  split.output_dir = dir + "/plan";
  split_model(b.save(dir + "/model.onnx"), split);
  return split.output_dir;
}

std::string sequence_plan(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {1, "seq", 4});
  b.node("Relu", {"x"}, {"a"}, {}, "", "relu");
  b.node("Sigmoid", {"a"}, {"b"}, {}, "", "sigmoid");
  b.node("Add", {"b", "x"}, {"y"}, {}, "", "add");
  b.output("y", DType::FLOAT, {1, "seq", 4});
  b.output("a", DType::FLOAT, {1, "seq", 4});
  return split_after(b, dir);
}

TEST(Ranks, OutputsEqualTheSingleProcessPipelineBitwiseAsSequenceLengthsChange) {
  test::TempDir dir;
  const std::string plan = sequence_plan(dir.str());
  std::vector<TensorMap> requests;
  for (int i = 0; i < 12; ++i) requests.push_back({{"x", random_floats({1, 1 + (i * 7) % 13, 4}, 100 + i)}});
  on_ranks(plan, three_ranks(), [&](Pipeline& pipeline) {
    const std::vector<TensorMap> got = pipeline.run(requests);
    Pipeline local(plan, in_one_process());
    const std::vector<TensorMap> want = local.run(requests);
    for (size_t i = 0; i < requests.size(); ++i) expect_bitwise_equal(got[i], want[i], "request " + std::to_string(i));
    const std::vector<StageInfo> stages = pipeline.stages();
    ASSERT_EQ(stages.size(), 3u);
    EXPECT_EQ(stages[2].rank, 2);
    EXPECT_FALSE(stages[2].host.empty());
    for (const StageRecord& r : pipeline.timings().records()) {
      if (r.stage > 0) {
        EXPECT_GT(r.hop_bytes, 0) << "stage " << r.stage << " request " << r.request;
      }
    }
  });
}

TEST(Ranks, AnswersStayInOrderUnderEightConcurrentSubmitters) {
  test::TempDir dir;
  const std::string plan = sequence_plan(dir.str());
  on_ranks(plan, three_ranks(), [&](Pipeline& pipeline) {
    constexpr int kThreads = 8, kEach = 10;
    std::vector<std::thread> threads;
    std::vector<std::string> problems(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<std::pair<Ticket, float>> tickets;
        for (int i = 0; i < kEach; ++i) {
          const float v = static_cast<float>(t * 100 + i);  // y = sigmoid(relu(v)) + v tells the request
          Tensor x = make_tensor(DType::FLOAT, {1, 1 + i % 3, 4});
          for (int64_t k = 0; k < x.element_count(); ++k) x.as<float>()[k] = v;
          tickets.emplace_back(pipeline.submit({{"x", std::move(x)}}), v);
        }
        int64_t last_id = -1;
        for (auto& [ticket, v] : tickets) {
          if (ticket.id <= last_id) problems[t] = "ids not increasing";
          last_id = ticket.id;
          const TensorMap out = ticket.get();
          const float y = out.at("y").as<float>()[0];
          if (std::abs(y - (v + 1.0f / (1.0f + std::exp(-v)))) > 1e-3f) problems[t] = "an answer of another request";
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(problems[t], "") << "submitter " << t;
    const std::vector<RequestRecord> records = pipeline.timings().requests();
    ASSERT_EQ(records.size(), static_cast<size_t>(kThreads * kEach));
    for (size_t i = 1; i < records.size(); ++i) {
      EXPECT_LE(records[i - 1].answered, records[i].answered) << "answered out of order at id " << records[i].id;
    }
  });
}

// x -> Relu -> Neg -> Gather(axis 1, idx) -> + b: an index out of range fails the piece holding the Gather.
ModelBuilder gather_model() {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.input("idx", DType::INT64, {1});
  b.node("Relu", {"x"}, {"a"}, {}, "", "relu");
  b.node("Neg", {"a"}, {"b"}, {}, "", "neg");
  b.node("Gather", {"b", "idx"}, {"g"}, {test::attr_i("axis", 1)}, "", "gather");
  b.node("Add", {"b", "g"}, {"y"}, {}, "", "add");
  b.output("y", DType::FLOAT, {"batch", 4});
  return b;
}

// Cut after a and b: the Gather fails stage 2 (on rank 2) only.
std::string gather_plan(const std::string& dir) {
  ModelBuilder b = gather_model();
  return split_after(b, dir);
}

// Cut after a and g: the Gather fails in stage 1.
std::string gather_plan_for_direct(const std::string& dir) {
  ModelBuilder b = gather_model();
  return split_after(b, dir, "a", "g");
}

TEST(Ranks, AStageFailureOnARankFailsExactlyTheAffectedRequestsNamingStagePieceRankAndHost) {
  test::TempDir dir;
  const std::string plan = gather_plan(dir.str());
  on_ranks(plan, three_ranks(), [&](Pipeline& pipeline) {
    std::vector<Ticket> tickets;
    for (int i = 0; i < 10; ++i) {
      Tensor idx = make_tensor(DType::INT64, {1});
      idx.as<int64_t>()[0] = i % 2 == 1 ? 7 : 1;
      tickets.push_back(pipeline.submit({{"x", random_floats({2, 4}, i)}, {"idx", std::move(idx)}}));
    }
    for (int i = 0; i < 10; ++i) {
      if (i % 2 == 0) {
        EXPECT_NO_THROW(tickets[i].get()) << "request " << i;
        continue;
      }
      try {
        tickets[i].get();
        ADD_FAILURE() << "request " << i << " should have failed";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
        ASSERT_TRUE(e.stage().has_value());
        EXPECT_EQ(e.stage()->index, 2);
        const std::string what = e.what();
        EXPECT_NE(what.find("stage 2 (piece_2.onnx, cpu:1, rank 2 on " + g_ranks->host(2) + ")"), std::string::npos)
            << what;
        EXPECT_EQ(what.find("stage 2 (piece_2.onnx, cpu:1, rank 2 on " + g_ranks->host(2) + "):", 1), std::string::npos)
            << "named once: " << what;
      }
    }
  });
}

// Placements with stages next to each other on ranks other than 0: the value between them goes straight from one
// rank to the other, so that rank 0 sends only model inputs and values it holds and receives only model outputs.
struct DirectCase {
  std::vector<int> ranks;
  // Value bytes rank 0 sends to / receives from each rank, as multiples of the bytes of x (all values have x's shape).
  std::vector<int> sent_per_x;
  std::vector<int> received_per_x;
};

class RanksDirect : public ::testing::TestWithParam<DirectCase> {};

TEST_P(RanksDirect, ValuesBetweenStagesOnOtherRanksGoStraightThereBitwiseEqualAndInOrder) {
  const DirectCase& c = GetParam();
  test::TempDir dir;
  const std::string plan = sequence_plan(dir.str());
  PipelineOptions options = three_ranks();
  options.ranks = c.ranks;
  options.max_inflight = 3;
  std::vector<TensorMap> requests;
  int64_t x_bytes = 0;
  for (int i = 0; i < 10; ++i) {
    requests.push_back({{"x", random_floats({1, 1 + (i * 5) % 11, 4}, 200 + i)}});
    x_bytes += static_cast<int64_t>(requests.back().at("x").data.size());
  }
  const detail::Traffic before = detail::current_transport()->traffic();
  on_ranks(plan, options, [&](Pipeline& pipeline) {
    const std::vector<TensorMap> got = pipeline.run(requests);
    const detail::Traffic after = detail::current_transport()->traffic();
    for (int r = 1; r < 3; ++r) {
      EXPECT_EQ(after.sent[r] - before.sent[r], c.sent_per_x[r] * x_bytes) << "value bytes rank 0 sent to rank " << r;
      EXPECT_EQ(after.received[r] - before.received[r], c.received_per_x[r] * x_bytes)
          << "value bytes rank 0 received from rank " << r;
    }
    Pipeline local(plan, in_one_process());
    const std::vector<TensorMap> want = local.run(requests);
    for (size_t i = 0; i < requests.size(); ++i) expect_bitwise_equal(got[i], want[i], "request " + std::to_string(i));
    for (const StageRecord& r : pipeline.timings().records()) {
      if (c.ranks[r.stage] != 0) {
        EXPECT_GT(r.hop_bytes, 0) << "stage " << r.stage << " request " << r.request;
      }
    }
  });
}

// Stage 0 makes a (a model output), stage 1 b = Sigmoid(a), stage 2 y = b + x. On ranks 0, 1, 2: rank 0 sends a to
// rank 1 and x to rank 2, b goes from rank 1 to rank 2, y comes back. On ranks 1, 2, 1: rank 0 sends x to rank 1
// twice (stages 0 and 2) and gets a and y back from it; a goes from rank 1 to 2 and b back, rank 2 never talks to 0.
INSTANTIATE_TEST_SUITE_P(Placements, RanksDirect,
                         ::testing::Values(DirectCase{{0, 1, 2}, {0, 1, 1}, {0, 0, 1}},
                                           DirectCase{{1, 2, 1}, {0, 2, 0}, {0, 2, 0}}));

// A stage failing on a rank whose next stage's rank is not 0: the failed requests leave nothing behind there.
TEST(Ranks, AFailureBeforeAStraightHopFailsExactlyThoseRequests) {
  test::TempDir dir;
  PipelineOptions options = three_ranks();
  options.ranks = {1, 2, 1};
  on_ranks(gather_plan_for_direct(dir.str()), options, [&](Pipeline& pipeline) {
    std::vector<Ticket> tickets;
    for (int i = 0; i < 10; ++i) {
      Tensor idx = make_tensor(DType::INT64, {1});
      idx.as<int64_t>()[0] = i % 3 == 1 ? 7 : 1;
      tickets.push_back(pipeline.submit({{"x", random_floats({2, 4}, i)}, {"idx", std::move(idx)}}));
    }
    for (int i = 0; i < 10; ++i) {
      if (i % 3 != 1) {
        EXPECT_NO_THROW(tickets[i].get()) << "request " << i;
        continue;
      }
      try {
        tickets[i].get();
        ADD_FAILURE() << "request " << i << " should have failed";
      } catch (const Error& e) {
        ASSERT_TRUE(e.stage().has_value());
        EXPECT_EQ(e.stage()->index, 1) << e.what();
      }
    }
  });
}

// The seed's exported models, 3 stages on 3 ranks, against the same plan in one process.
class RanksModels : public ::testing::TestWithParam<std::string> {};

TEST_P(RanksModels, OutputsEqualTheSingleProcessPipelineBitwise) {
  const fs::path model = test::models_dir() / (GetParam() + ".onnx");
  if (!fs::exists(model)) GTEST_SKIP() << model << " absent (make models)";
  test::TempDir dir;
  SplitOptions split;
  split.parts = 3;
  split.balance = Balance::BYTES;
  split.output_dir = dir.file("plan");
  split_model(model.string(), split);
  on_ranks(split.output_dir, three_ranks(), [&](Pipeline& pipeline) {
    VerifyOptions random;
    std::vector<TensorMap> requests = {make_inputs(pipeline.inputs(), random)};
    random.seed = 1;
    requests.push_back(make_inputs(pipeline.inputs(), random));
    const std::vector<TensorMap> got = pipeline.run(requests);
    Pipeline local(split.output_dir, in_one_process());
    const std::vector<TensorMap> want = local.run(requests);
    for (size_t i = 0; i < requests.size(); ++i) expect_bitwise_equal(got[i], want[i], GetParam());
  });
}

INSTANTIATE_TEST_SUITE_P(Seed, RanksModels, ::testing::Values("mobilenet_v2", "resnet18"));

// gpt2 in 3 pieces on 3 ranks, its sequence length changing from request to request (its own CTest: the split and
// the sessions take a while).
TEST(RanksGpt2, OutputsEqualTheSingleProcessPipelineBitwiseAsSequenceLengthsChange) {
  const fs::path model = test::models_dir() / "gpt2.onnx";
  if (!fs::exists(model)) GTEST_SKIP() << model << " absent (make models)";
  test::TempDir dir;
  SplitOptions split;
  split.parts = 3;
  split.balance = Balance::BYTES;
  split.dims = {{"batch", 1}, {"seq", 8}};
  split.output_dir = dir.file("plan");
  split_model(model.string(), split);
  on_ranks(split.output_dir, three_ranks(), [&](Pipeline& pipeline) {
    std::vector<TensorMap> requests;
    for (int64_t seq : {5, 12, 1, 8}) {
      VerifyOptions random;
      random.dims = {{"batch", 1}, {"seq", seq}};
      random.int_high = 50000;  // token ids
      random.seed = static_cast<uint64_t>(seq);
      requests.push_back(make_inputs(pipeline.inputs(), random));
    }
    const std::vector<TensorMap> got = pipeline.run(requests);
    Pipeline local(split.output_dir, in_one_process());
    const std::vector<TensorMap> want = local.run(requests);
    for (size_t i = 0; i < requests.size(); ++i) expect_bitwise_equal(got[i], want[i], "request " + std::to_string(i));
  });
}

// Run alone, under `mpirun --enable-recovery` (else mpirun kills the job when a rank dies): rank 2 is killed while
// requests flow; every request is answered (the late ones with an error naming rank 2), nothing hangs, and the rank
// session then aborts the job so that every process exits.
TEST(RanksKilled, EveryRequestIsAnsweredWithinTheBoundWhenARankDies) {
  test::TempDir dir;
  const std::string plan = sequence_plan(dir.str());
  PipelineOptions options = three_ranks();
  Pipeline pipeline(plan, options);
  if (rank() != 0) {
    if (rank() == 2) {
      std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::raise(SIGKILL);
      }).detach();
    }
    pipeline.serve();  // rank 2 dies in it; rank 1 serves until rank 0, having failed what needed rank 2, closes
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::vector<Ticket> tickets;
  // Long enough for the kill and its detection (the rank timeout), then a few more requests.
  while (Clock::now() - start < std::chrono::seconds(5)) {
    tickets.push_back(pipeline.submit({{"x", random_floats({1, 8, 4}, 1)}}));
  }
  int answered = 0, failed = 0;
  std::string error;
  for (Ticket& ticket : tickets) {
    ASSERT_EQ(ticket.result.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "request " << ticket.id;
    try {
      ticket.get();
      ++answered;
    } catch (const Error& e) {
      ++failed;
      error = e.what();
    }
  }
  EXPECT_GT(answered, 0) << "requests before the kill";
  EXPECT_GT(failed, 0) << "requests after the kill";
  EXPECT_NE(error.find("rank 2"), std::string::npos) << error;
  EXPECT_NE(error.find("lost"), std::string::npos) << error;
  std::cout << "RanksKilled: " << answered << " answered, " << failed << " failed; last error: " << error << "\n";
}

}  // namespace
}  // namespace onnxpipe

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  onnxpipe::RankOptions options;
  if (const char* timeout = std::getenv("ONNXPIPE_RANK_TIMEOUT")) options.timeout_s = std::atof(timeout);
  onnxpipe::RankSession ranks(options);
  onnxpipe::g_ranks = &ranks;
  if (ranks.size() != 3) {
    std::cerr << "run under mpirun -np 3 (this is a job of " << ranks.size() << ")\n";
    return 1;
  }
  if (ranks.rank() != 0) {  // one report: rank 0's
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
