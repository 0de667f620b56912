// The splitter on graphs built in code: every shape of graph a real model has, split at every N <= 4, reproduces the
// model; bad input fails with a clear error and leaves nothing on disk.
#include "onnxpipe/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "graph.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/onnx_check.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

int node_count(const std::string& model) {
  auto loaded = detail::Model::load(model);
  return detail::Graph(loaded.graph()).size();
}

Plan split(const std::string& model, const fs::path& out, int parts, Balance balance = Balance::FLOPS,
           std::vector<std::string> cuts = {}) {
  SplitOptions options;
  options.parts = parts;
  options.balance = balance;
  options.cuts = std::move(cuts);
  options.output_dir = out.string();
  options.force = true;
  options.profile_runs = 3;
  options.dims = {{"batch", 3}};
  return split_model(model, options);
}

// Everything in `dir` (recursively): a failed split must leave nothing behind.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) names.push_back(entry.path().string());
  return names;
}

ErrorCode split_error(const std::string& model, const fs::path& out, int parts, std::vector<std::string> cuts = {}) {
  try {
    SplitOptions options;
    options.parts = parts;
    options.balance = Balance::FLOPS;
    options.cuts = std::move(cuts);
    options.output_dir = out.string();
    split_model(model, options);
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << "one line: " << error.what();
    return error.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::INTERNAL;
}

// Pieces must reproduce the model exactly, for the dims the tests split with.
VerifyOptions bitwise() {
  VerifyOptions verify;
  verify.dims = {{"batch", 3}};
  verify.rtol = 0;
  verify.atol = 0;
  return verify;
}

bool declares_unknown_rank(const PieceDesc& piece) {
  auto unknown = [](const ValueDesc& value) { return !value.has_shape; };
  return std::any_of(piece.inputs.begin(), piece.inputs.end(), unknown) ||
         std::any_of(piece.outputs.begin(), piece.outputs.end(), unknown);
}

class SplitEveryModel : public testing::TestWithParam<test::NamedModel> {};

TEST_P(SplitEveryModel, EveryPieceCountReproducesAllOutputs) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = GetParam().make(dir.string());
  const int max_parts = std::min(4, node_count(model));
  for (Balance balance : {Balance::FLOPS, Balance::BYTES, Balance::TIME}) {
    for (int parts = 1; parts <= max_parts; ++parts) {
      SCOPED_TRACE(std::string(balance_name(balance)) + " n=" + std::to_string(parts));
      const fs::path out = dir / ("pieces_" + std::to_string(parts));
      const Plan plan = split(model, out, parts, balance);
      ASSERT_EQ(plan.parts(), parts);
      for (const auto& piece : plan.pieces) {
        EXPECT_GT(piece.node_count, 0);
        // onnx 1.12's checker wants a shape on every graph input/output, but a value of unknown rank must be declared
        // without one (an empty shape would mean a scalar): such pieces are checked by running them.
        if (!declares_unknown_rank(piece)) {
          EXPECT_NO_THROW(test::check_onnx_file((out / piece.file).string())) << piece.file;
        }
      }
      const VerifyOptions verify = bitwise();
      const VerifyReport report = verify_split(model, out.string(), verify);
      EXPECT_EQ(report.outputs.size(), plan.model_outputs.size());
      for (const auto& output : report.outputs)
        EXPECT_TRUE(output.diff.bitwise_equal) << output.name << " max abs " << output.diff.max_abs;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, SplitEveryModel, testing::ValuesIn(test::all_models()),
                         [](const testing::TestParamInfo<test::NamedModel>& info) { return info.param.name; });

TEST(Split, GraphOutputLeavesFromThePieceThatMakesIt) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::early_extra_output(dir.string());
  const int n = std::min(4, node_count(model));
  const Plan plan = split(model, dir / "out", n);
  for (const auto& output : plan.model_outputs) {
    int producers = 0;
    for (const auto& piece : plan.pieces)
      for (const auto& value : piece.outputs) producers += value.name == output.name;
    EXPECT_EQ(producers, 1) << output.name;
  }
  // The last piece does not recompute an early output: it has fewer nodes than the whole graph.
  EXPECT_LT(plan.pieces.back().node_count, node_count(model));
}

TEST(Split, SharedWeightIsCopiedAndReportedAsDuplicated) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::shared_weight_first_last(dir.string());
  const Plan plan = split(model, dir / "out", 2);
  EXPECT_GT(plan.pieces[0].duplicated_bytes, 0);
  EXPECT_EQ(plan.pieces[0].duplicated_bytes, plan.pieces[1].duplicated_bytes);
}

