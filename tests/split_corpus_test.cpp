// Every model of Debian's libonnx-testdata that ONNX Runtime runs, split at every N <= min(4, nodes), must reproduce
// the expected outputs through its pieces, within the test data's tolerance. Models whose test data is not all tensors
// must still split at every N (their inputs have no declared shape: no sizing run, flops); those whose data are
// sequences of tensors must verify too, against the expected outputs and the unsplit model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "graph.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

const fs::path kCorpus = "/usr/share/libonnx-testdata/data";
// ONNX's backend test tolerance.
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;

std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int i = 0;; ++i) {
    fs::path file = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(file)) break;
    files.push_back(file);
  }
  return files;
}

struct Tally {
  int models = 0, skipped_not_tensor = 0, skipped_ort = 0, cases = 0, passed = 0, split_only = 0;
  int verified_sequences = 0;  // splits of models with sequence data that verify_split proved
  std::vector<std::string> failures;
  std::vector<std::string> ort_skips;  // why ONNX Runtime could not run a model, for the log
};

fs::path scratch() { return fs::temp_directory_path() / ("onnxpipe_corpus_" + std::to_string(::getpid())); }

SplitOptions split_options(int parts) {
  SplitOptions options;
  options.parts = parts;
  options.balance = Balance::FLOPS;
  options.output_dir = (scratch() / "pieces").string();
  options.force = true;
  return options;
}

// A model whose test data is not all tensors: it must split at every N into pieces that load in ONNX Runtime. Where
// its data are tensors and sequences of tensors, the pieces must also reproduce, on that data, its expected outputs
// and the unsplit model's (verify_split); optionals and maps cannot be read (INVALID_DATA): splitting is all that is
// checked for those.
void check_not_tensor(const fs::path& dir, Tally& tally) {
  const fs::path model_path = dir / "model.onnx";
  auto model = detail::Model::load(model_path.string());
  const int nodes = detail::Graph(model.graph()).size();
  for (int parts = 1; parts <= std::min(4, nodes); ++parts) {
    const std::string label = dir.filename().string() + " n=" + std::to_string(parts);
    try {
      const SplitOptions split = split_options(parts);
      const Plan plan = split_model(model_path.string(), split);
      for (const PieceDesc& piece : plan.pieces)
        detail::Session((scratch() / "pieces" / piece.file).string(), detail::SessionConfig{});
      VerifyOptions options;
      options.inputs_dir = options.expected_dir = (dir / "test_data_set_0").string();
      options.rtol = kRtol;
      options.atol = kAtol;
      try {
        if (!verify_split(model_path.string(), split.output_dir, options).pass())
          throw Error(ErrorCode::VERIFY_MISMATCH, "differs from the expected outputs");
      } catch (const Error& error) {
        // An optional or a map; or an empty sequence, which ONNX Runtime makes only as a node's output.
        const bool empty_sequence = std::string(error.what()).find("an empty sequence") != std::string::npos;
        if (error.code() != ErrorCode::INVALID_DATA && !empty_sequence) throw;
        ++tally.split_only;
        continue;
      }
      options.expected_dir.clear();
      if (!verify_split(model_path.string(), split.output_dir, options).pass())
        throw Error(ErrorCode::VERIFY_MISMATCH, "differs from the unsplit model");
      ++tally.verified_sequences;
    } catch (const std::exception& error) {
      tally.failures.push_back(label + " (not tensors): " + error.what());
    }
  }
  fs::remove_all(scratch());
}

