// Output that appears whole or not at all.
#include "staging.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "onnxpipe/error.h"
#include "support/expect_error.h"
#include "support/model_builder.h"
#include "support/temp_dir.h"

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;

class Staging : public ::testing::Test {
 protected:
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  test::TempDir temp_;
  std::string dir_ = temp_.str();
};

std::string read(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(Staging, AnUncommittedDirectoryLeavesNothing) {
  {
    StagingDir staging(fs::path(dir_) / "out");
    std::ofstream(staging.path() / "half.txt") << "x";
  }
  EXPECT_TRUE(entries().empty());
}

TEST_F(Staging, CommitReplacesAnExistingDirectoryOnlyWhenAsked) {
  fs::create_directories(fs::path(dir_) / "out");
  std::ofstream(fs::path(dir_) / "out" / "mine.txt") << "mine";
  {
    StagingDir staging(fs::path(dir_) / "out");
    std::ofstream(staging.path() / "new.txt") << "new";
    std::string message;
    EXPECT_EQ(test::error_code_of([&] { staging.commit(false); }, &message), ErrorCode::USAGE);
    EXPECT_NE(message.find("out exists and replacing it was not asked for"), std::string::npos) << message;
  }
  EXPECT_EQ(entries(), std::vector<std::string>{"out"});
  EXPECT_EQ(read(fs::path(dir_) / "out" / "mine.txt"), "mine");

  StagingDir staging(fs::path(dir_) / "out");
  std::ofstream(staging.path() / "new.txt") << "new";
  staging.commit(true);
  EXPECT_EQ(entries(), std::vector<std::string>{"out"});
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "out" / "mine.txt"));
  EXPECT_EQ(read(fs::path(dir_) / "out" / "new.txt"), "new");
}

TEST_F(Staging, WriteFileAtomicallyReplacesTheWholeFile) {
  const std::string path = dir_ + "/trace.json";
  write_file_atomically(path, "a long first version");
  write_file_atomically(path, "short");
  EXPECT_EQ(read(path), "short");
  EXPECT_EQ(entries(), std::vector<std::string>{"trace.json"});
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::owner_read, fs::perms::owner_read);
}

TEST_F(Staging, AFailedWriteKeepsWhatWasThereAndLeavesNoTemporary) {
  // A directory where the file should go: the final rename fails, after the data was written.
  const std::string path = dir_ + "/trace.json";
  fs::create_directories(path);
  std::ofstream(path + "/inside.txt") << "mine";
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { write_file_atomically(path, "new"); }, &message), ErrorCode::IO);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(read(path + "/inside.txt"), "mine");
  EXPECT_EQ(entries(), std::vector<std::string>{"trace.json"});
}

TEST_F(Staging, AFileInAMissingPlaceIsAnIoError) {
  const std::string path = dir_ + "/file/inside.json";
  std::ofstream(dir_ + "/file") << "a file, not a directory";
  EXPECT_EQ(test::error_code_of([&] { write_file_atomically(path, "x"); }), ErrorCode::IO);
}

TEST(TempDir, IsFreshAndGoesWithEverythingInIt) {
  std::filesystem::path kept;
  {
    TempDir first("test"), second("test");
    EXPECT_NE(first.path(), second.path());
    EXPECT_TRUE(std::filesystem::is_directory(first.path()));
    EXPECT_EQ(first.path().filename().string().rfind("onnxpipe_test_", 0), 0u) << first.str();
    std::filesystem::create_directories(first.path() / "a" / "b");
    std::ofstream(first.path() / "a" / "b" / "f.txt") << "x";
    kept = first.path();
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

}  // namespace
}  // namespace onnxpipe::detail