TEST(Split, ForcedCutsAreHonoured) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::skip_connections(dir.string());
  auto loaded = detail::Model::load(model);
  detail::Graph graph(loaded.graph());
  const std::string tensor = loaded.graph().nodes[graph.order()[0]].outputs[0];
  const Plan plan = split(model, dir / "out", 2, Balance::FLOPS, {tensor});
  EXPECT_EQ(plan.pieces[0].node_count, 1);
  bool crosses = false;
  for (const auto& output : plan.pieces[0].outputs) crosses |= output.name == tensor;
  EXPECT_TRUE(crosses);
}

bool crosses(const Plan& plan, const std::string& name) {
  return std::any_of(plan.values.begin(), plan.values.end(),
                     [&](const CrossingValue& value) { return value.name == name; });
}

// A sequence is not free to move: of two cuts that leave the same node costs on each side, the split takes the one
// that passes the tensor.
TEST(Split, CutPassesATensorRatherThanSequencesOfEqualBalance) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::loop_emitting_sequences(dir.string());
  const Plan plan = split(model, dir / "out", 2, Balance::BYTES);
  ASSERT_EQ(plan.parts(), 2);
  ASSERT_EQ(plan.pieces[1].inputs.size(), 1u);
  EXPECT_EQ(plan.pieces[1].inputs[0].name, "a");
  EXPECT_FALSE(plan.pieces[1].inputs[0].bytes_estimated);
  EXPECT_FALSE(crosses(plan, "s1"));
  EXPECT_FALSE(crosses(plan, "s2"));
}

// A SequenceEmpty reads nothing: each piece that reads it runs it again, and its output crosses no cut.
TEST(Split, SequenceEmptyIsRecomputedWhereItIsRead) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::sequence_empty_read_later(dir.string());
  // Pieces: [a], [sa, ca, b], [sb, cb, y]: the SequenceEmpty (file order first) is read by pieces 1 and 2.
  const Plan plan = split(model, dir / "out", 3, Balance::FLOPS, {"a", "b"});
  ASSERT_EQ(plan.parts(), 3);
  EXPECT_FALSE(crosses(plan, "empty"));
  EXPECT_EQ(plan.pieces[0].recomputed_nodes, 0);
  EXPECT_EQ(plan.pieces[1].recomputed_nodes, 1);
  EXPECT_EQ(plan.pieces[2].recomputed_nodes, 1);
  EXPECT_EQ(plan.duplicated_nodes, 1);
  const Plan loaded = Plan::load((dir / "out").string());
  EXPECT_EQ(loaded.duplicated_nodes, 1);
  EXPECT_EQ(loaded.pieces[2].recomputed_nodes, 1);
  const VerifyOptions verify = bitwise();
  for (const auto& output : verify_split(model, (dir / "out").string(), verify).outputs)
    EXPECT_TRUE(output.diff.bitwise_equal) << output.name;
}

