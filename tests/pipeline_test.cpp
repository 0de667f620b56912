// The pipeline runtime on CPU: same answers as the unsplit model, in order, with failures, shutdown, micro-batches,
// replicas, timings and copy counters. Plans are made by hand here (so that these tests do not depend on the
// splitter) and, in the last tests, by split_model.
#include "onnxpipe/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "batching.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"

// ONNX Runtime keeps one small allocation (14 bytes, made while creating the first session) to the end of the process;
// LeakSanitizer, in the AddressSanitizer build, reports it. It is ORT's, not ours: suppress that library only.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;
using test::ModelBuilder;

struct NodeSpec {
  std::string op;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<onnx::AttributeProto> attrs = {};
};

// A model as a list of nodes over values of one type (float [batch, 4]) unless `types` says otherwise.
struct ModelSpec {
  std::vector<ValueDesc> inputs;
  std::vector<std::string> outputs;
  std::vector<NodeSpec> nodes;
  std::vector<onnx::TensorProto> weights;
  std::map<std::string, ValueDesc> types;
};

ValueDesc value(const std::string& name, DType dtype, std::vector<Dim> dims) {
  ValueDesc v;
  v.name = name;
  v.dtype = dtype;
  v.has_shape = true;
  v.dims = std::move(dims);
  return v;
}
ValueDesc row4(const std::string& name) { return value(name, DType::FLOAT, {Dim{-1, "batch"}, Dim{4, ""}}); }

ValueDesc type_of(const ModelSpec& spec, const std::string& name) {
  for (const ValueDesc& in : spec.inputs) {
    if (in.name == name) return in;
  }
  const auto it = spec.types.find(name);
  if (it != spec.types.end()) return it->second;
  return row4(name);
}

test::Shape shape_of(const ValueDesc& v) {
  test::Shape shape;
  for (const Dim& d : v.dims) shape.push_back(d.value >= 0 ? test::DimSpec(d.value) : test::DimSpec(d.param));
  return shape;
}

std::string write_model(const ModelSpec& spec, const std::vector<int>& nodes, const std::vector<ValueDesc>& inputs,
                        const std::vector<ValueDesc>& outputs, const std::string& path) {
  ModelBuilder b;
  for (const ValueDesc& in : inputs) b.input(in.name, in.dtype, shape_of(in));
  std::set<std::string> used;
  for (int n : nodes) {
    const NodeSpec& node = spec.nodes[n];
    b.node(node.op, node.inputs, node.outputs, node.attrs, "", node.outputs[0] + "_node");
    used.insert(node.inputs.begin(), node.inputs.end());
  }
  for (const auto& w : spec.weights) {
    if (used.count(w.name())) b.initializer(w);
  }
  for (const ValueDesc& out : outputs) b.output(out.name, out.dtype, shape_of(out));
  return b.save(path);
}

