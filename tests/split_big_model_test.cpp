// The case onnxpipe exists for: a model over protobuf's 2 GB limit, with its weights in an external data file.
// gpt2_large (GPT-2-large-shaped, 3.1 GiB) is exported only on request, `/usr/bin/python3 scripts/export_models.py
// --only gpt2_large` (a minute, 7 GB of memory), into $ONNXPIPE_MODELS or models/; the test is skipped without it.
// Also here, on a model built in code: torch writes a large Constant's value as external data too, and a piece must
// carry that data in its own file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "model_io.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/models_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

// Removes a directory when the test ends, failed or not: gpt2_large's pieces are 3 GiB.
struct RemovedAtExit {
  fs::path path;
  ~RemovedAtExit() {
    std::error_code error;
    fs::remove_all(path, error);
  }
};

// Every name a piece's nodes read (subgraphs' outer names included) or that leaves it as a graph output.
std::set<std::string> names_read(const detail::GraphDesc& graph) {
  std::set<std::string> read;
  for (const auto& node : graph.nodes) {
    read.insert(node.inputs.begin(), node.inputs.end());
    read.insert(node.implicit_inputs.begin(), node.implicit_inputs.end());
  }
  for (const auto& output : graph.outputs) read.insert(output.name);
  return read;
}

TEST(SplitBigModel, Gpt2LargeInTwoPiecesByFlopsReproducesTheModelWithOwnDataFiles) {
  const fs::path model = test::models_dir() / "gpt2_large.onnx";
  if (!fs::exists(model))
    GTEST_SKIP() << model << " is absent: export it with `/usr/bin/python3 scripts/export_models.py --only gpt2_large`";
  const detail::Model source = detail::Model::load(model.string());
  ASSERT_TRUE(source.graph().external_data) << "gpt2_large keeps its weights in external data";
  int64_t model_weight_bytes = 0;
  for (const auto& [name, weight] : source.graph().weights) model_weight_bytes += weight.bytes;

  const fs::path out = fs::temp_directory_path() / ("onnxpipe_big_model_" + std::to_string(::getpid()));
  const RemovedAtExit cleanup{out};
  SplitOptions options;
  options.parts = 2;
  options.balance = Balance::FLOPS;
  options.dims = {{"seq", 8}};
  options.output_dir = out.string();
  options.force = true;
  options.weights = WeightStorage::COPY;  // what this test checks; weight_links_test the default, links
  const Plan plan = split_model(model.string(), options);
  ASSERT_EQ(plan.parts(), 2);

  // Each piece has its own data file, holds only weights it reads, and all pieces together hold every weight of the
  // model once, plus the copies counted as duplicated.
  std::map<std::string, int> holders;
  int64_t held_bytes = 0;
  for (const auto& piece : plan.pieces) {
    SCOPED_TRACE(piece.file);
    EXPECT_EQ(piece.data_file, "piece_" + std::to_string(piece.index) + ".data");
    ASSERT_TRUE(fs::exists(out / piece.data_file));
    const detail::Model loaded = detail::Model::load((out / piece.file).string());  // checks its external ranges
    const detail::GraphDesc& graph = loaded.graph();
    const std::set<std::string> read = names_read(graph);
    int64_t bytes = 0, external_bytes = 0;
    for (const auto& [name, weight] : graph.weights) {
      EXPECT_TRUE(read.count(name)) << "weight '" << name << "' is held but not read";
      ASSERT_TRUE(source.graph().weights.count(name)) << name;
      EXPECT_EQ(weight.bytes, source.graph().weights.at(name).bytes) << name;
      ++holders[name];
      bytes += weight.bytes;
      if (weight.external) external_bytes += weight.bytes;
    }
    EXPECT_EQ(bytes, piece.weight_bytes);
    EXPECT_GT(external_bytes, int64_t(100) << 20) << "the blocks' weights are in the data file";
    EXPECT_GE(static_cast<int64_t>(fs::file_size(out / piece.data_file)), external_bytes);
    held_bytes += bytes;
  }
  int64_t extra_copies = 0, duplicated = 0;
  for (const auto& [name, count] : holders) extra_copies += (count - 1) * source.graph().weights.at(name).bytes;
  for (const auto& piece : plan.pieces) duplicated += piece.duplicated_bytes;
  EXPECT_EQ(held_bytes - extra_copies, model_weight_bytes);
  EXPECT_EQ(holders.size(), source.graph().weights.size()) << "every weight is in some piece";
  EXPECT_EQ(extra_copies == 0, duplicated == 0) << "the plan reports duplicated bytes exactly when there are copies";

  VerifyOptions verify;
  verify.dims = options.dims;
  verify.rtol = 0;
  verify.atol = 1e-4;
  const VerifyReport report = verify_split(model.string(), out.string(), verify);
  ASSERT_FALSE(report.outputs.empty());
  for (const auto& output : report.outputs) {
    EXPECT_TRUE(output.diff.pass()) << output.name << ": max abs " << output.diff.max_abs;
    EXPECT_LE(output.diff.max_abs, 1e-4) << output.name;
  }

  // The pieces compute what torch computed before export (batch 2, seq 7: other dims than the split's).
  const fs::path input = test::models_dir() / "gpt2_large.input.npy",
                 expected = test::models_dir() / "gpt2_large.output.npy";
  if (fs::exists(input) && fs::exists(expected)) {
    const auto produced = run_pieces(out.string(), {{"input_ids", read_npy(input.string())}});
    const Difference diff = compare(produced.at("logits"), read_npy(expected.string()), 1e-3, 1e-4);
    EXPECT_TRUE(diff.pass()) << "max abs " << diff.max_abs << ", mismatches " << diff.mismatches;
  }
}

