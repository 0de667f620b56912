// The onnxpipe binary as a user runs it: exit statuses, one-line errors on stderr, results on stdout in each format.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "onnxpipe/tensor.h"
#include "support/model_builder.h"
#include "support/shell.h"
#include "support/tamper.h"
#include "support/temp_dir.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using Result = test::CommandResult;

std::string quote(const std::string& text) { return test::shell_quote(text); }

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) result.push_back(line);
  return result;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is not built (cmake --build <dir> --target onnxpipe_cli)";
  }

  // Runs `onnxpipe ARGS` (ARGS already shell-quoted where needed).
  Result run(const std::string& args) { return test::run_command(quote(binary_) + " " + args, dir_ + "/stderr.txt"); }

  // x[batch, 4] -> MatMul w1 -> Relu -> MatMul w2 -> y[batch, 4]
  std::string small_model() {
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {"batch", 4});
    b.initializer(test::random_tensor("w1", {4, 4}, 1));
    b.initializer(test::random_tensor("w2", {4, 4}, 2));
    b.node("MatMul", {"x", "w1"}, {"h"}, {}, "", "first");
    b.node("Relu", {"h"}, {"r"}, {}, "", "relu");
    b.node("MatMul", {"r", "w2"}, {"y"}, {}, "", "last");
    b.output("y", DType::FLOAT, {"batch", 4});
    return b.save(dir_ + "/small.onnx");
  }

  const std::string binary_ = std::string(ONNXPIPE_BINARY_DIR) + "/onnxpipe";
  test::TempDir temp_;
  std::string dir_ = temp_.str();
};

