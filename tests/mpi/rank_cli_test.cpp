// The CLI with its stages on MPI ranks (label mpi): `mpirun -np 3 onnxpipe bench|run PLAN` on this machine, each
// hop's bytes checked against what the plan says crosses it, the bench's columns against the single-process bench's.
// This binary is no MPI job itself: each case starts mpirun.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "onnxpipe/plan.h"
#include "onnxpipe/split.h"
#include "support/model_builder.h"
#include "support/shell.h"
#include "support/tamper.h"
#include "support/temp_dir.h"

namespace onnxpipe {
namespace {

using nlohmann::ordered_json;  // the printers' column order, kept
using test::shell_quote;

constexpr int kStages = 3;
const std::string kDevices = " --devices cpu:1,cpu:1,cpu:1";
// A loaded machine (three ranks on fewer cores) misses heartbeats for a while: the default 3 s is for real jobs.
const std::string kRankTimeout = " --rank-timeout 20";

// x [1, 64] -> a = x w1 [1, 32] -> b = a w2 [1, 16] (an output too) -> y = b + x w3 [1, 16], cut after a and b: x skips
// to the last stage, b goes to rank 0 and straight to the last stage's rank. Static shapes: the plan has every size.
std::string skip_plan(const std::string& dir) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {1, 64});
  b.initializer(test::random_tensor("w1", {64, 32}, 1));
  b.initializer(test::random_tensor("w2", {32, 16}, 2));
  b.initializer(test::random_tensor("w3", {64, 16}, 3));
  b.node("MatMul", {"x", "w1"}, {"a"}, {}, "", "first");
  b.node("MatMul", {"a", "w2"}, {"b"}, {}, "", "second");
  b.node("MatMul", {"x", "w3"}, {"c"}, {}, "", "skip");
  b.node("Add", {"b", "c"}, {"y"}, {}, "", "last");
  b.output("y", DType::FLOAT, {1, 16});
  b.output("b", DType::FLOAT, {1, 16});
  SplitOptions split;
  split.parts = kStages;
  split.cuts = {"a", "b"};
  split.balance = Balance::BYTES;
  split.output_dir = dir + "/plan";
  split_model(b.save(dir + "/model.onnx"), split);
  return split.output_dir;
}