void check_model(const fs::path& dir, Tally& tally) {
  const fs::path model_path = dir / "model.onnx";
  const fs::path data = dir / "test_data_set_0";
  if (!fs::exists(model_path) || !fs::exists(data)) return;
  ++tally.models;
  auto model = detail::Model::load(model_path.string());
  const auto& graph_desc = model.graph();
  auto input_files = numbered_files(data, "input_");
  auto output_files = numbered_files(data, "output_");
  std::map<std::string, Tensor> inputs, expected;
  try {
    // Inputs are numbered in the order of the non-weight graph inputs; an omitted optional input has no file.
    if (input_files.size() > graph_desc.inputs.size() || output_files.size() != graph_desc.outputs.size())
      throw Error(ErrorCode::USAGE, "inputs/outputs do not match the files");
    for (size_t i = 0; i < input_files.size(); ++i) inputs[graph_desc.inputs[i].name] = read_tensor_pb(input_files[i]);
    for (size_t i = 0; i < output_files.size(); ++i)
      expected[graph_desc.outputs[i].name] = read_tensor_pb(output_files[i]);
  } catch (const Error&) {
    ++tally.skipped_not_tensor;  // sequences, optionals, maps: not tensors
    check_not_tensor(dir, tally);
    return;
  }
  // Only models that ONNX Runtime itself runs and gets right count.
  try {
    detail::Session full(model_path.string(), detail::SessionConfig{});
    auto outputs = full.run(inputs);
    for (const auto& [name, tensor] : expected)
      if (!compare(outputs.at(name), tensor, kRtol, kAtol).pass()) throw Error(ErrorCode::RUNTIME, "differs");
  } catch (const std::exception& error) {
    ++tally.skipped_ort;
    tally.ort_skips.push_back(dir.filename().string() + ": " + std::string(error.what()).substr(0, 160));
    return;
  }
  const int nodes = detail::Graph(graph_desc).size();
  for (int parts = 1; parts <= std::min(4, nodes); ++parts) {
    ++tally.cases;
    const std::string label = dir.filename().string() + " n=" + std::to_string(parts);
    try {
      const SplitOptions options = split_options(parts);
      split_model(model_path.string(), options);
      auto produced = run_pieces(options.output_dir, inputs);
      std::string bad;
      for (const auto& [name, tensor] : expected) {
        auto diff = compare(produced.at(name), tensor, kRtol, kAtol);
        if (!diff.pass()) bad += " " + name + " (max abs " + std::to_string(diff.max_abs) + ")";
      }
      if (bad.empty()) {
        ++tally.passed;
      } else {
        tally.failures.push_back(label + ": mismatch:" + bad);
      }
    } catch (const std::exception& error) {
      tally.failures.push_back(label + ": " + error.what());
    }
  }
  fs::remove_all(scratch());
}

void check_corpus(const std::string& part) {
  if (!fs::exists(kCorpus / part)) GTEST_SKIP() << kCorpus / part << " missing: apt-get install libonnx-testdata";
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(kCorpus / part))
    if (entry.is_directory()) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  Tally tally;
  for (const auto& dir : dirs) check_model(dir, tally);
  std::cout << "[corpus " << part << "] models " << tally.models << ", not tensors " << tally.skipped_not_tensor
            << " (their splits: " << tally.verified_sequences << " verified on sequences, " << tally.split_only
            << " split only)"
            << ", ORT cannot run " << tally.skipped_ort << ", split cases " << tally.cases << ", reproduced "
            << tally.passed << ", failed " << tally.failures.size() << "\n";
  for (const auto& skip : tally.ort_skips) std::cout << "  ORT cannot run " << skip << "\n";
  for (const auto& failure : tally.failures) ADD_FAILURE() << failure;
  EXPECT_GT(tally.passed, 0);
}

}  // namespace

TEST(SplitCorpus, NodeTestsReproduceExpectedOutputs) { check_corpus("node"); }

// The six sequence_map models (their inputs, outputs and crossing values are sequences of tensors) verify at every N.
TEST(SplitCorpus, SequenceMapModelsVerifyOnTheirData) {
  const fs::path node = kCorpus / "node";
  if (!fs::exists(node)) GTEST_SKIP() << node << " missing: apt-get install libonnx-testdata";
  Tally tally;
  for (const char* name : {"identity_1_sequence", "identity_2_sequences", "identity_1_sequence_1_tensor",
                           "add_1_sequence_1_tensor", "add_2_sequences", "extract_shapes"})
    check_not_tensor(node / ("test_sequence_map_" + std::string(name) + "_expanded"), tally);
  for (const auto& failure : tally.failures) ADD_FAILURE() << failure;
  EXPECT_EQ(tally.verified_sequences, 6 * 2);  // two nodes each: N = 1, 2
  EXPECT_EQ(tally.split_only, 0);
}
TEST(SplitCorpus, PytorchConvertedReproduceExpectedOutputs) { check_corpus("pytorch-converted"); }
TEST(SplitCorpus, PytorchOperatorReproduceExpectedOutputs) { check_corpus("pytorch-operator"); }
TEST(SplitCorpus, SimpleReproduceExpectedOutputs) { check_corpus("simple"); }
