// Pieces that point into a hard link of the source's external data instead of copying it (SplitOptions::weights).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/log.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

struct stat stat_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

// Bytes on disk of the files in `dir` that are not the inode `shared` (the source's data file).
int64_t own_disk_bytes(const fs::path& dir, ino_t shared) {
  int64_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const struct stat st = stat_of(entry.path());
    if (st.st_ino != shared) bytes += static_cast<int64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

Plan split(const std::string& model, const fs::path& out, int parts, WeightStorage weights) {
  SplitOptions options;
  options.parts = parts;
  options.balance = Balance::FLOPS;
  options.output_dir = out.string();
  options.weights = weights;
  return split_model(model, options);
}

std::map<std::string, Tensor> random_input(int64_t batch) {
  Tensor x = make_tensor(DType::FLOAT, {batch, 64});
  std::mt19937 random(5);
  std::uniform_real_distribution<float> uniform(-1, 1);
  float* values = reinterpret_cast<float*>(x.data.data());
  for (int64_t i = 0; i < batch * 64; ++i) values[i] = uniform(random);
  return {{"x", x}};
}

// Everything but the model and its data file in `dir`: what a failed split would have left.
std::vector<std::string> leftovers(const fs::path& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) names.push_back(name);
  }
  return names;
}

TEST(WeightLinks, LinkedPiecesVerifyBitwiseAndThePlanHoldsNoCopyOfTheWeights) {
  const test::TempDir temp;
  const std::string model = test::external_data(temp.str());
  const fs::path data = temp.path() / "external_data.onnx.data";
  const struct stat source = stat_of(data);
  for (int parts : {1, 2, 3}) {
    SCOPED_TRACE("parts " + std::to_string(parts));
    const fs::path out = temp.path() / ("link_" + std::to_string(parts));
    const Plan plan = split(model, out, parts, WeightStorage::LINK);
    EXPECT_EQ(plan.weights, "link");
    ASSERT_EQ(plan.linked_files, std::vector<std::string>{"external_data.onnx.data"});
    const struct stat link = stat_of(out / plan.linked_files[0]);
    EXPECT_EQ(link.st_ino, source.st_ino) << "a hard link of the source's data file";
    EXPECT_EQ(link.st_dev, source.st_dev);
    EXPECT_GE(link.st_nlink, 2u);
    EXPECT_LT(own_disk_bytes(out, source.st_ino), source.st_size) << "no copy of the weights in the plan";
    for (const auto& piece : plan.pieces) {
      EXPECT_TRUE(piece.data_file.empty()) << piece.file;
      const detail::Model loaded = detail::Model::load((out / piece.file).string());
      if (loaded.graph().external_data) {
        EXPECT_EQ(loaded.graph().data_files, std::vector<std::string>{(out / plan.linked_files[0]).string()});
      }
    }
    EXPECT_EQ(Plan::load(out.string()).weights, "link") << "plan.json keeps the choice";

    VerifyOptions verify;
    verify.dims = {{"batch", 3}};
    verify.rtol = 0;
    verify.atol = 0;
    const VerifyReport report = verify_split(model, out.string(), verify);
    ASSERT_EQ(report.outputs.size(), 1u);
    EXPECT_TRUE(report.outputs[0].diff.bitwise_equal) << "max abs " << report.outputs[0].diff.max_abs;
  }
}

TEST(WeightLinks, LinkAndCopyRunTheSame) {
  const test::TempDir temp;
  const std::string model = test::external_data(temp.str());
  const Plan linked = split(model, temp.path() / "link", 2, WeightStorage::AUTO);
  EXPECT_EQ(linked.weights, "link") << "auto links an external-data source on the same filesystem";
  const Plan copied = split(model, temp.path() / "copy", 2, WeightStorage::COPY);
  EXPECT_EQ(copied.weights, "copy");
  EXPECT_TRUE(copied.linked_files.empty());
  const ino_t source = stat_of(temp.path() / "external_data.onnx.data").st_ino;
  for (const auto& piece : copied.pieces) {
    ASSERT_FALSE(piece.data_file.empty()) << "each piece copies its weights into its own data file";
    EXPECT_NE(stat_of(temp.path() / "copy" / piece.data_file).st_ino, source);
  }
  const auto inputs = random_input(4);
  const auto a = run_pieces((temp.path() / "link").string(), inputs);
  const auto b = run_pieces((temp.path() / "copy").string(), inputs);
  EXPECT_TRUE(compare(a.at("y"), b.at("y"), 0, 0).bitwise_equal);
}