// Writes DIR/model.onnx (all nodes) and DIR/plan/{plan.json, piece_K.onnx} cut before the given node indices.
std::string write_plan(const ModelSpec& spec, const std::vector<int>& cuts, const std::string& dir) {
  std::vector<int> all(spec.nodes.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::vector<ValueDesc> model_outputs;
  for (const std::string& name : spec.outputs) model_outputs.push_back(type_of(spec, name));
  const std::string model = write_model(spec, all, spec.inputs, model_outputs, dir + "/model.onnx");

  std::vector<int> bounds = {0};
  bounds.insert(bounds.end(), cuts.begin(), cuts.end());
  bounds.push_back(static_cast<int>(spec.nodes.size()));
  std::set<std::string> weights;
  for (const auto& w : spec.weights) weights.insert(w.name());
  std::map<std::string, int> producer;
  for (const ValueDesc& in : spec.inputs) producer[in.name] = -1;
  for (size_t n = 0; n < spec.nodes.size(); ++n) {
    for (const auto& o : spec.nodes[n].outputs) {
      producer[o] =
          static_cast<int>(std::upper_bound(bounds.begin(), bounds.end(), static_cast<int>(n)) - bounds.begin()) - 1;
    }
  }
  Plan plan;
  plan.source_path = model;
  plan.balance = "bytes";
  plan.cost_unit = "bytes";
  plan.model_inputs = spec.inputs;
  plan.model_outputs = model_outputs;
  std::map<std::string, CrossingValue> values;
  const std::string plan_dir = dir + "/plan";
  fs::create_directories(plan_dir);
  for (size_t p = 0; p + 1 < bounds.size(); ++p) {
    const int k = static_cast<int>(p);
    PieceDesc piece;
    piece.index = k;
    piece.file = "piece_" + std::to_string(k) + ".onnx";
    std::vector<int> nodes;
    std::set<std::string> seen_in;
    for (int n = bounds[p]; n < bounds[p + 1]; ++n) {
      nodes.push_back(n);
      for (const auto& i : spec.nodes[n].inputs) {
        if (!weights.count(i) && producer.at(i) < k && seen_in.insert(i).second) {
          piece.inputs.push_back(type_of(spec, i));
          auto& v = values[i];
          v.name = i;
          v.producer = producer.at(i);
          v.consumers.push_back(k);
        }
      }
    }
    for (int n = bounds[p]; n < bounds[p + 1]; ++n) {
      for (const auto& o : spec.nodes[n].outputs) {
        bool later = std::find(spec.outputs.begin(), spec.outputs.end(), o) != spec.outputs.end();
        for (int m = bounds[p + 1]; m < static_cast<int>(spec.nodes.size()); ++m) {
          const auto& ins = spec.nodes[m].inputs;
          later = later || std::find(ins.begin(), ins.end(), o) != ins.end();
        }
        if (later) piece.outputs.push_back(type_of(spec, o));
      }
    }
    write_model(spec, nodes, piece.inputs, piece.outputs, plan_dir + "/" + piece.file);
    plan.pieces.push_back(piece);
  }
  for (auto& [name, v] : values) {
    v.graph_output = std::find(spec.outputs.begin(), spec.outputs.end(), name) != spec.outputs.end();
    plan.values.push_back(v);
  }
  for (const std::string& out : spec.outputs) {
    if (!values.count(out)) plan.values.push_back(CrossingValue{out, producer.at(out), {}, true});
  }
  plan.save(plan_dir);
  return plan_dir;
}

// x, m -> e (early output, also read later), y; s skips from piece 1 to piece 3 of the 4-piece cut, m is read by
// pieces 0, 1 and 3.
ModelSpec skip_model() {
  ModelSpec spec;
  spec.inputs = {row4("x"), row4("m")};
  spec.outputs = {"e", "y"};
  spec.weights = {test::random_tensor("W", {4, 4}, 7)};
  spec.nodes = {
      {"Add", {"x", "m"}, {"a"}},     {"Relu", {"a"}, {"e"}},        // piece 0
      {"Mul", {"x", "x"}, {"s"}},     {"Sub", {"a", "m"}, {"c"}},    // piece 1
      {"MatMul", {"c", "W"}, {"c2"}}, {"Mul", {"c2", "e"}, {"c3"}},  // piece 2
      {"Add", {"c3", "s"}, {"d"}},    {"Mul", {"d", "m"}, {"y"}},    // piece 3
  };
  return spec;
}
const std::vector<int> kSkipCuts2 = {4};
const std::vector<int> kSkipCuts4 = {2, 4, 6};

Tensor random_floats(std::vector<int64_t> shape, uint32_t seed) {
  Tensor t = make_tensor(DType::FLOAT, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.element_count(); ++i) t.as<float>()[i] = dist(rng);
  return t;
}

TensorMap skip_inputs(int64_t batch, uint32_t seed) {
  return {{"x", random_floats({batch, 4}, seed)}, {"m", random_floats({batch, 4}, seed + 1000)}};
}

void expect_bitwise_equal(const TensorMap& actual, const TensorMap& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (const auto& [name, tensor] : expected) {
    const auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << what << ": no output " << name;
    EXPECT_EQ(it->second.dtype, tensor.dtype) << what << ": " << name;
    EXPECT_EQ(it->second.shape, tensor.shape) << what << ": " << name;
    EXPECT_TRUE(it->second.data == tensor.data) << what << ": " << name << " differs";
  }
}

PipelineOptions options_for(PipelineMode mode, std::vector<std::string> devices, int max_inflight = 4) {
  PipelineOptions options;
  options.mode = mode;
  options.devices = std::move(devices);
  options.max_inflight = max_inflight;
  return options;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("pipeline_test"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(PipelineTest, PipelineEqualsSequenceBitwiseWithSkipValuesAndSeveralOutputs) {
  for (const auto& cuts : {kSkipCuts2, kSkipCuts4}) {
    const std::string sub = dir_ + "/n" + std::to_string(cuts.size() + 1);
    fs::create_directories(sub);
    const std::string plan_dir = write_plan(skip_model(), cuts, sub);
    Pipeline sequence(sub + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
    Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
    ASSERT_EQ(pipeline.stage_count(), static_cast<int>(cuts.size()) + 1);
    std::vector<TensorMap> requests;
    for (int i = 0; i < 12; ++i) requests.push_back(skip_inputs(1 + i % 3, i));
    const auto expected = sequence.run(requests);
    const auto actual = pipeline.run(requests);
    ASSERT_EQ(actual.size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      expect_bitwise_equal(actual[i], expected[i], "request " + std::to_string(i));
    }
  }
}

// A sequence crosses the cut (SplitToSequence | ConcatFromSequence): a host value, handed from stage to stage as is.
// As a model input or output it is refused when the pipeline is made.
TEST_F(PipelineTest, ASequenceCrossesBetweenStagesButNeverEntersOrLeaves) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {4, 2});
  b.node("Relu", {"x"}, {"r"});
  b.node("SplitToSequence", {"r"}, {"s"});
  auto& concat = b.node("ConcatFromSequence", {"s"}, {"y"});
  auto* axis = concat.add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(0);
  b.output("y", DType::FLOAT, {4, 2});
  const std::string model = b.save(dir_ + "/seq.onnx");
  SplitOptions split;
  split.parts = 2;
  split.cuts = {"s"};
  split.balance = Balance::FLOPS;
  split.output_dir = dir_ + "/pieces";
  split_model(model, split);
  Pipeline pipeline(split.output_dir, options_for(PipelineMode::PIPELINE, {"cpu:1", "cpu:1"}));
  const TensorMap inputs = {{"x", random_floats({4, 2}, 3)}};
  expect_bitwise_equal(pipeline.submit(inputs).get(), run_pieces(split.output_dir, inputs), "pipeline");

  ModelBuilder out;
  out.input("x", DType::FLOAT, {4, 2});
  out.node("SplitToSequence", {"x"}, {"s"});
  auto* declared = out.proto().add_output();  // a sequence of float tensors
  declared->set_name("s");
  declared->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::FLOAT);
  const std::string sequence_out = out.save(dir_ + "/seq_out.onnx");
  split.parts = 1;
  split.cuts.clear();
  split.output_dir = dir_ + "/pieces_out";
  split_model(sequence_out, split);
  try {
    Pipeline refused(split.output_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
    FAIL() << "a sequence output is refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("is not a tensor"), std::string::npos) << e.what();
  }
}

TEST_F(PipelineTest, SequenceModeFromAPlanRunsItsSourceModel) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts2, dir_);
  Pipeline from_plan(plan_dir, options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  Pipeline from_model(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  EXPECT_EQ(from_plan.stage_count(), 1);
  const TensorMap inputs = skip_inputs(2, 3);
  expect_bitwise_equal(from_plan.submit(inputs).get(), from_model.submit(inputs).get(), "sequence");
}

TEST_F(PipelineTest, ResultsStayInOrderUnderEightConcurrentSubmitters) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts4, dir_);
  Pipeline sequence(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}, 3));
  constexpr int kThreads = 8, kPerThread = 12;
  std::vector<std::vector<TensorMap>> inputs(kThreads), results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) inputs[t].push_back(skip_inputs(1, t * 100 + i));
  }
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      std::vector<std::future<TensorMap>> futures;
      for (const TensorMap& in : inputs[t]) futures.push_back(pipeline.submit(in));
      for (auto& f : futures) results[t].push_back(f.get());
    });
  }
  for (auto& s : submitters) s.join();
  for (int t = 0; t < kThreads; ++t) {
    const auto expected = sequence.run(inputs[t]);
    for (int i = 0; i < kPerThread; ++i) {
      expect_bitwise_equal(results[t][i], expected[i], "thread " + std::to_string(t) + " request " + std::to_string(i));
    }
  }
  // Every stage saw the requests in submission order.
  std::map<int, std::vector<int64_t>> order;
  for (const StageRecord& r : pipeline.timings().records()) order[r.stage].push_back(r.request);
  ASSERT_EQ(order.size(), 4u);
  for (const auto& [stage, ids] : order) {
    ASSERT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread)) << "stage " << stage;
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int64_t>(i)) << "stage " << stage;
  }
}

