// The bench (issue 4): one row per (mode, N) with the seed's columns, csv/json through the CLI's
// printers, the output check, the Chrome trace, and `onnxpipe plot`. A tiny model split in two on cpu:1 stages: no
// timing is asserted, only what the rows must hold.
#include "bench.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench_table.h"
#include "commands.h"
#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "support/expect_error.h"
#include "support/model_builder.h"
#include "support/tamper.h"

// ONNX Runtime keeps one small allocation made while creating the first session to the end of the process.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;
using cli::BenchColumn;
using detail::Bench;
using detail::BenchOptions;
using detail::ImageSweep;
using detail::Measurement;

const std::string kPython = "/usr/bin/python3";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// RFC 4180 records: fields may be quoted, with doubled quotes and commas inside.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("onnxpipe_bench");
    model_ = test::skip_connections(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The smallest bench that still has every mode, two stages and two N.
  BenchOptions small_options() const {
    BenchOptions options;
    options.devices = {"cpu:1", "cpu:1"};
    options.split.parts = 2;
    options.split.profile_runs = 2;
    options.images = ImageSweep::range(1, 4, 2);  // N = 1, 3
    options.repeat = 1;
    options.alone_runs = 2;
    options.warmup = 0;  // one unmeasured run
    options.commit = "test";
    return options;
  }

  // Runs `onnxpipe <args>` through the CLI library, as main does; returns stdout.
  std::string run_cli(const std::vector<std::string>& args) {
    CLI::App app("test", "onnxpipe");
    cli::CliContext context;
    cli::add_bench_command(app, context);
    cli::add_plot_command(app, context);
    // What main's add_common_options gives every subcommand (main.cpp is not in the library).
    for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
      command->add_option_function<std::string>(
          "--format", [&context](const std::string& name) { context.format = cli::format_from_name(name); });
      command->add_flag("-q,--quiet", context.quiet);
    }
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    testing::internal::CaptureStdout();
    try {
      app.parse(reversed);
    } catch (...) {
      last_stdout_ = testing::internal::GetCapturedStdout();
      throw;
    }
    last_stdout_ = testing::internal::GetCapturedStdout();
    return last_stdout_;
  }

  std::string dir_;
  std::string model_;
  std::string last_stdout_;
};

// A plan of `model` in two pieces with one weight shifted: the pipeline (the pieces) no longer agrees with the
// sequence (the unsplit model), on every run.
std::string broken_plan(const std::string& model, const std::string& dir) {
  SplitOptions split;
  split.parts = 2;
  split.balance = Balance::FLOPS;
  split.output_dir = dir + "/broken_plan";
  split_model(model, split);
  test::shift_a_weight(split.output_dir);
  return split.output_dir;
}

std::vector<std::string> names(const std::vector<BenchColumn>& columns) {
  std::vector<std::string> result;
  for (const BenchColumn& c : columns) result.push_back(c.field.name);
  return result;
}

bool fits(const BenchColumn& column, const cli::Cell& cell) {
  const cli::Cell::Value& v = cell.value();
  switch (column.field.type) {
    case cli::FieldType::STRING:
      return std::holds_alternative<std::string>(v);
    case cli::FieldType::INT:
      return std::holds_alternative<int64_t>(v);
    case cli::FieldType::FLOAT:
      return std::holds_alternative<double>(v);
    case cli::FieldType::BOOL:
      return std::holds_alternative<bool>(v);
  }
  return false;
}