TEST(WeightLinks, WithoutExternalDataAutoCopiesAndLinkIsAUsageErrorLeavingNothing) {
  const test::TempDir temp;
  const std::string model = test::skip_connections(temp.str());
  EXPECT_EQ(split(model, temp.path() / "auto", 2, WeightStorage::AUTO).weights, "copy");
  try {
    split(model, temp.path() / "link", 2, WeightStorage::LINK);
    ADD_FAILURE() << "link accepted a model without external data";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::USAGE) << error.what();
    ASSERT_TRUE(error.argument());
    EXPECT_EQ(error.argument()->field, "weights");
    EXPECT_NE(std::string(error.what()).find("no weights in external data"), std::string::npos) << error.what();
  }
  EXPECT_EQ(leftovers(temp.path(), {"skip_connections.onnx", "auto"}), std::vector<std::string>{});
}

// A source on another filesystem than the output (/dev/shm, a tmpfs, against the temporary directory): LINK fails
// with the reason and leaves nothing, AUTO copies and says why.
TEST(WeightLinks, AcrossFilesystemsLinkFailsCleanlyAndAutoFallsBackToCopy) {
  const test::TempDir temp;
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  detail::TempDir other_fs_parent("shm_probe");  // removed at exit, whatever happens below
  const fs::path shm = fs::path("/dev/shm") / other_fs_parent.path().filename();
  fs::create_directories(shm);
  struct Remove {
    fs::path path;
    ~Remove() {
      std::error_code error;
      fs::remove_all(path, error);
    }
  } remove_shm{shm};
  if (stat_of(shm).st_dev == stat_of(temp.path()).st_dev) GTEST_SKIP() << "/dev/shm is on the temporary directory's fs";
  const std::string model = test::external_data(shm.string());

  try {
    split(model, temp.path() / "link", 2, WeightStorage::LINK);
    ADD_FAILURE() << "a hard link across filesystems succeeded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::IO) << error.what();
    EXPECT_NE(std::string(error.what()).find("another filesystem"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(fs::is_empty(temp.path())) << "nothing left behind";

  std::vector<std::string> warnings;
  set_log_callback(LogLevel::WARN, [&](LogLevel, const std::string& text) { warnings.push_back(text); });
  const Plan plan = split(model, temp.path() / "auto", 2, WeightStorage::AUTO);
  set_log_callback(LogLevel::WARN, nullptr);
  EXPECT_EQ(plan.weights, "copy");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("copying the weights"), std::string::npos) << warnings[0];
  VerifyOptions verify;
  verify.rtol = 0;
  verify.atol = 0;
  EXPECT_TRUE(verify_split(model, (temp.path() / "auto").string(), verify).pass());
}

TEST(WeightLinks, APlanWhoseLinkedFileIsGoneDoesNotLoad) {
  const test::TempDir temp;
  const std::string model = test::external_data(temp.str());
  const Plan plan = split(model, temp.path() / "out", 2, WeightStorage::LINK);
  fs::remove(temp.path() / "out" / plan.linked_files[0]);
  EXPECT_TRUE(fs::exists(temp.path() / "external_data.onnx.data")) << "removing the link keeps the source";
  try {
    Plan::load((temp.path() / "out").string());
    ADD_FAILURE() << "a plan without its linked data file loaded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::IO);
    EXPECT_NE(std::string(error.what()).find("linked_files[0]"), std::string::npos) << error.what();
  }
}

TEST(WeightLinks, PlanJsonChecksTheWeightsFields) {
  const test::TempDir temp;
  const std::string model = test::external_data(temp.str());
  Plan plan = split(model, temp.path() / "out", 2, WeightStorage::LINK);
  EXPECT_EQ(Plan::from_json(plan.to_json()).linked_files, plan.linked_files);
  for (const auto& [weights, files] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"hardlink", {}}, {"copy", {"x.data"}}, {"link", {"../x.data"}}, {"link", {"/abs/x.data"}}}) {
    SCOPED_TRACE(weights);
    plan.weights = weights;
    plan.linked_files = files;
    EXPECT_THROW(plan.validate(), Error);
  }
}

}  // namespace