// x -> Relu -> Neg -> Gather(axis 1, idx) + ...: an index out of range fails in stage 2 only.
ModelSpec gather_model() {
  ModelSpec spec;
  spec.inputs = {row4("x"), value("idx", DType::INT64, {Dim{1, ""}})};
  spec.outputs = {"y"};
  spec.types["g"] = value("g", DType::FLOAT, {Dim{-1, "batch"}, Dim{1, ""}});
  spec.nodes = {
      {"Relu", {"x"}, {"a"}},
      {"Neg", {"a"}, {"b"}},
      {"Gather", {"b", "idx"}, {"g"}, {test::attr_i("axis", 1)}},
      {"Add", {"b", "g"}, {"y"}},
  };
  return spec;
}

TEST_F(PipelineTest, AFailureInOneStageFailsExactlyTheAffectedRequests) {
  const std::string plan_dir = write_plan(gather_model(), {1, 2}, dir_);
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}, 4));
  Pipeline sequence(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  std::vector<TensorMap> requests;
  std::vector<std::future<TensorMap>> futures;
  for (int i = 0; i < 30; ++i) {
    Tensor idx = make_tensor(DType::INT64, {1});
    idx.as<int64_t>()[0] = i % 3 == 1 ? 100 : i % 4;
    requests.push_back({{"x", random_floats({2, 4}, i)}, {"idx", idx}});
    futures.push_back(pipeline.submit(requests.back()));
  }
  for (int i = 0; i < 30; ++i) {
    if (i % 3 == 1) {
      try {
        futures[i].get();
        ADD_FAILURE() << "request " << i << " should have failed";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
        EXPECT_EQ(std::string(e.what()).rfind("stage 2 (piece_2.onnx, cpu:1): ", 0), 0u) << e.what();
        ASSERT_TRUE(e.stage().has_value());
        EXPECT_EQ(e.stage()->index, 2);
        EXPECT_EQ(e.stage()->piece, "piece_2.onnx");
        EXPECT_EQ(e.stage()->device, "cpu:1");
      }
    } else {
      expect_bitwise_equal(futures[i].get(), sequence.submit(requests[i]).get(), "request " + std::to_string(i));
    }
  }
  int failed = 0;
  for (const StageRecord& r : pipeline.timings().records()) {
    if (r.failed) {
      ++failed;
      EXPECT_EQ(r.stage, 2);
      EXPECT_EQ(r.request % 3, 1);
    }
  }
  EXPECT_EQ(failed, 10);
  // run() answers every request, then rethrows the first failure.
  EXPECT_THROW(pipeline.run({requests[0], requests[1]}), Error);
}