void expect_one_error_line(const Result& r, const std::string& fragment) {
  std::vector<std::string> err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_EQ(err[0].rfind("error: ", 0), 0u) << err[0];
  EXPECT_NE(err[0].find(fragment), std::string::npos) << err[0];
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, HelpExitsZeroAndListsTheCommands) {
  Result r = run("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* command : {"inspect", "split", "verify"}) EXPECT_NE(r.out.find(command), std::string::npos);
  Result sub = run("split --help");
  EXPECT_EQ(sub.status, 0);
  EXPECT_NE(sub.out.find("--balance"), std::string::npos);
  EXPECT_NE(sub.out.find("--format"), std::string::npos);
}

TEST_F(Cli, UsageErrorsExitTwo) {
  Result unknown = run("frobnicate");
  EXPECT_EQ(unknown.status, 2);
  expect_one_error_line(unknown, "unknown subcommand 'frobnicate'");
  EXPECT_EQ(run("").status, 2);

  std::string model = quote(small_model());
  Result bad_dim = run("inspect " + model + " --dim batch");
  EXPECT_EQ(bad_dim.status, 2);
  expect_one_error_line(bad_dim, "--dim 'batch': expected NAME=VALUE");
  EXPECT_EQ(run("inspect " + model + " --dim batch=0").status, 2);
  EXPECT_EQ(run("inspect " + model + " --dim batch=x").status, 2);
  EXPECT_EQ(run("inspect " + model + " --dim batch=1 --dim batch=2").status, 2);
  EXPECT_EQ(run("inspect " + model + " --format xml").status, 2);
  EXPECT_EQ(run("inspect " + model + " --balance speed").status, 2);
  Result zero = run("split " + model + " -n 0 -o " + quote(dir_ + "/out"));
  EXPECT_EQ(zero.status, 2);
  expect_one_error_line(zero, "--parts: must be >= 1, got 0");
  Result misspelt = run("split " + model + " -n 2 --dim bach=2 -o " + quote(dir_ + "/out"));
  EXPECT_EQ(misspelt.status, 2);
  expect_one_error_line(misspelt, "--dim bach: no input of the model has a dimension of that name (named: batch)");
  EXPECT_EQ(run("split " + model + " -n 2").status, 2);  // no -o
  EXPECT_FALSE(fs::exists(dir_ + "/out"));
  Result range = run("verify " + model + " " + quote(dir_) + " --int-range 5,5");
  EXPECT_EQ(range.status, 2);
  expect_one_error_line(range, "--int-range '5,5'");
}

TEST_F(Cli, MissingModelIsOneErrorLineAndExitOne) {
  Result r = run("inspect " + quote(dir_ + "/absent.onnx"));
  EXPECT_EQ(r.status, 1);
  expect_one_error_line(r, "absent.onnx");
  Result split = run("split " + quote(dir_ + "/absent.onnx") + " -n 2 -o " + quote(dir_ + "/out"));
  EXPECT_EQ(split.status, 1);
  expect_one_error_line(split, "absent.onnx");
  EXPECT_FALSE(fs::exists(dir_ + "/out"));
}

TEST_F(Cli, InspectCsvHasOneHeaderPerTable) {
  Result r = run("inspect " + quote(small_model()) + " --format csv");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> out = lines(r.out);
  // model record, values, ops, cut candidates: header + rows each, separated by empty lines.
  std::vector<std::vector<std::string>> tables(1);
  for (const std::string& line : out) {
    if (line.empty()) {
      tables.emplace_back();
    } else {
      tables.back().push_back(line);
    }
  }
  ASSERT_EQ(tables.size(), 4u) << r.out;
  EXPECT_EQ(tables[0][0].rfind("path,file_mb,ir_version,producer,opsets,nodes,", 0), 0u) << tables[0][0];
  ASSERT_EQ(tables[0].size(), 2u);
  EXPECT_NE(tables[0][1].find(",3,"), std::string::npos) << tables[0][1];  // 3 nodes
  EXPECT_EQ(tables[1][0], "kind,name,dtype,shape,bytes");
  EXPECT_EQ(tables[1][1], "input,x,float,\"[batch, 4]\",16");  // the shape is quoted: it holds a comma
  EXPECT_EQ(tables[1][2], "output,y,float,\"[batch, 4]\",16");
  EXPECT_EQ(tables[2][0], "op,count");
  EXPECT_EQ(tables[2][1], "MatMul,2");
  EXPECT_EQ(tables[3][0], "boundary,after_node,cost_before_pct,crossing_bytes,tensors");
  EXPECT_GE(tables[3].size(), 2u);
}

TEST_F(Cli, InspectJsonIsOneDocument) {
  Result r = run("inspect " + quote(small_model()) + " --format json --dim batch=3");
  ASSERT_EQ(r.status, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["model"]["nodes"], 3);
  EXPECT_EQ(doc["model"]["external_data"], false);
  EXPECT_EQ(doc["model"]["opsets"], "ai.onnx 17");
  ASSERT_EQ(doc["values"].size(), 2u);
  EXPECT_EQ(doc["values"][0]["name"], "x");
  EXPECT_EQ(doc["values"][0]["bytes"], 3 * 4 * 4);  // with --dim batch=3
  EXPECT_EQ(doc["ops"][0]["op"], "MatMul");
  EXPECT_EQ(doc["ops"][0]["count"], 2);
  ASSERT_FALSE(doc["cut_candidates"].empty());
  EXPECT_TRUE(doc["cut_candidates"][0]["crossing_bytes"].is_number_integer());
}

TEST_F(Cli, InspectJsonlIsOneObjectPerLine) {
  Result r = run("inspect " + quote(small_model()) + " --format jsonl");
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<std::string, int> rows;
  for (const std::string& line : lines(r.out)) ++rows[json::parse(line).at("table").get<std::string>()];
  EXPECT_EQ(rows["model"], 1);
  EXPECT_EQ(rows["values"], 2);
  EXPECT_EQ(rows["ops"], 2);
  EXPECT_GE(rows["cut_candidates"], 1);
}

TEST_F(Cli, SplitUnderCapsThatDoNotFitExitsOneAndWritesNothing) {
  const std::string model = small_model(), out = dir_ + "/capped";
  Result tight = run("split " + quote(model) + " --balance flops --devices cpu:1=1KiB,cpu:1=1KiB -o " + quote(out));
  EXPECT_EQ(tight.status, 1);
  expect_one_error_line(tight, "on cpu:1 (cap 1.0 KiB)");
  EXPECT_FALSE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_TRUE(entry.path().filename() == "small.onnx" || entry.path().filename() == "stderr.txt") << entry.path();

  Result fits = run("split " + quote(model) + " --balance flops --devices cpu:1=1GiB,cpu:1=1GiB -q -o " + quote(out));
  EXPECT_EQ(fits.status, 0) << fits.err;
  EXPECT_TRUE(fs::exists(out + "/piece_1.onnx"));
  Result count = run("split " + quote(model) + " -n 3 --devices cpu:1,cpu:1 --force -o " + quote(out));
  EXPECT_EQ(count.status, 2);
  expect_one_error_line(count, "-n 3 pieces, but --devices names 2 devices");

  // run re-checks the plan against the caps it is given before loading anything.
  Result run_tight = run("run " + quote(out) + " --devices cpu:1=1KiB,cpu:1 --count 1 --dim batch=1 -q");
  EXPECT_EQ(run_tight.status, 1);
  expect_one_error_line(run_tight, "piece 0 needs");
}

TEST_F(Cli, SplitThenVerifyPasses) {
  std::string model = small_model(), out = dir_ + "/pieces";
  Result split = run("split " + quote(model) + " -n 2 --balance flops -o " + quote(out) + " --format json");
  ASSERT_EQ(split.status, 0) << split.err;
  json doc = json::parse(split.out);
  ASSERT_EQ(doc["pieces"].size(), 2u);
  EXPECT_EQ(doc["pieces"][0]["file"], "piece_0.onnx");
  EXPECT_EQ(doc["prediction"]["parts"], 2);
  double share = doc["pieces"][0]["cost_share_pct"].get<double>() + doc["pieces"][1]["cost_share_pct"].get<double>();
  EXPECT_NEAR(share, 100, 1e-6);
  EXPECT_GE(doc["prediction"]["max_over_ideal"].get<double>(), 1.0);
  EXPECT_TRUE(fs::exists(out + "/plan.json"));

  // An existing output directory is kept unless --force.
  Result again = run("split " + quote(model) + " -n 2 --balance flops -o " + quote(out));
  EXPECT_TRUE(again.status == 1 || again.status == 2) << again.status;
  expect_one_error_line(again, out);
  Result forced = run("split " + quote(model) + " -n 3 --balance flops -o " + quote(out) + " --force -q");
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_EQ(forced.err, "");  // -q: nothing on stderr
  EXPECT_TRUE(fs::exists(out + "/piece_2.onnx"));

  Result verify = run("verify " + quote(model) + " " + quote(out) + " --format csv --dim batch=2");
  ASSERT_EQ(verify.status, 0) << verify.err;
  std::vector<std::string> rows = lines(verify.out);
  ASSERT_EQ(rows.size(), 2u) << verify.out;
  EXPECT_EQ(rows[0],
            "output,dtype,shape,max_abs,max_rel,mean_abs,median_abs,p99_abs,mean_rel,median_rel,max_ulp,mismatches,"
            "shape_mismatch,bitwise,rtol,atol,check_stat,tolerance_why,reference,divergence,pass");
  EXPECT_EQ(rows[1].rfind("y,float,\"[batch, 4]\",", 0), 0u) << rows[1];
  EXPECT_EQ(rows[1].substr(rows[1].size() - 5), ",true");
}

TEST_F(Cli, RunWritesTheFirstAnswerAsNpyIntoANewDirectoryOnly) {
  // An output named as exporters name them: '/' and ':' cannot be file names.
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.initializer(test::random_tensor("w1", {4, 4}, 1));
  b.initializer(test::random_tensor("w2", {4, 4}, 2));
  b.node("MatMul", {"x", "w1"}, {"h"});
  b.node("Relu", {"h"}, {"r"});
  b.node("MatMul", {"r", "w2"}, {"scores/out:0"});
  b.output("scores/out:0", DType::FLOAT, {"batch", 4});
  const std::string model = b.save(dir_ + "/named.onnx"), plan = dir_ + "/pieces", out = dir_ + "/answers";
  ASSERT_EQ(run("split " + quote(model) + " -n 2 --balance flops -q -o " + quote(plan)).status, 0);

  const std::string command = "run " + quote(plan) + " --devices cpu:1,cpu:1 --count 3 --dim batch=2 --seed 5 -o " +
                              quote(out) + " --format json";
  Result first = run(command);
  ASSERT_EQ(first.status, 0) << first.err;
  json doc = json::parse(first.out);
  EXPECT_EQ(doc["run"]["requests"], 3);
  EXPECT_EQ(doc["run"]["failures"], 0);
  ASSERT_EQ(doc["stages"].size(), 2u);
  EXPECT_EQ(doc["stages"][1]["piece"], "piece_1.onnx");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(out)) files.push_back(entry.path().filename().string());
  ASSERT_EQ(files, std::vector<std::string>{"scores_out_0.npy"});
  const Tensor answer = read_npy(out + "/scores_out_0.npy");
  EXPECT_EQ(answer.shape, (std::vector<int64_t>{2, 4}));

  // The same run again may not replace what is there; --force may.
  std::ofstream(out + "/mine.txt") << "keep";
  Result again = run(command);
  EXPECT_EQ(again.status, 2);
  expect_one_error_line(again, "exists (use --force");
  EXPECT_TRUE(fs::exists(out + "/mine.txt"));
  Result forced = run(command + " --force -q");
  ASSERT_EQ(forced.status, 0) << forced.err;
  EXPECT_FALSE(fs::exists(out + "/mine.txt"));
  EXPECT_EQ(read_npy(out + "/scores_out_0.npy").data, answer.data) << "same seed, same answer";

  Result devices = run("run " + quote(plan) + " --devices cpu:1,cpu:1,cpu:1 --count 1 -q");
  EXPECT_EQ(devices.status, 2);
  expect_one_error_line(devices, "3 devices for a plan of 2 pieces");
}