// A tensor whose size neither shape inference nor the sizing run can tell costs an estimate, marked in plan.json.
TEST(Split, ValueOfUnknownShapeIsEstimatedAndMarked) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::shape_only_a_run_with_valid_indices_tells(dir.string());
  VerifyOptions verify = bitwise();
  Tensor index;
  index.dtype = DType::INT64;
  index.shape = {3};
  index.data.resize(3 * sizeof(int64_t), 0);  // all in the one-entry table
  verify.inputs["index"] = index;
  for (Balance balance : {Balance::FLOPS, Balance::BYTES}) {
    for (int parts = 1; parts <= 4; ++parts) {
      SCOPED_TRACE(std::string(balance_name(balance)) + " n=" + std::to_string(parts));
      const fs::path out = dir / ("pieces_" + std::to_string(parts));
      // The cut after Tile makes the unknown `tiled` cross.
      const Plan plan =
          split(model, out, parts, balance, parts > 1 ? std::vector<std::string>{"tiled"} : std::vector<std::string>{});
      for (const auto& output : verify_split(model, out.string(), verify).outputs)
        EXPECT_TRUE(output.diff.bitwise_equal) << output.name;
      if (parts == 1) continue;
      const Plan loaded = Plan::load(out.string());
      bool marked = false;
      for (const auto& piece : loaded.pieces) {
        for (const auto& value : piece.inputs) {
          if (value.name != "tiled") continue;
          marked = true;
          EXPECT_TRUE(value.bytes_estimated);
          EXPECT_GT(value.bytes, 0);
        }
        for (const auto& value : piece.inputs) {
          if (value.name == "x") {
            EXPECT_FALSE(value.bytes_estimated);
          }
        }
      }
      EXPECT_TRUE(marked);
      std::ifstream in(out / "plan.json");
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_NE(text.find("\"bytes_estimated\": true"), std::string::npos);
    }
  }
}

TEST(Split, ExternalDataSourceCopiedGivesPiecesTheirOwnDataFiles) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::external_data(dir.string());
  SplitOptions options;
  options.parts = 2;
  options.balance = Balance::FLOPS;
  options.output_dir = (dir / "out").string();
  options.weights = WeightStorage::COPY;  // the default links them (weight_links_test)
  const Plan plan = split_model(model, options);
  for (const auto& piece : plan.pieces) {
    EXPECT_FALSE(piece.data_file.empty());
    if (piece.weight_bytes > 0) {
      EXPECT_TRUE(fs::exists(dir / "out" / piece.data_file)) << piece.data_file;
    }
  }
}

TEST(Split, VerifyRefusesAModelWhoseExternalWeightsChanged) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::external_data(dir.string());
  split(model, dir / "out", 2);
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".data") continue;
    std::fstream data(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    char byte = 0;
    data.read(&byte, 1);
    data.seekp(0);
    data.put(static_cast<char>(byte ^ 1));
  }
  try {
    verify_split(model, (dir / "out").string(), VerifyOptions{});
    ADD_FAILURE() << "verify accepted a model whose weights changed after the split";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::USAGE) << error.what();
  }
}

TEST(Split, ExistingOutputIsNotOverwrittenWithoutForce) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::skip_connections(dir.string());
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out" / "keep.txt") << "mine";
  EXPECT_EQ(split_error(model, dir / "out", 2), ErrorCode::USAGE);
  EXPECT_TRUE(fs::exists(dir / "out" / "keep.txt"));
}

// Asked at every step, a split stops at whichever one first says yes: CANCELLED, and the output directory (which the
// split was to replace) as it was.
TEST(Split, CancelledAtAnyStepLeavesWhatWasThere) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  const std::string model = test::skip_connections(dir.string());
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out" / "keep.txt") << "mine";
  SplitOptions options;
  options.parts = 3;
  options.balance = Balance::TIME;  // timing rounds and pieces timed: the costly steps
  options.profile_runs = 3;
  options.dims = {{"batch", 3}};
  options.output_dir = (dir / "out").string();
  options.force = true;
  int questions = 0;
  std::vector<std::string> steps;
  options.progress = [&steps](const std::string& what, int64_t, int64_t) { steps.push_back(what); };
  options.cancelled = [&questions] { return ++questions < 0; };
  const auto before = listing(dir);
  {
    const test::TempDir scratch;  // a split run to the end, elsewhere: how many times it asks
    SplitOptions counted = options;
    counted.output_dir = (scratch.path() / "out").string();
    split_model(model, counted);
  }
  const int asked = questions;
  EXPECT_GE(asked, options.parts + 2) << "asked at each piece written, each timing round and before committing";
  EXPECT_NE(std::find(steps.begin(), steps.end(), "measuring node times"), steps.end()) << "progress still reported";
  for (int stop = 1; stop <= asked; ++stop) {
    questions = 0;
    options.cancelled = [&questions, stop] { return ++questions >= stop; };
    try {
      split_model(model, options);
      // Time balance takes extra rounds only when a cut is close, so a run may ask fewer questions than the count.
      EXPECT_LT(questions, stop) << "not cancelled at question " << stop;
      fs::remove_all(dir / "out");
      fs::create_directories(dir / "out");
      std::ofstream(dir / "out" / "keep.txt") << "mine";
      continue;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::CANCELLED) << error.what();
      EXPECT_EQ(questions, stop) << "stopped at once";
    }
    EXPECT_EQ(listing(dir), before) << "cancelled at question " << stop;
  }
  std::ifstream kept(dir / "out" / "keep.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "mine");
}