// Keeps what the request-level hook delivers, and checks that it comes before the answer.
struct RequestLog : StageObserver {
  std::mutex mutex;
  std::vector<RequestRecord> done;
  void on_request_done(const RequestRecord& record) override {
    std::lock_guard<std::mutex> lock(mutex);
    done.push_back(record);
  }
};

void expect_monotone(const RequestRecord& r) {
  SCOPED_TRACE("request " + std::to_string(r.id));
  EXPECT_LE(r.submitted, r.admitted);
  double t = r.admitted;
  for (const StageRecord& s : r.stages) {
    EXPECT_EQ(s.request, r.id);
    EXPECT_LE(t, s.t_begin) << "stage " << s.stage;
    EXPECT_LE(s.t_begin, s.t_end) << "stage " << s.stage;
    t = s.t_end;
  }
  EXPECT_LE(t, r.answered);
  EXPECT_DOUBLE_EQ(r.latency_us(), r.answered - r.admitted);
}

TEST_F(PipelineTest, EachRequestHasAnIdInSubmissionOrderAndOneMonotoneRecord) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts4, dir_);
  auto log = std::make_shared<RequestLog>();
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"}, 3);
  options.observers.push_back(log);
  Pipeline pipeline(plan_dir, options);
  std::vector<Ticket> tickets;
  for (int i = 0; i < 10; ++i) tickets.push_back(pipeline.submit(skip_inputs(1, i)));
  for (size_t i = 0; i < tickets.size(); ++i) {
    EXPECT_EQ(tickets[i].id, static_cast<int64_t>(i));
    tickets[i].get();
    // The record reached the observers before the answer reached the caller.
    std::lock_guard<std::mutex> lock(log->mutex);
    EXPECT_GE(log->done.size(), i + 1);
  }
  const std::vector<RequestRecord> records = pipeline.timings().requests();
  ASSERT_EQ(records.size(), 10u);
  ASSERT_EQ(log->done.size(), 10u);
  for (size_t i = 0; i < records.size(); ++i) {
    const RequestRecord& r = records[i];
    EXPECT_EQ(r.id, static_cast<int64_t>(i));
    EXPECT_FALSE(r.failed);
    ASSERT_EQ(r.stages.size(), 4u);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(r.stages[k].stage, k);
    expect_monotone(r);
    if (i > 0) {
      EXPECT_LE(records[i - 1].admitted, r.admitted) << "ids follow admission";
    }
  }
  EXPECT_LE(records.back().answered, pipeline.now_us());
}