TEST_F(Cli, VerifyMismatchExitsThreeAfterPrintingTheTable) {
  std::string model = small_model(), out = dir_ + "/pieces";
  ASSERT_EQ(run("split " + quote(model) + " -n 2 --balance flops -o " + quote(out)).status, 0);
  test::shift_a_weight(out);

  Result verify = run("verify " + quote(model) + " " + quote(out) + " --format json");
  EXPECT_EQ(verify.status, 3);
  json doc = json::parse(verify.out);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["output"], "y");
  EXPECT_EQ(doc[0]["pass"], false);
  EXPECT_GT(doc[0]["mismatches"].get<int64_t>(), 0);
  EXPECT_GT(doc[0]["max_abs"].get<double>(), 0);
  std::vector<std::string> err = lines(verify.err);
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), "error: verify: 1 of 1 outputs differ beyond rtol 1e-05, atol 1e-06");
  // Every statistic, the tolerance and why, and where the pieces part from the model.
  for (const char* field : {"mean_abs", "median_abs", "p99_abs", "mean_rel", "median_rel", "max_ulp"})
    EXPECT_TRUE(doc[0][field].is_number()) << field;
  EXPECT_GT(doc[0]["max_ulp"].get<double>(), 0);
  EXPECT_EQ(doc[0]["check_stat"], "elementwise");
  EXPECT_EQ(doc[0]["rtol"], 1e-5);
  EXPECT_NE(doc[0]["tolerance_why"].get<std::string>().find("float32"), std::string::npos);
  EXPECT_EQ(doc[0]["reference"], "model");
  const std::string divergence = doc[0]["divergence"];
  EXPECT_EQ(divergence.rfind("piece 1 output y differs", 0), 0u) << divergence;
  EXPECT_NE(verify.err.find("verify: " + divergence), std::string::npos) << verify.err;

  // A statistic that forgives the error: the mean of the rel error within a loose rtol passes.
  Result mean = run("verify " + quote(model) + " " + quote(out) + " --check-error-stat mean --rtol 1e6 -q");
  EXPECT_EQ(mean.status, 0) << mean.err;
  EXPECT_EQ(run("verify " + quote(model) + " " + quote(out) + " --check-error-stat p99").status, 2);
}