struct BadInput {
  std::string name;
  ErrorCode code;
};

void PrintTo(const BadInput& bad, std::ostream* out) { *out << bad.name; }

class SplitBadInput : public testing::TestWithParam<BadInput> {};

TEST_P(SplitBadInput, FailsClearlyAndLeavesNothing) {
  const test::TempDir temp;
  const fs::path& dir = temp.path();
  std::string model = test::skip_connections(dir.string());
  const std::string& name = GetParam().name;
  int parts = 2;
  std::vector<std::string> cuts;
  fs::path out = dir / "out";
  if (name == "not_onnx") {
    std::ofstream(model, std::ios::trunc) << "this is not a model";
  } else if (name == "truncated") {
    fs::resize_file(model, fs::file_size(model) / 2);
  } else if (name == "cycle" || name == "dangling_input") {
    test::ModelBuilder builder;
    builder.input("x", DType::FLOAT, {2});
    if (name == "cycle") {
      builder.node("Add", {"x", "b"}, {"a"});
      builder.node("Relu", {"a"}, {"b"});
    } else {
      builder.node("Add", {"x", "nobody"}, {"b"});
    }
    builder.output("b", DType::FLOAT, {2});
    model = builder.save((dir / "bad.onnx").string());
  } else if (name == "unknown_cut") {
    cuts = {"no_such_tensor"};
  } else if (name == "too_many_parts") {
    parts = 1000;
  } else if (name == "missing_external_data") {
    model = test::external_data(dir.string());
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".data") fs::remove(entry.path());
  } else if (name == "unwritable_output") {
    out = fs::path(model) / "out";  // under a regular file: no one can create it, root included
  }
  const auto before = listing(dir);
  EXPECT_EQ(split_error(model, out, parts, cuts), GetParam().code);
  EXPECT_EQ(listing(dir), before);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, SplitBadInput,
    testing::Values(BadInput{"not_onnx", ErrorCode::INVALID_MODEL}, BadInput{"truncated", ErrorCode::INVALID_MODEL},
                    BadInput{"cycle", ErrorCode::INVALID_MODEL}, BadInput{"dangling_input", ErrorCode::INVALID_MODEL},
                    BadInput{"unknown_cut", ErrorCode::USAGE}, BadInput{"too_many_parts", ErrorCode::USAGE},
                    BadInput{"missing_external_data", ErrorCode::IO}, BadInput{"unwritable_output", ErrorCode::IO}),
    [](const testing::TestParamInfo<BadInput>& info) { return info.param.name; });

// The library says what is wrong in its own terms and names the argument for a front end to translate.
TEST(MakeInputs, ErrorsNameTheInputArgumentWithoutCliFlags) {
  const std::vector<ValueDesc> inputs = {{"x", DType::FLOAT, false, {}, -1}};
  auto expect_argument_error = [&inputs](const VerifyOptions& options, const std::string& message,
                                         const std::string& entry, bool missing) {
    try {
      make_inputs(inputs, options);
      ADD_FAILURE() << "no error; expected " << message;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::USAGE);
      EXPECT_EQ(e.what(), message);
      ASSERT_TRUE(e.argument().has_value());
      EXPECT_EQ(e.argument()->field, "inputs");
      EXPECT_EQ(e.argument()->entry, entry);
      EXPECT_EQ(e.argument()->missing, missing);
    }
  };
  VerifyOptions options;
  expect_argument_error(options, "input 'x' has no declared shape: give a value for it", "x", true);
  options.inputs["z"] = make_tensor(DType::FLOAT, {1});
  expect_argument_error(options, "given input 'z': the model has no such input", "z", false);
}

}  // namespace
