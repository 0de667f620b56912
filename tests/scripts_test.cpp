// The scripts the project ships: scripts/plot.py draws a bench CSV (issue 4), scripts/export_models.py rejects bad
// arguments before it needs torch (both run through /usr/bin/python3, as `make` does), and scripts/gpu_check.sh runs
// its steps on CPU devices (its GPU run needs a GPU).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/shell.h"

namespace fs = std::filesystem;

namespace {

using onnxpipe::test::read_file;
using onnxpipe::test::shell_quote;

const std::string kSource = ONNXPIPE_SOURCE_DIR;
const std::string kPython = "/usr/bin/python3";

struct Outcome {
  int exit_code = -1;
  std::string err;  // stderr
};

// A fresh directory per test, removed afterwards.
class ScriptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("onnxpipe_scripts_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs scripts/SCRIPT with ARGS through /usr/bin/python3 (*.py) or bash (*.sh); stdout to dir_/stdout.txt.
  Outcome run(const std::string& script, const std::vector<std::string>& args) const {
    const bool shell = fs::path(script).extension() == ".sh";
    std::string command =
        shell_quote(shell ? "/bin/bash" : kPython) + " " + shell_quote(kSource + "/scripts/" + script);
    for (const auto& a : args) command += " " + shell_quote(a);
    const fs::path err = dir_ / "stderr.txt";
    if (shell) command += " >" + shell_quote((dir_ / "stdout.txt").string());
    command += " 2>" + shell_quote(err.string());
    const int status = std::system(command.c_str());
    Outcome outcome;
    outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome.err = read_file(err);
    return outcome;
  }

  fs::path dir_;
};

const std::string kFixture = kSource + "/tests/data/bench_small.csv";

uint32_t big_endian32(const std::string& bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return v;
}

TEST_F(ScriptsTest, PlotDrawsPngFromSmallCsv) {
  const fs::path png = dir_ / "report.png";
  const Outcome outcome = run("plot.py", {kFixture, "-o", png.string()});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const std::string bytes = read_file(png);
  ASSERT_GT(bytes.size(), 10u * 1024) << "a grid of plots is more than a few bytes";
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // IHDR comes first: width and height at bytes 16..23. A readable grid is large.
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_GE(big_endian32(bytes, 16), 1000u);
  EXPECT_GE(big_endian32(bytes, 20), 800u);
  // Nothing left beside it (the image is written to a temporary name, then renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);  // report.png, stderr.txt
}

TEST_F(ScriptsTest, PlotDrawsEveryPanelTheFixtureHasDataFor) {
  // --svg writes an SVG beside the PNG; matplotlib keeps each text as a comment there, so the titles can be read.
  const fs::path png = dir_ / "report.png";
  const Outcome outcome = run("plot.py", {kFixture, "-o", png.string(), "--svg"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  ASSERT_TRUE(fs::exists(png));
  const std::string svg = read_file(dir_ / "report.svg");
  ASSERT_NE(svg.find("<svg"), std::string::npos);
  for (const char* title : {"Wall time for N images", "Time per image", "Gain over sequence", "Throughput vs bound",
                            "Latency of one image", "Waiting for input per stage", "Busy: run time / wall time",
                            "Stage 0: where its time goes", "Stage 1: where its time goes"}) {
    EXPECT_NE(svg.find(title), std::string::npos) << "no panel '" << title << "'";
  }
  EXPECT_EQ(svg.find("Stage 2:"), std::string::npos) << "the fixture has 2 stages";
}

TEST_F(ScriptsTest, PlotLeavesOutPanelsWithoutData) {
  const fs::path csv = dir_ / "minimal.csv";
  std::ofstream(csv) << "name,batch_size,time\nsequence,1,0.020\nsequence,3,0.061\npipeline,1,0.022\n"
                        "pipeline,3,0.041\n";
  const fs::path svg = dir_ / "minimal.svg";
  const Outcome outcome = run("plot.py", {csv.string(), "-o", svg.string()});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const std::string text = read_file(svg);
  EXPECT_NE(text.find("Gain over sequence"), std::string::npos);
  EXPECT_NE(text.find("Throughput (no bound_throughput column)"), std::string::npos);
  EXPECT_EQ(text.find("Stage 0"), std::string::npos);
  EXPECT_EQ(text.find("Latency"), std::string::npos);
}

TEST_F(ScriptsTest, PlotRejectsCsvWithoutRequiredColumn) {
  const fs::path csv = dir_ / "no_time.csv";
  std::ofstream(csv) << "name,batch_size,throughput\nsequence,1,50\n";
  const fs::path png = dir_ / "report.png";
  const Outcome outcome = run("plot.py", {csv.string(), "-o", png.string()});
  EXPECT_NE(outcome.exit_code, 0);
  EXPECT_NE(outcome.err.find("missing required column(s) time"), std::string::npos) << outcome.err;
  EXPECT_FALSE(fs::exists(png));
}

TEST_F(ScriptsTest, PlotRejectsNonNumericTime) {
  const fs::path csv = dir_ / "bad.csv";
  std::ofstream(csv) << "name,batch_size,time\nsequence,1,fast\n";
  const Outcome outcome = run("plot.py", {csv.string(), "-o", (dir_ / "report.png").string()});
  EXPECT_NE(outcome.exit_code, 0);
  EXPECT_NE(outcome.err.find("row 2: column time: 'fast' is not a number"), std::string::npos) << outcome.err;
}

TEST_F(ScriptsTest, ExportRejectsUnknownModelName) {
  const Outcome outcome = run("export_models.py", {"--out", (dir_ / "models").string(), "--only", "resnet18,bert"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("unknown model(s) bert"), std::string::npos) << outcome.err;
  EXPECT_FALSE(fs::exists(dir_ / "models" / "resnet18.onnx")) << "nothing is exported when an argument is wrong";
}

// The GPU check's steps on two CPU stages: split, the CPU's answer, pipeline and sequence runs, the per-stage table
// and the comparison with the CPU.
TEST_F(ScriptsTest, GpuCheckRunsItsStepsOnCpuDevices) {
  const fs::path model = "/usr/share/libonnx-testdata/data/node/test_mvn_expanded/model.onnx";
  if (!fs::exists(model)) GTEST_SKIP() << model << " is absent (Debian's libonnx-testdata)";
  fs::create_directories(dir_ / "models");
  fs::copy_file(model, dir_ / "models" / "mvn.onnx");
  const Outcome outcome = run(
      "gpu_check.sh", {"--devices", "cpu:1,cpu:1", "--no-tests", "--only", "mvn", "--count", "3", "--models",
                       (dir_ / "models").string(), "--build", ONNXPIPE_BINARY_DIR, "--work", (dir_ / "work").string()});
  const std::string out = read_file(dir_ / "stdout.txt");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err << out;
  EXPECT_NE(out.find("mvn: 2 stages on cpu:1,cpu:1, 3 requests"), std::string::npos) << out;
  EXPECT_NE(out.find("h2d_bytes    d2d_bytes    d2h_bytes  mem_peak_mb"), std::string::npos) << out;
  EXPECT_NE(out.find("between the stages through the host: 0 bytes (goal met)"), std::string::npos) << out;
  EXPECT_NE(out.find("throughput: pipeline "), std::string::npos) << out;
  EXPECT_NE(out.find("outputs match the CPU's"), std::string::npos) << out;
}

TEST_F(ScriptsTest, GpuCheckFailsWhenAModelIsMissing) {
  fs::create_directories(dir_ / "models");
  const Outcome outcome = run(
      "gpu_check.sh", {"--devices", "cpu:1,cpu:1", "--no-tests", "--only", "no_such_model", "--models",
                       (dir_ / "models").string(), "--build", ONNXPIPE_BINARY_DIR, "--work", (dir_ / "work").string()});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.err.find("no_such_model: SKIPPED"), std::string::npos) << outcome.err;
  EXPECT_NE(outcome.err.find("FAILED: no_such_model: no model"), std::string::npos) << outcome.err;
}

TEST_F(ScriptsTest, GpuCheckRejectsUnknownOption) {
  const Outcome outcome = run("gpu_check.sh", {"--gpus", "2"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("usage: scripts/gpu_check.sh"), std::string::npos) << outcome.err;
}

}  // namespace