TEST_F(PipelineTest, FailedRequestsAreRecordedUpToTheStageThatFailed) {
  const std::string plan_dir = write_plan(gather_model(), {1, 2}, dir_);
  auto log = std::make_shared<RequestLog>();
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"}, 4);
  options.observers.push_back(log);
  Pipeline pipeline(plan_dir, options);
  std::vector<Ticket> tickets;
  for (int i = 0; i < 6; ++i) {
    Tensor idx = make_tensor(DType::INT64, {1});
    idx.as<int64_t>()[0] = i % 2 == 1 ? 100 : 0;
    tickets.push_back(pipeline.submit({{"x", random_floats({2, 4}, i)}, {"idx", idx}}));
  }
  for (Ticket& ticket : tickets) {
    if (ticket.id % 2 == 1) {
      EXPECT_THROW(ticket.get(), Error);
    } else {
      ticket.get();
    }
  }
  const std::vector<RequestRecord> records = pipeline.timings().requests();
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(log->done.size(), 6u);
  for (const RequestRecord& r : records) {
    expect_monotone(r);
    EXPECT_EQ(r.failed, r.id % 2 == 1);
    ASSERT_EQ(r.stages.size(), 3u) << "the failing stage is the last one";
    EXPECT_EQ(r.stages.back().failed, r.failed);
  }
  // An invalid request takes no id.
  EXPECT_THROW(pipeline.submit({}), Error);
  Ticket next = pipeline.submit({{"x", random_floats({2, 4}, 9)}, {"idx", make_tensor(DType::INT64, {1})}});
  EXPECT_EQ(next.id, 6);
  next.get();
}

TEST_F(PipelineTest, InvalidInputsAreRejectedBeforeAnythingIsEnqueued) {
  const std::string plan_dir = write_plan(gather_model(), {2}, dir_);
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
  Tensor idx = make_tensor(DType::INT64, {1});
  const TensorMap good = {{"x", random_floats({2, 4}, 1)}, {"idx", idx}};
  auto expect_usage = [&](TensorMap inputs, const std::string& fragment) {
    try {
      pipeline.submit(std::move(inputs));
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::USAGE);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  TensorMap missing = good;
  missing.erase("idx");
  expect_usage(missing, "input 'idx': missing");
  TensorMap unknown = good;
  unknown["z"] = idx;
  expect_usage(unknown, "input 'z': not an input of the model");
  TensorMap wrong_type = good;
  wrong_type["idx"] = make_tensor(DType::INT32, {1});
  expect_usage(wrong_type, "input 'idx': expected int64, got int32");
  TensorMap wrong_rank = good;
  wrong_rank["x"] = random_floats({8}, 1);
  expect_usage(wrong_rank, "input 'x': expected rank 2 [batch,4]");
  TensorMap wrong_dim = good;
  wrong_dim["x"] = random_floats({2, 5}, 1);
  expect_usage(wrong_dim, "input 'x': dimension 1 must be 4");
  TensorMap short_data = good;
  short_data["x"].data.resize(4);
  expect_usage(short_data, "input 'x': 4 bytes for float [2,4]");
  EXPECT_TRUE(pipeline.timings().records().empty());

  const std::string skip_dir = dir_ + "/skip";
  fs::create_directories(skip_dir);
  Pipeline two_inputs(write_plan(skip_model(), kSkipCuts2, skip_dir), options_for(PipelineMode::PIPELINE, {"cpu:1"}));
  try {
    two_inputs.submit({{"x", random_floats({2, 4}, 1)}, {"m", random_floats({3, 4}, 1)}});
    ADD_FAILURE() << "accepted different batch sizes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("('batch') is"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pipeline.submit(good).get().count("y"), 1u);
}

// Slow pieces: a chain of 256x256 MatMuls.
ModelSpec slow_model(int layers) {
  ModelSpec spec;
  spec.inputs = {value("x", DType::FLOAT, {Dim{-1, "batch"}, Dim{256, ""}})};
  std::string prev = "x";
  for (int i = 0; i < layers; ++i) {
    const std::string w = "w" + std::to_string(i), h = "h" + std::to_string(i);
    spec.weights.push_back(test::random_tensor(w, {256, 256}, i + 1, 0.05f));
    spec.nodes.push_back({"MatMul", {prev, w}, {h}});
    spec.types[h] = value(h, DType::FLOAT, {Dim{-1, "batch"}, Dim{256, ""}});
    prev = h;
  }
  spec.outputs = {prev};
  return spec;
}

TEST_F(PipelineTest, DestroyingWithRequestsInFlightAnswersEveryFutureAndReturns) {
  const std::string plan_dir = write_plan(slow_model(8), {4}, dir_);
  // Stage 0 holds the first request until all 16 are submitted; each then takes milliseconds, so most are still
  // queued when the pipeline is destroyed right after, however the threads are scheduled.
  struct HoldFirst : StageObserver {
    std::promise<void> submitted;
    std::shared_future<void> all_in = submitted.get_future().share();
    void on_stage_begin(int stage, int64_t request) override {
      if (stage == 0 && request == 0) all_in.wait();
    }
    void on_stage_end(const StageRecord&) override {}
  };
  auto hold = std::make_shared<HoldFirst>();
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"}, 16);
  options.observers.push_back(hold);
  std::vector<TensorMap> requests;
  for (int i = 0; i < 16; ++i) requests.push_back({{"x", random_floats({128, 256}, i)}});
  std::vector<std::future<TensorMap>> futures;
  {
    Pipeline pipeline(plan_dir, options);
    for (TensorMap& request : requests) futures.push_back(pipeline.submit(std::move(request)));
    hold->submitted.set_value();
  }
  int cancelled = 0;
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    try {
      f.get();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::CANCELLED) << e.what();
      ++cancelled;
    }
  }
  EXPECT_GT(cancelled, 0);
}