TEST_F(Cli, VerifyTakesInputsAndExpectedOutputsFromFolders) {
  std::string model = small_model(), out = dir_ + "/pieces";
  ASSERT_EQ(run("split " + quote(model) + " -n 2 --balance flops -q -o " + quote(out)).status, 0);
  // As the ONNX test data ships them: input_0.pb (x); expected outputs as NAME.npy. x = 0 gives y = 0 (no biases).
  const std::string inputs = dir_ + "/inputs", expected = dir_ + "/expected";
  fs::create_directories(inputs);
  fs::create_directories(expected);
  std::ofstream(inputs + "/input_0.pb", std::ios::binary)
      << test::float_tensor("x", {2, 4}, std::vector<float>(8, 0.0f)).SerializeAsString();
  write_npy(expected + "/y.npy", make_tensor(DType::FLOAT, {2, 4}));
  Result pass = run("verify " + quote(model) + " " + quote(out) + " --inputs-from " + quote(inputs) + " --expected " +
                    quote(expected) + " --format json");
  ASSERT_EQ(pass.status, 0) << pass.err;
  json doc = json::parse(pass.out);
  EXPECT_EQ(doc[0]["reference"], "expected");
  EXPECT_EQ(doc[0]["shape"], "[batch, 4]");
  EXPECT_EQ(doc[0]["bitwise"], true);

  Tensor wrong = make_tensor(DType::FLOAT, {2, 4});
  wrong.as<float>()[5] = 1.0f;
  write_npy(expected + "/y.npy", wrong);
  Result fail = run("verify " + quote(model) + " " + quote(out) + " --inputs-from " + quote(inputs) + " --expected " +
                    quote(expected) + " --format json");
  EXPECT_EQ(fail.status, 3);
  EXPECT_EQ(json::parse(fail.out)[0]["mismatches"], 1);

  Result empty = run("verify " + quote(model) + " " + quote(out) + " --expected " + quote(dir_));
  EXPECT_EQ(empty.status, 2);
  expect_one_error_line(empty, "no output_N.pb or NAME.npy file for any of the 1 values");
}