TEST_F(BenchTest, ColumnsHaveTheSeedsNamesAndOnePerStageField) {
  Bench bench(model_, small_options());
  ASSERT_EQ(bench.plan().parts(), 2);
  const std::vector<std::string> columns = names(cli::bench_columns(bench));
  const std::set<std::string> set(columns.begin(), columns.end());
  EXPECT_EQ(set.size(), columns.size()) << "a column name is repeated";
  // The seed's columns come first, in its order.
  const std::vector<std::string> seed = {"n_imgs",    "maxN", "stepN", "repN", "batch_size",
                                         "n_threads", "name", "time",  "order"};
  EXPECT_EQ(std::vector<std::string>(columns.begin(), columns.begin() + seed.size()), seed);
  for (const std::string field : {"wait0", "wait", "copy1", "copy2", "run", "ttime", "wtime"}) {
    EXPECT_TRUE(set.count(field + "_0") && set.count(field + "_1")) << field;
    EXPECT_FALSE(set.count(field + "_2")) << field << ": only two stages";
  }
  for (const std::string name :
       {"throughput", "bound_throughput", "latency_p50", "latency_p90", "latency_p99", "busy_0", "busy_1", "bubble",
        "bubble_theory", "cut0_bytes", "cut0_copy_s", "mem_peak_d0", "mem_peak_d1", "max_abs_diff", "commit",
        "ort_version", "devices", "plan_hash"}) {
    EXPECT_TRUE(set.count(name)) << name;
  }
  EXPECT_FALSE(set.count("cut1_bytes")) << "one cut between two stages";
}

TEST_F(BenchTest, OneRowPerModeAndNWithEveryFieldFilledAsItMeans) {
  Bench bench(model_, small_options());
  const std::vector<BenchColumn> columns = cli::bench_columns(bench);
  std::vector<Measurement> rows;
  const detail::BenchSummary summary = bench.run([&](const Measurement& m) {
    const cli::Row row = cli::row_of(columns, m);
    ASSERT_EQ(row.size(), columns.size());
    for (size_t i = 0; i < row.size(); ++i) {
      EXPECT_TRUE(row[i].is_null() || fits(columns[i], row[i])) << columns[i].field.name;
    }
    rows.push_back(m);
  });
  EXPECT_EQ(summary.rows, 6);
  EXPECT_TRUE(summary.verified());
  EXPECT_LT(summary.max_abs_diff, 1e-3);
  ASSERT_EQ(rows.size(), 6u);
  const std::vector<PipelineMode> modes = {PipelineMode::SEQUENCE, PipelineMode::PIPELINE, PipelineMode::REPLICAS};
  for (size_t i = 0; i < rows.size(); ++i) {
    const Measurement& m = rows[i];
    SCOPED_TRACE(std::string(pipeline_mode_name(m.mode)) + " N=" + std::to_string(m.images));
    EXPECT_EQ(m.mode, modes[i / 2]);
    EXPECT_EQ(m.images, i % 2 == 0 ? 1 : 3);
    EXPECT_EQ(m.requests, m.images);
    EXPECT_EQ(m.sessions, m.mode == PipelineMode::SEQUENCE ? 1 : 2);
    EXPECT_GT(m.time, 0);
    EXPECT_DOUBLE_EQ(m.throughput, m.images / m.time);
    EXPECT_GT(m.bound_throughput, 0);
    EXPECT_LE(m.latency_p50, m.latency_p90);
    EXPECT_LE(m.latency_p90, m.latency_p99);
    EXPECT_GT(m.latency_p50, 0);
    EXPECT_EQ(m.mismatches, 0);
    EXPECT_EQ(m.peak_memory.size(), 2u);
    if (m.mode == PipelineMode::SEQUENCE) {
      EXPECT_DOUBLE_EQ(m.speedup, 1.0);
      EXPECT_EQ(m.mode_devices, "cpu:1");
      EXPECT_TRUE(m.stages.empty()) << "the seed leaves per-stage columns empty for sequence";
      EXPECT_GT(m.peak_memory[0], 0);
      EXPECT_EQ(m.peak_memory[1], -1) << "sequence uses the first device entry only";
      EXPECT_EQ(m.bubble_theory, 0);
    } else {
      EXPECT_GT(m.speedup, 0);
      EXPECT_EQ(m.mode_devices, "cpu:1,cpu:1");
      EXPECT_GT(m.peak_memory[0], 0);
      EXPECT_GT(m.peak_memory[1], 0) << "one stage or replica per device entry";
    }
    if (m.mode == PipelineMode::PIPELINE) {
      EXPECT_TRUE(m.order);
      EXPECT_DOUBLE_EQ(m.bubble_theory, 1.0 / (m.images + 1));  // (p-1)/(m+p-1), p = 2
      ASSERT_EQ(m.stages.size(), 2u);
      ASSERT_EQ(m.cuts.size(), 1u);
      EXPECT_GT(m.cuts[0].bytes, 0);
      EXPECT_EQ(m.cuts[0].copied_bytes, 0) << "CPU stages hand values on without copying";
      for (const detail::StageTimes& s : m.stages) {
        EXPECT_GT(s.run, 0);
        EXPECT_GE(s.ttime + 1e-9, s.run + s.copy1 + s.copy2);
        EXPECT_NEAR(s.wtime, s.ttime - s.run - s.copy1 - s.copy2, 1e-9);
        EXPECT_LE(s.wait0, s.wait + 1e-12);
        EXPECT_GT(s.busy, 0);
        EXPECT_LE(s.busy, 1.0 + 1e-9);
      }
      EXPECT_GT(m.stages[1].wait0, 0) << "stage 1 waits for stage 0's first answer";
    }
    if (m.mode == PipelineMode::REPLICAS) {
      // Two replicas and one image: one of them idles the whole run.
      EXPECT_DOUBLE_EQ(m.bubble_theory, m.images == 1 ? 0.5 : 1.0 - 3.0 / 4.0);
    }
  }
}