// x -> MatMul(Constant c) -> Relu -> MatMul(w): c's value lives in const.bin beside the model (as torch writes large
// constants), w in the model's external data file.
std::string model_with_external_constant(const fs::path& dir) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 64});
  onnx::TensorProto& c = *b.constant(test::random_tensor("c", {64, 64}, 7)).mutable_attribute(0)->mutable_t();
  std::ofstream(dir / "const.bin", std::ios::binary) << c.raw_data();
  c.clear_raw_data();
  c.set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"location", "const.bin"},
                                   {"offset", "0"},
                                   {"length", std::to_string(64 * 64 * 4)}}) {
    auto* entry = c.add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  b.initializer(test::random_tensor("w", {64, 64}, 8));
  b.node("MatMul", {"x", "c"}, {"h"});
  b.node("Relu", {"h"}, {"r"});
  b.node("MatMul", {"r", "w"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 64});
  return b.save((dir / "m.onnx").string(), true);
}

// Copied, c's value moves to the piece's data file; linked, it points into the link of const.bin.
TEST(SplitBigModel, ExternalConstantValueMovesToThePieceDataFileOrItsLink) {
  const fs::path dir = test::temp_dir("onnxpipe_external_constant");
  const RemovedAtExit cleanup{dir};
  const std::string model = model_with_external_constant(dir);
  EXPECT_TRUE(detail::Model::load(model).graph().weights.at("c").external);
  for (const auto& [parts, weights] : {std::pair{1, WeightStorage::COPY},
                                       {2, WeightStorage::COPY},
                                       {3, WeightStorage::COPY},
                                       {2, WeightStorage::LINK}}) {
    SCOPED_TRACE("parts " + std::to_string(parts) + " " + weight_storage_name(weights));
    const fs::path out = dir / ("split_" + std::to_string(parts) + weight_storage_name(weights));
    SplitOptions options;
    options.parts = parts;
    options.balance = Balance::FLOPS;
    options.output_dir = out.string();
    options.weights = weights;
    const Plan plan = split_model(model, options);
    const auto holder = std::find_if(plan.pieces.begin(), plan.pieces.end(), [&](const PieceDesc& piece) {
      return detail::Model::load((out / piece.file).string()).graph().weights.count("c") > 0;
    });
    ASSERT_NE(holder, plan.pieces.end());
    const detail::Model piece = detail::Model::load((out / holder->file).string());
    EXPECT_TRUE(piece.graph().weights.at("c").external);
    if (weights == WeightStorage::LINK) {
      EXPECT_EQ(plan.linked_files, (std::vector<std::string>{"const.bin", "m.onnx.data"}));
      EXPECT_TRUE(holder->data_file.empty());
    } else {
      EXPECT_GE(static_cast<int64_t>(fs::file_size(out / holder->data_file)), 64 * 64 * 4);
    }
    // Loaded by ONNX Runtime from the output folder, where the source's const.bin is not.
    VerifyOptions verify;
    verify.rtol = 0;
    verify.atol = 1e-6;
    const VerifyReport report = verify_split(model, out.string(), verify);
    ASSERT_EQ(report.outputs.size(), 1u);
    EXPECT_TRUE(report.outputs[0].diff.pass()) << "max abs " << report.outputs[0].diff.max_abs;
  }
}

}  // namespace