// The bytes of stage k's hop per request, stage 0 alone on rank 0: every input of piece k arrives over MPI (from
// rank 0 or from the previous stage's rank) and the answer to rank 0 carries the model outputs it makes (no stage on
// rank 0 reads anything after stage 0).
int64_t expected_hop_bytes(const Plan& plan, int k) {
  int64_t bytes = 0;
  for (const ValueDesc& in : plan.pieces[k].inputs) bytes += in.bytes;
  for (const ValueDesc& out : plan.pieces[k].outputs) {
    for (const ValueDesc& model_output : plan.model_outputs) {
      if (model_output.name == out.name) bytes += out.bytes;
    }
  }
  return bytes;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

std::vector<std::string> columns_of_csv(const std::string& csv) {
  std::vector<std::string> names;
  std::istringstream header(csv.substr(0, csv.find('\n')));
  for (std::string name; std::getline(header, name, ',');) names.push_back(name);
  return names;
}

std::vector<std::string> columns_of_json_row(const ordered_json& row) {
  std::vector<std::string> names;
  for (const auto& item : row.items()) names.push_back(item.key());
  return names;
}

class RankCli : public ::testing::Test {
 protected:
  // `onnxpipe ARGS` in one process, or under mpirun with kStages ranks.
  test::CommandResult cli(const std::string& args) {
    return test::run_command(shell_quote(ONNXPIPE_CLI) + " " + args, temp_.file("stderr.txt"));
  }
  test::CommandResult mpi_cli(const std::string& args) {
    return test::run_command(std::string(ONNXPIPE_MPIRUN) + " " + shell_quote(ONNXPIPE_CLI) + " " + args,
                             temp_.file("stderr.txt"));
  }

  test::TempDir temp_;
  const std::string plan_ = skip_plan(temp_.str());
};

// A short sweep, pipeline mode only (the others run on rank 0 and carry no hop).
const std::string kBench = kDevices + " --images 2 --repeat 1 --warmup 0 --alone-runs 2 --modes pipeline";

TEST_F(RankCli, BenchRowCarriesRanksHostsAndEachHopsPlannedBytes) {
  const Plan plan = Plan::load(plan_);
  ASSERT_EQ(plan.parts(), kStages);
  const test::CommandResult json =
      mpi_cli("bench " + shell_quote(plan_) + kBench + kRankTimeout + " --ranks 0,2,1 --format json");
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_NE(json.err.find("bench: 3 ranks; the MPI is "), std::string::npos) << json.err;
  const ordered_json rows = ordered_json::parse(json.out);
  ASSERT_EQ(rows.size(), 1u) << json.out;
  const ordered_json& row = rows[0];
  EXPECT_EQ(row.at("ranks"), "0,2,1");
  const std::string host = host_name();
  EXPECT_EQ(row.at("hosts"), host + "," + host + "," + host);
  EXPECT_TRUE(row.at("hop_bytes_0").is_null() && row.at("hop_ms_0").is_null() && row.at("hop_share_0").is_null())
      << row;
  for (int k = 1; k < kStages; ++k) {
    const std::string i = std::to_string(k);
    EXPECT_EQ(row.at("hop_bytes_" + i).get<double>(), static_cast<double>(expected_hop_bytes(plan, k)))
        << "stage " << i;
    EXPECT_GT(row.at("hop_ms_" + i).get<double>(), 0) << "stage " << i;
    EXPECT_GT(row.at("hop_share_" + i).get<double>(), 0) << "stage " << i;
    EXPECT_LE(row.at("hop_share_" + i).get<double>(), 1) << "stage " << i;
  }

  // The single-process bench's columns, in its order, then the multi-rank ones; csv as json.
  const test::CommandResult single = cli("bench " + shell_quote(plan_) + kBench + " --format csv");
  ASSERT_EQ(single.status, 0) << single.err;
  std::vector<std::string> expected = columns_of_csv(single.out);
  expected.insert(expected.end(), {"ranks", "hosts"});
  for (int k = 0; k < kStages; ++k) {
    for (const char* column : {"hop_bytes_", "hop_ms_", "hop_share_"}) expected.push_back(column + std::to_string(k));
  }
  EXPECT_EQ(columns_of_json_row(row), expected);
  const test::CommandResult csv = mpi_cli("bench " + shell_quote(plan_) + kBench + kRankTimeout + " --format csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_EQ(columns_of_csv(csv.out), expected);
}

// The modes disagree (a weight of a piece shifted): the rows are printed, then the job ends normally and the
// mismatch has its own status, as in one process.
TEST_F(RankCli, AMismatchPrintsTheRowsThenExitsThree) {
  test::shift_a_weight(plan_);
  const std::string sweep = kDevices + " --images 2 --repeat 1 --warmup 0 --alone-runs 2 --modes sequence,pipeline";
  const test::CommandResult r = mpi_cli("bench " + shell_quote(plan_) + sweep + kRankTimeout + " --format json");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(ordered_json::parse(r.out).size(), 2u) << r.out;
  EXPECT_NE(r.err.find("error: bench: the modes returned different outputs"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("MPI_ABORT"), std::string::npos) << r.err;
}

// Every rank meets the error; the job ends without MPI_Abort, and only rank 0 reports it.
TEST_F(RankCli, BadRanksExitTwoWithOneClearErrorAndNoOutput) {
  const std::string bench = "bench " + shell_quote(plan_) + kBench + kRankTimeout + " --format csv --ranks ";
  const std::string run = "run " + shell_quote(plan_) + kDevices + kRankTimeout + " --format csv --ranks ";
  const std::pair<std::string, std::string> cases[] = {
      {bench + "0,1", "error: 2 ranks for a plan of 3 pieces: give one rank per piece\n"},
      {bench + "0,1,3", "error: rank 3: the job has ranks 0..2\n"},
      {bench + "0,one,2", "error: --ranks 'one': "},
      {run + "0,1,3", "error: rank 3: the job has ranks 0..2\n"},
  };
  for (const auto& [args, message] : cases) {
    const test::CommandResult r = mpi_cli(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
    const size_t at = r.err.find(message);
    EXPECT_NE(at, std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(r.err.find("error: ", at + 1), std::string::npos) << args << ": one error line: " << r.err;
    EXPECT_EQ(r.err.find("MPI_ABORT"), std::string::npos) << args << ": " << r.err;
  }
}

TEST_F(RankCli, RunReportsEachHopsPlannedBytesTimeAndShare) {
  const Plan plan = Plan::load(plan_);
  const test::CommandResult r =
      mpi_cli("run " + shell_quote(plan_) + kDevices + kRankTimeout + " --count 4 --warmup 0 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("run: 3 ranks; the MPI is "), std::string::npos) << r.err;
  const ordered_json doc = ordered_json::parse(r.out);
  const ordered_json& stages = doc.at("stages");
  ASSERT_EQ(stages.size(), static_cast<size_t>(kStages)) << doc;
  const std::string host = host_name();
  for (int k = 0; k < kStages; ++k) {
    const ordered_json& s = stages[k];
    EXPECT_EQ(s.at("stage"), k);
    EXPECT_EQ(s.at("rank"), k);  // the default placement
    EXPECT_EQ(s.at("host"), host);
    if (k == 0) {
      EXPECT_EQ(s.at("hop_bytes"), 0);
      EXPECT_TRUE(s.at("hop_share").is_null()) << s;
      continue;
    }
    EXPECT_EQ(s.at("hop_bytes"), expected_hop_bytes(plan, k)) << "stage " << k;
    EXPECT_GT(s.at("hop_ms").get<double>(), 0) << "stage " << k;
    EXPECT_GT(s.at("hop_share").get<double>(), 0) << "stage " << k;
    EXPECT_LE(s.at("hop_share").get<double>(), 1) << "stage " << k;
  }
}

}  // namespace
}  // namespace onnxpipe