TEST_F(BenchTest, MicroBatchesAreTheRequests) {
  BenchOptions options = small_options();
  options.images = ImageSweep::list({4});
  options.micro_batch = 2;
  options.modes = {PipelineMode::SEQUENCE, PipelineMode::PIPELINE};
  Bench bench(model_, options);
  std::vector<Measurement> rows;
  const detail::BenchSummary summary = bench.run([&](const Measurement& m) { rows.push_back(m); });
  EXPECT_TRUE(summary.verified());
  ASSERT_EQ(rows.size(), 2u);
  for (const Measurement& m : rows) {
    EXPECT_EQ(m.images, 4);
    EXPECT_EQ(m.requests, 2);
  }
  EXPECT_DOUBLE_EQ(rows[1].bubble_theory, 1.0 / 3.0);
}

TEST_F(BenchTest, OutputsThatDifferAreListedNotHidden) {
  BenchOptions options = small_options();
  options.modes = {PipelineMode::SEQUENCE, PipelineMode::PIPELINE};
  Bench bench(broken_plan(model_, dir_), options);
  std::vector<Measurement> rows;
  const detail::BenchSummary summary = bench.run([&](const Measurement& m) { rows.push_back(m); });
  EXPECT_EQ(rows.size(), 4u) << "every row is still measured and handed over";
  EXPECT_FALSE(summary.verified());
  ASSERT_FALSE(summary.mismatches.empty());
  EXPECT_NE(summary.mismatches.front().find("output 'y'"), std::string::npos) << summary.mismatches.front();
}

TEST_F(BenchTest, DeviceCountMustMatchTheParts) {
  BenchOptions options = small_options();
  options.devices = {"cpu:1", "cpu:1", "cpu:1"};
  EXPECT_EQ(test::error_code_of([&] { Bench(model_, options); }), ErrorCode::USAGE);
  options.devices = {"gpu:0"};
  EXPECT_EQ(test::error_code_of([&] { Bench(model_, options); }), ErrorCode::USAGE);
  EXPECT_EQ(test::error_code_of([&] { Bench(dir_ + "/missing.onnx", small_options()); }), ErrorCode::IO);
}