TEST_F(PipelineTest, SubmitBlocksAtMaxInflightAndNeverHoldsMore) {
  const std::string plan_dir = write_plan(slow_model(4), {2}, dir_);
  struct InFlight : StageObserver {
    std::atomic<int> max_seen{0};
    std::atomic<int> active{0};
    void on_stage_begin(int stage, int64_t) override {
      if (stage != 0) return;
      const int now = ++active;
      int seen = max_seen.load();
      while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
      }
    }
    void on_stage_end(const StageRecord& r) override {
      if (r.stage == 1) --active;
    }
  };
  auto observer = std::make_shared<InFlight>();
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"}, 2);
  options.observers.push_back(observer);
  Pipeline pipeline(plan_dir, options);
  std::vector<TensorMap> requests;
  for (int i = 0; i < 12; ++i) requests.push_back({{"x", random_floats({8, 256}, i)}});
  EXPECT_EQ(pipeline.run(requests).size(), 12u);
  EXPECT_LE(observer->max_seen.load(), 2);
  EXPECT_GE(observer->max_seen.load(), 1);
}

TEST_F(PipelineTest, AnInterruptedSubmitUnderBackPressureEnqueuesNothing) {
  const std::string plan_dir = write_plan(slow_model(4), {2}, dir_);
  struct Hold : StageObserver {  // holds request 0 in stage 0 until released
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    void on_stage_begin(int stage, int64_t request) override {
      if (stage == 0 && request == 0) released.wait();
    }
  };
  auto hold = std::make_shared<Hold>();
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"}, 1);
  options.observers.push_back(hold);
  Pipeline pipeline(plan_dir, options);
  Ticket first = pipeline.submit({{"x", random_floats({8, 256}, 0)}});
  int asked = 0;
  try {
    pipeline.submit({{"x", random_floats({8, 256}, 1)}}, [&] { return ++asked == 2; });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CANCELLED);
    EXPECT_NE(std::string(e.what()).find("submit interrupted"), std::string::npos);
  }
  EXPECT_EQ(asked, 2);
  hold->release.set_value();
  first.get();
  // The interrupted request took no id and no permit: the next one is admitted as request 1.
  EXPECT_EQ(pipeline.submit({{"x", random_floats({8, 256}, 2)}}, [] { return false; }).id, 1);
}

TEST_F(PipelineTest, MicroBatchedRunEqualsTheWholeBatch) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts4, dir_);
  Pipeline sequence(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1"});
  options.micro_batch = 3;
  Pipeline pipeline(plan_dir, options);
  const TensorMap batch = skip_inputs(10, 42);
  const TensorMap whole = sequence.submit(batch).get();
  const TensorMap micro = pipeline.run_batch(batch);
  expect_bitwise_equal(micro, whole, "micro-batches of 3");
  EXPECT_EQ(pipeline.timings().records().size(), 4u * 4u);  // 4 micro-batches through 4 stages
  expect_bitwise_equal(pipeline.run_batch(batch, 0), whole, "one batch");
  expect_bitwise_equal(pipeline.run_batch(batch, 1), whole, "micro-batches of 1");
}

TEST_F(PipelineTest, MicroBatchingNeedsABatchAxisEverywhere) {
  const std::string plan_dir = write_plan(gather_model(), {2}, dir_);
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
  Tensor idx = make_tensor(DType::INT64, {1});
  try {
    pipeline.run_batch({{"x", random_floats({4, 4}, 1)}, {"idx", idx}}, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("micro-batching"), std::string::npos) << e.what();
  }
}

TEST(PipelineBatching, SplitsAndConcatenatesAlongAxisZero) {
  Tensor x = random_floats({5, 2}, 1);
  Tensor s;
  s.dtype = DType::STRING;
  s.shape = {5};
  s.strings = {"a", "b", "c", "d", "e"};
  const auto parts = detail::split_batch({{"x", x}, {"s", s}}, 2);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].at("x").shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(parts[1].at("s").strings, (std::vector<std::string>{"c", "d"}));
  const auto joined = detail::concat_batches(parts, {2, 2, 1});
  EXPECT_EQ(joined.at("x").data, x.data);
  EXPECT_EQ(joined.at("x").shape, x.shape);
  EXPECT_EQ(joined.at("s").strings, s.strings);
  EXPECT_THROW(detail::concat_batches(parts, {2, 2, 2}), Error);
  EXPECT_THROW(detail::split_batch({{"x", x}, {"y", random_floats({4, 2}, 2)}}, 2), Error);
  EXPECT_THROW(detail::batch_size({{"scalar", make_tensor(DType::FLOAT, {})}}), Error);
}