TEST_F(Cli, InputsWithoutADeclaredShapeAreGivenWithAnOptionTheCommandHas) {
  test::ModelBuilder b;
  b.input_no_shape("x", DType::FLOAT);
  b.initializer(test::random_tensor("w1", {4, 4}, 1));
  b.initializer(test::random_tensor("w2", {4, 4}, 2));
  b.node("MatMul", {"x", "w1"}, {"h"});
  b.node("Relu", {"h"}, {"r"});
  b.node("MatMul", {"r", "w2"}, {"y"});
  b.output_no_shape("y", DType::FLOAT);
  const std::string model = b.save(dir_ + "/unshaped.onnx"), out = dir_ + "/pieces", x = dir_ + "/x.npy";
  write_npy(x, make_tensor(DType::FLOAT, {3, 4}));

  // Timing needs a value: the error suggests --input, which split has.
  Result timed = run("split " + quote(model) + " -n 2 --balance time --profile-runs 1 -o " + quote(out));
  EXPECT_EQ(timed.status, 2);
  ASSERT_FALSE(lines(timed.err).empty());
  EXPECT_EQ(lines(timed.err).back(), "error: input 'x' has no declared shape: give it with --input") << timed.err;
  Result given = run("split " + quote(model) + " -n 2 --balance time --profile-runs 1 -q -o " + quote(out) +
                     " --input " + quote("x=" + x));
  EXPECT_EQ(given.status, 0) << given.err;
  // auto without it: flops, and a warning naming the input.
  Result fallback = run("split " + quote(model) + " -n 2 --force -o " + quote(out) + " --format json");
  ASSERT_EQ(fallback.status, 0) << fallback.err;
  EXPECT_EQ(json::parse(fallback.out)["prediction"]["balance"], "flops");
  EXPECT_NE(fallback.err.find("warning: timing needs values for inputs 'x'"), std::string::npos) << fallback.err;

  // verify suggests --input too, and has it.
  Result unshaped = run("verify " + quote(model) + " " + quote(out));
  EXPECT_EQ(unshaped.status, 2);
  expect_one_error_line(unshaped, "input 'x' has no declared shape: give it with --input");
  Result verified = run("verify " + quote(model) + " " + quote(out) + " -q --input " + quote("x=" + x));
  EXPECT_EQ(verified.status, 0) << verified.err;

  // So do run and bench, on the pieces and on the model (which they split with the value: timing needs it).
  for (const std::string& source : {out, model}) {
    Result requests = run("run " + quote(source) + " --devices cpu:1,cpu:1 --count 2 -q");
    EXPECT_EQ(requests.status, 2) << source;
    expect_one_error_line(requests, "input 'x' has no declared shape: give it with --input");
    Result ran = run("run " + quote(source) + " --devices cpu:1,cpu:1 --count 2 -q --input " + quote("x=" + x));
    EXPECT_EQ(ran.status, 0) << source << ": " << ran.err;
    const std::string sweep = " --devices cpu:1,cpu:1 --images 1:2 --repeat 1 --warmup 0 --alone-runs 1 -q";
    Result bench = run("bench " + quote(source) + sweep);
    EXPECT_EQ(bench.status, 2) << source;
    expect_one_error_line(bench, "input 'x' has no declared shape: give it with --input");
    Result benched = run("bench " + quote(source) + sweep + " --profile-runs 1 --input " + quote("x=" + x));
    EXPECT_EQ(benched.status, 0) << source << ": " << benched.err;
  }
}