TEST_F(BenchTest, CsvHasOneHeaderAndOneRowPerMeasurementWithQuotedLists) {
  const std::string out =
      run_cli({"bench", model_, "--devices", "cpu:1,cpu:1", "--images", "1:4:2", "--repeat", "1", "--alone-runs", "2",
               "--warmup", "0", "--profile-runs", "2", "--format", "csv", "-q"});
  const auto rows = parse_csv(out);
  ASSERT_EQ(rows.size(), 7u) << out;
  const std::vector<std::string>& header = rows[0];
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < header.size(); ++i) at[header[i]] = i;
  for (const std::string name : {"n_imgs", "maxN", "stepN", "repN", "batch_size", "n_threads", "name", "time", "order",
                                 "wait0_1", "wtime_1", "throughput", "bound_throughput", "devices", "commit"}) {
    ASSERT_TRUE(at.count(name)) << name;
  }
  for (size_t r = 1; r < rows.size(); ++r) {
    ASSERT_EQ(rows[r].size(), header.size()) << "row " << r;
    EXPECT_EQ(rows[r][at["devices"]], "cpu:1,cpu:1") << "a comma inside a field is quoted";
    EXPECT_EQ(rows[r][at["maxN"]], "4");
    EXPECT_EQ(rows[r][at["stepN"]], "2");
    EXPECT_EQ(rows[r][at["repN"]], "1");
    EXPECT_EQ(rows[r][at["commit"]], rows[1][at["commit"]]) << "the build commit is on every row";
    EXPECT_GT(std::stod(rows[r][at["time"]]), 0);
    const bool pipeline = rows[r][at["name"]] == "pipeline";
    EXPECT_EQ(rows[r][at["wait0_1"]].empty(), !pipeline) << rows[r][at["name"]];
  }
  EXPECT_NE(out.find("\"cpu:1,cpu:1\""), std::string::npos);

  // The CSV is what scripts/plot.py reads: `onnxpipe plot` draws it.
  if (::access(kPython.c_str(), X_OK) != 0) GTEST_SKIP() << kPython << " is absent: plot not tried";
  const std::string csv = dir_ + "/bench.csv";
  std::ofstream(csv) << out;
  run_cli({"plot", csv, "-o", dir_ + "/bench.png", "--python", kPython, "-q"});
  EXPECT_GT(fs::file_size(dir_ + "/bench.png"), 1000u);
}

TEST_F(BenchTest, JsonIsOneObjectPerMeasurementWithNullsWhereTheSeedHasNone) {
  const std::string out =
      run_cli({"bench", model_, "--devices", "cpu:1,cpu:1", "--images", "1:4:2", "--repeat", "1", "--alone-runs", "2",
               "--warmup", "0", "--profile-runs", "2", "--modes", "sequence,pipeline", "--format", "json", "-q"});
  const nlohmann::json doc = nlohmann::json::parse(out);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 4u);
  for (const auto& row : doc) {
    EXPECT_EQ(row["devices"], "cpu:1,cpu:1");
    EXPECT_EQ(row["n_imgs"], row["batch_size"]);
    EXPECT_TRUE(row["time"].is_number());
    EXPECT_TRUE(row["order"].is_boolean());
    if (row["name"] == "sequence") {
      EXPECT_TRUE(row["run_0"].is_null());
      EXPECT_EQ(row["n_threads"], 1);
    } else {
      EXPECT_TRUE(row["run_0"].is_number());
      EXPECT_TRUE(row["busy_1"].is_number());
      EXPECT_EQ(row["n_threads"], 2);
    }
  }

  const std::string lines =
      run_cli({"bench", model_, "--devices", "cpu:1,cpu:1", "--images", "2", "--repeat", "1", "--alone-runs", "2",
               "--warmup", "0", "--profile-runs", "2", "--format", "jsonl", "-q"});
  std::istringstream in(lines);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    EXPECT_TRUE(nlohmann::json::parse(line).contains("bound_throughput"));
    ++count;
  }
  EXPECT_EQ(count, 3) << "one line per mode";
}

TEST_F(BenchTest, MdShowsTheSetupOnceAndTheKeyColumns) {
  const std::string out = run_cli({"bench", model_, "--devices", "cpu:1", "--parts", "2", "--images", "2", "--repeat",
                                   "1", "--alone-runs", "2", "--warmup", "0", "--profile-runs", "2", "-q"});
  EXPECT_NE(out.find("## setup"), std::string::npos) << out;
  EXPECT_NE(out.find("## bench"), std::string::npos) << out;
  EXPECT_NE(out.find("| plan_hash"), std::string::npos) << out;
  EXPECT_NE(out.find("bound_share"), std::string::npos) << out;
  EXPECT_EQ(out.find("wtime_0"), std::string::npos) << "md leaves the seed's detail to csv/json";
}