TEST_F(PipelineTest, ReplicasAnswerInOrderAndUseEveryReplica) {
  write_plan(skip_model(), kSkipCuts2, dir_);
  Pipeline sequence(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  Pipeline replicas(dir_ + "/model.onnx", options_for(PipelineMode::REPLICAS, {"cpu:1", "cpu:1", "cpu:1"}));
  EXPECT_EQ(replicas.lane_count(), 3);
  std::vector<TensorMap> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(skip_inputs(2, i));
  const auto expected = sequence.run(requests);
  const auto actual = replicas.run(requests);
  for (size_t i = 0; i < requests.size(); ++i) expect_bitwise_equal(actual[i], expected[i], std::to_string(i));
  std::set<int> lanes;
  for (const StageRecord& r : replicas.timings().records()) {
    lanes.insert(r.lane);
    EXPECT_EQ(r.lane, r.request % 3);
  }
  EXPECT_EQ(lanes.size(), 3u);
}

TEST_F(PipelineTest, TimingsAndCopyCountersDescribeEveryStage) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts4, dir_);
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
  std::vector<TensorMap> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(skip_inputs(3, i));
  pipeline.run(requests);
  const auto records = pipeline.timings().records();
  ASSERT_EQ(records.size(), 40u);
  std::map<std::pair<int64_t, int>, StageRecord> by_key;
  std::map<int, int> first_waits;
  for (const StageRecord& r : records) {
    by_key[std::make_pair(r.request, r.stage)] = r;
    EXPECT_EQ(r.device, "cpu:1");
    EXPECT_FALSE(r.failed);
    EXPECT_GE(r.ttime + 1e-3, r.wait + r.copy1 + r.run + r.copy2);
    EXPECT_GE(r.t_end, r.t_begin);
    EXPECT_GE(r.t_begin, r.t_wait);
    if (r.wait0 > 0) ++first_waits[r.stage];
    // CPU hand-off: nothing is copied in; only model outputs are copied out, once, to the host.
    EXPECT_EQ(r.copy_in.bytes, 0);
    EXPECT_EQ(r.copy_in.path, CopyPath::NONE);
    const bool has_output = r.stage == 0 || r.stage == 3;  // e and y
    EXPECT_EQ(r.copy_out.bytes, has_output ? 3 * 4 * 4 : 0) << "stage " << r.stage;
    EXPECT_EQ(r.copy_out.path, has_output ? CopyPath::HOST : CopyPath::NONE);
  }
  for (const auto& [stage, n] : first_waits) EXPECT_LE(n, 1) << "stage " << stage;
  for (int64_t id = 0; id < 10; ++id) {
    for (int k = 0; k + 1 < 4; ++k) {
      const StageRecord& before = by_key[std::make_pair(id, k)];
      const StageRecord& after = by_key[std::make_pair(id, k + 1)];
      EXPECT_GE(after.t_begin, before.t_end);
    }
  }
  const auto summary = pipeline.timings().summary();
  ASSERT_EQ(summary.size(), 4u);
  for (const StageSummary& s : summary) {
    EXPECT_EQ(s.requests, 10);
    EXPECT_GT(s.run, 0);
  }
  EXPECT_EQ(summary[3].copy_bytes.at(CopyPath::HOST), 10 * 48);
  const std::string trace = chrome_trace(pipeline.timings().requests(), pipeline.stages(), "timings");
  EXPECT_NE(trace.find("\"traceEvents\""), std::string::npos);
  pipeline.timings().clear();
  EXPECT_TRUE(pipeline.timings().records().empty());
}

TEST_F(PipelineTest, StagesReportTheirPieceDeviceAndMemory) {
  const std::string plan_dir = write_plan(slow_model(4), {2}, dir_);
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1", "cpu:1"}));
  pipeline.submit({{"x", random_floats({4, 256}, 1)}}).get();
  const auto stages = pipeline.stages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[1].piece, "piece_1.onnx");
  EXPECT_EQ(stages[1].device, "cpu:1");
  EXPECT_EQ(stages[1].inputs.at(0).name, "h1");
  ASSERT_TRUE(stages[0].memory.count("MaxInUse"));
  EXPECT_GT(stages[0].memory.at("MaxInUse"), 0);
}