// Sequence inputs and outputs (ONNX's sequence_map test): verify takes them from the test data, by folder or --input;
// run refuses them in one line, since requests are tensors.
TEST_F(Cli, SequenceInputsVerifyAndARunRefusesThem) {
  const std::string corpus =
      "/usr/share/libonnx-testdata/data/node/test_sequence_map_identity_1_sequence_1_tensor_expanded";
  if (!std::filesystem::exists(corpus)) GTEST_SKIP() << corpus << " missing: apt-get install libonnx-testdata";
  const std::string model = corpus + "/model.onnx", data = corpus + "/test_data_set_0", out = dir_ + "/pieces";
  ASSERT_EQ(run("split " + quote(model) + " -n 2 -q -o " + quote(out)).status, 0);
  Result folder = run("verify " + quote(model) + " " + quote(out) + " --inputs-from " + quote(data) + " --expected " +
                      quote(data) + " --format json");
  ASSERT_EQ(folder.status, 0) << folder.err;
  EXPECT_NE(folder.out.find("sequence of float"), std::string::npos) << folder.out;
  Result given = run("verify " + quote(model) + " " + quote(out) + " -q --input " +
                     quote("x0=" + data + "/input_0.pb") + " --input " + quote("x1=" + data + "/input_1.pb"));
  EXPECT_EQ(given.status, 0) << given.err;
  Result refused = run("run " + quote(out) + " --devices cpu:1,cpu:1 --count 1 -q");
  EXPECT_EQ(refused.status, 2);
  expect_one_error_line(refused,
                        "input 'x0' is not a tensor (a sequence, optional or map): a pipeline takes and "
                        "returns tensors only");
}

TEST_F(Cli, LibraryErrorsAboutAnArgumentNameItsFlag) {
  std::string model = small_model(), out = dir_ + "/pieces";
  Result cut = run("split " + quote(model) + " -n 2 --cut y -o " + quote(out));
  EXPECT_EQ(cut.status, 2);
  expect_one_error_line(cut, "--cut 'y': made by the last node");
  Result unknown = run("split " + quote(model) + " -n 2 --cut nope -o " + quote(out));
  EXPECT_EQ(unknown.status, 2);
  expect_one_error_line(unknown, "--cut 'nope': no node produces it (unknown name)");
  Result link = run("split " + quote(model) + " -n 2 --weights link -o " + quote(out));
  EXPECT_EQ(link.status, 2);
  expect_one_error_line(link, "--weights 'link': nothing to link");
  ASSERT_EQ(run("split " + quote(model) + " -n 2 --balance flops -q -o " + quote(out)).status, 0);
  write_npy(dir_ + "/x.npy", make_tensor(DType::FLOAT, {1, 4}));
  Result input = run("verify " + quote(model) + " " + quote(out) + " --input " + quote("nope=" + dir_ + "/x.npy"));
  EXPECT_EQ(input.status, 2);
  expect_one_error_line(input, "--input 'nope': the model has no such input");
}

// x -> MatMul -> an op of a domain ONNX Runtime does not know: the model loads and splits, but cannot be timed.
std::string unrunnable_model(const std::string& dir) {
  test::ModelBuilder b;
  b.opset("com.example", 1);
  b.input("x", DType::FLOAT, {"batch", 4});
  b.initializer(test::random_tensor("w", {4, 4}, 3));
  b.node("MatMul", {"x", "w"}, {"h"}, {}, "", "first");
  b.node("Frobnicate", {"h"}, {"y"}, {}, "com.example", "custom");
  b.output("y", DType::FLOAT, {"batch", 4});
  return b.save(dir + "/unrunnable.onnx");
}

TEST_F(Cli, LibraryWarningsReachStderrUnlessQuiet) {
  const std::string model = quote(unrunnable_model(dir_)), out = quote(dir_ + "/pieces");
  Result split = run("split " + model + " -n 2 --balance auto -o " + out);
  ASSERT_EQ(split.status, 0) << split.err;
  bool fell_back = false;
  for (const std::string& line : lines(split.err))
    fell_back = fell_back || (line.rfind("warning: ", 0) == 0 && line.find("balancing by flops") != std::string::npos);
  EXPECT_TRUE(fell_back) << split.err;
  Result quiet = run("split " + model + " -n 2 --balance auto --force -q -o " + out);
  ASSERT_EQ(quiet.status, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
}

}  // namespace
}  // namespace onnxpipe