TEST_F(BenchTest, AMismatchFailsTheCommandAfterTheRowsArePrinted) {
  try {
    run_cli({"bench", broken_plan(model_, dir_), "--devices", "cpu:1,cpu:1", "--images", "2", "--repeat", "1",
             "--alone-runs", "2", "--warmup", "0", "--profile-runs", "2", "--modes", "sequence,pipeline", "--format",
             "csv", "-q"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::VERIFY_MISMATCH);
    EXPECT_EQ(cli::exit_status(e.code()), 3);
  }
  EXPECT_EQ(parse_csv(last_stdout_).size(), 3u) << last_stdout_;
}

TEST_F(BenchTest, TraceHasOneTrackPerStageAndEveryRequestOnEach) {
  BenchOptions options = small_options();
  options.modes = {PipelineMode::SEQUENCE, PipelineMode::PIPELINE};
  options.images = ImageSweep::list({2, 4});
  options.trace_path = dir_ + "/trace.json";
  Bench bench(model_, options);
  bench.run([](const Measurement&) {});
  const nlohmann::json trace = nlohmann::json::parse(read_file(options.trace_path));
  ASSERT_TRUE(trace["traceEvents"].is_array());
  std::map<int, std::string> tracks;
  std::map<int, std::set<int64_t>> runs;  // track -> requests run there
  int flows = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") tracks[e["tid"]] = e["args"]["name"];
    if (e["ph"] == "X") {
      EXPECT_GE(e["ts"].get<double>(), 0);
      EXPECT_GE(e["dur"].get<double>(), 0);
      if (e["cat"] == "run") runs[e["tid"]].insert(e["args"]["request"].get<int64_t>());
    }
    if (e["ph"] == "s") ++flows;
  }
  ASSERT_EQ(tracks.size(), 2u);
  EXPECT_NE(tracks[0].find("stage 0"), std::string::npos);
  EXPECT_NE(tracks[1].find("stage 1"), std::string::npos);
  // The pipeline at the largest N (4), its requests numbered from 0.
  EXPECT_EQ(runs[0], (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(runs[1], (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(flows, 4) << "one arrow per request from stage 0 to stage 1";
}

TEST_F(BenchTest, ClearedTimingsKeepOnlyTheRequestsThatFollow) {
  PipelineOptions options;
  options.devices = {"cpu:1", "cpu:1"};
  options.split.parts = 2;
  options.split.profile_runs = 2;
  Pipeline pipeline(model_, options);
  TensorMap input = {{"x", make_tensor(DType::FLOAT, {1, 8})}};
  pipeline.submit(input).get();  // before the window
  pipeline.timings().clear();
  const double origin = pipeline.now_us();
  for (int i = 0; i < 3; ++i) pipeline.submit(input).get();
  const std::vector<RequestRecord> requests = pipeline.timings().requests();
  const std::vector<StageRecord> records = pipeline.timings().records();
  pipeline.submit(input).get();  // after it
  ASSERT_EQ(requests.size(), 3u);
  ASSERT_EQ(records.size(), 6u);
  for (const StageRecord& r : records) {
    EXPECT_GE(r.request, 1);
    EXPECT_LE(r.request, 3);
  }
  EXPECT_LE(origin, requests.front().submitted);
  EXPECT_LE(origin, records.front().t_begin);
}

TEST_F(BenchTest, PlotDrawsAPngFromTheCsvFixtureAndNamesAMissingPython) {
  const std::string fixture = std::string(ONNXPIPE_SOURCE_DIR) + "/tests/data/bench_small.csv";
  ASSERT_TRUE(fs::exists(fixture));
  EXPECT_EQ(test::error_code_of([&] {
              run_cli({"plot", fixture, "-o", dir_ + "/r.png", "--python", dir_ + "/no_python"});
            }),
            ErrorCode::IO);
  EXPECT_EQ(test::error_code_of([&] { run_cli({"plot", fixture, "-o", dir_ + "/r.gif"}); }), ErrorCode::USAGE);
  if (::access(kPython.c_str(), X_OK) != 0) GTEST_SKIP() << kPython << " is absent";
  const std::string out =
      run_cli({"plot", fixture, "-o", dir_ + "/r.png", "--python", kPython, "-q", "--format", "csv"});
  const std::string png = read_file(dir_ + "/r.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_NE(out.find("r.png"), std::string::npos) << out;
}

}  // namespace
}  // namespace onnxpipe