TEST_F(PipelineTest, BadOptionsAreUsageErrors) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts2, dir_);
  auto expect_error = [&](const std::string& source, PipelineOptions options, ErrorCode code,
                          const std::string& fragment) {
    try {
      Pipeline pipeline(source, std::move(options));
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1", "cpu:1", "cpu:1"}), ErrorCode::USAGE,
               "3 devices for a plan of 2 pieces");
  expect_error(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1", "cpu:1"}), ErrorCode::USAGE,
               "sequence mode runs on one device");
  expect_error(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1", "npu"}), ErrorCode::USAGE, "device 'npu'");
  expect_error(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}, 0), ErrorCode::USAGE, "max_inflight");
  expect_error(dir_ + "/nothing", options_for(PipelineMode::PIPELINE, {"cpu:1"}), ErrorCode::IO, "nothing");
  EXPECT_THROW(pipeline_mode_from_name("parallel"), Error);
  EXPECT_EQ(pipeline_mode_from_name("replicas"), PipelineMode::REPLICAS);
  EXPECT_STREQ(pipeline_mode_name(PipelineMode::SEQUENCE), "sequence");
}

TEST_F(PipelineTest, ACudaStageWithoutAGpuFailsNamingTheStage) {
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts2, dir_);
  try {
    Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1", "cuda:0"}));
    GTEST_SKIP() << "a CUDA device is present: covered by the gpu tests";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
    EXPECT_EQ(std::string(e.what()).rfind("stage 1 (piece_1.onnx, cuda:0): ", 0), 0u) << e.what();
  }
  // Stages load in parallel; when several fail, the error is the first stage's, every time.
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cuda:0", "cuda:0"}));
      GTEST_SKIP() << "a CUDA device is present: covered by the gpu tests";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("stage 0 (piece_0.onnx, cuda:0): ", 0), 0u) << e.what();
    }
  }
}

TEST_F(PipelineTest, PinnedStagesRunOnTheirCores) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 cores";
  const std::string plan_dir = write_plan(skip_model(), kSkipCuts2, dir_);
  Pipeline sequence(dir_ + "/model.onnx", options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  Pipeline pipeline(plan_dir, options_for(PipelineMode::PIPELINE, {"cpu:1@0", "cpu:1@1"}));
  const TensorMap inputs = skip_inputs(2, 9);
  expect_bitwise_equal(pipeline.submit(inputs).get(), sequence.submit(inputs).get(), "pinned");
}

// Ready-made graphs of the split tests, split by split_model at 2 and 4 pieces, run as pipelines.
TEST_F(PipelineTest, SplitModelsRunAsPipelinesEqualToSequence) {
  using MakeModel = std::string (*)(const std::string&);
  const std::vector<std::pair<std::string, MakeModel>> models = {
      {"skip_connections", test::skip_connections},
      {"mask_read_by_every_block", test::mask_read_by_every_block},
      {"several_inputs_outputs", test::several_inputs_outputs_with_optional_empty_input},
      {"early_extra_output", test::early_extra_output}};
  for (const auto& [name, make] : models) {
    const std::string model = make(dir_);
    Pipeline sequence(model, options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
    VerifyOptions random;
    random.dims = {{"batch", 2}};
    int pipelines = 0;
    for (int parts : {2, 4}) {
      SCOPED_TRACE(name + " n=" + std::to_string(parts));
      SplitOptions split;
      split.parts = parts;
      split.balance = Balance::BYTES;
      split.output_dir = dir_ + "/" + name + "_" + std::to_string(parts);
      try {
        split_model(model, split);
      } catch (const Error& e) {
        // Fewer useful boundaries than parts: nothing to run.
        ASSERT_NE(std::string(e.what()).find("boundar"), std::string::npos) << e.what();
        continue;
      }
      Pipeline pipeline(split.output_dir, options_for(PipelineMode::PIPELINE, {"cpu:1"}));
      EXPECT_EQ(pipeline.stage_count(), parts);
      ++pipelines;
      for (uint64_t seed = 0; seed < 3; ++seed) {
        random.seed = seed;
        const TensorMap inputs = make_inputs(pipeline.inputs(), random);
        expect_bitwise_equal(pipeline.submit(inputs).get(), sequence.submit(inputs).get(),
                             "seed " + std::to_string(seed));
      }
    }
    EXPECT_GT(pipelines, 0) << name;
  }
}

TEST_F(PipelineTest, PipelineFromAModelSplitsOnTheFly) {
  const std::string model = test::skip_connections(dir_);
  PipelineOptions options = options_for(PipelineMode::PIPELINE, {"cpu:1", "cpu:1"});
  options.split.balance = Balance::BYTES;
  Pipeline pipeline(model, options);
  Pipeline sequence(model, options_for(PipelineMode::SEQUENCE, {"cpu:1"}));
  EXPECT_EQ(pipeline.stage_count(), 2);
  const TensorMap inputs = {{"x", random_floats({3, 8}, 5)}};
  expect_bitwise_equal(pipeline.submit(inputs).get(), sequence.submit(inputs).get(), "on the fly");
}

}  // namespace
}  // namespace onnxpipe
