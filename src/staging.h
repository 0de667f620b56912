#pragma once
// Output that appears whole or not at all: written beside its target under a temporary name, renamed at the end.
// A failure (or an exception on the way) leaves nothing behind, and what already exists is replaced only when asked.
#include <filesystem>
#include <string>

namespace onnxpipe::detail {

// A fresh directory beside `target` (".NAME.tmp-XXXXXX"), removed again unless commit() is called.
class StagingDir {
 public:
  explicit StagingDir(const std::filesystem::path& target);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Moves the staged directory to the target, replacing an existing one only when `replace` (else
  // check_replaceable's error).
  void commit(bool replace);

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
};

// Throws Error(USAGE) naming `target` when it exists and `replace` is false (its argument() is the "force" field).
void check_replaceable(const std::filesystem::path& target, bool replace);

// A fresh private directory under the system's temporary directory ("onnxpipe_PURPOSE_XXXXXX"), removed with all it
// holds when the TempDir is destroyed. For work files nobody keeps: a split made on the fly, profiler output.
class TempDir {
 public:
  explicit TempDir(const std::string& purpose);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path` through a temporary file in the same directory and a rename: readers never see half a
// file, and a failed write leaves the old file (if any) as it was. Error(IO) naming the path.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace onnxpipe::detail
