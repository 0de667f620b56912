#include "staging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace fs = std::filesystem;

namespace {

// The permissions a new file or directory gets from the process's umask (mkdtemp/mkstemp make them private).
void give_default_permissions(const fs::path& path, mode_t base) {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(path.c_str(), base & ~mask);
}

fs::path beside(const fs::path& target) {
  fs::path parent = target.parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  return parent / ("." + target.filename().string() + ".tmp-XXXXXX");
}

}  // namespace

StagingDir::StagingDir(const fs::path& target) : target_(fs::absolute(target)) {
  std::string pattern = beside(target_).string();
  if (!mkdtemp(pattern.data())) {
    throw Error(ErrorCode::IO,
                "cannot create a directory in " + target_.parent_path().string() + ": " + std::strerror(errno));
  }
  path_ = pattern;
  give_default_permissions(path_, 0777);
}

StagingDir::~StagingDir() {
  std::error_code error;
  if (!path_.empty()) fs::remove_all(path_, error);
}

TempDir::TempDir(const std::string& purpose) {
  std::error_code error;
  const fs::path base = fs::temp_directory_path(error);
  std::string pattern = ((error ? fs::path("/tmp") : base) / ("onnxpipe_" + purpose + "_XXXXXX")).string();
  if (!mkdtemp(pattern.data())) {
    throw Error(ErrorCode::IO, "cannot create a temporary directory " + pattern + ": " + std::strerror(errno));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  fs::remove_all(path_, error);
}

void check_replaceable(const fs::path& target, bool replace) {
  if (replace || !fs::exists(target)) return;
  throw Error(ErrorCode::USAGE, target.string() + " exists and replacing it was not asked for",
              ArgumentContext{"force", target.string(), "exists"});
}

void StagingDir::commit(bool replace) {
  std::error_code error;
  fs::path old;
  check_replaceable(target_, replace);
  if (fs::exists(target_)) {
    old = path_.string() + ".old";
    fs::rename(target_, old, error);
    if (error) throw Error(ErrorCode::IO, "cannot replace " + target_.string() + ": " + error.message());
  }
  fs::rename(path_, target_, error);
  if (error) throw Error(ErrorCode::IO, "cannot create " + target_.string() + ": " + error.message());
  path_.clear();
  if (!old.empty()) fs::remove_all(old, error);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  std::string temp = beside(fs::absolute(path)).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0) throw Error(ErrorCode::IO, path + ": cannot create a file beside it: " + std::strerror(errno));
  bool written = true;
  for (size_t at = 0; at < text.size() && written;) {
    const ssize_t n = ::write(fd, text.data() + at, text.size() - at);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) at += static_cast<size_t>(n);
  }
  const int saved = errno;
  written = ::close(fd) == 0 && written;
  if (!written) {
    ::unlink(temp.c_str());
    throw Error(ErrorCode::IO, path + ": cannot write: " + std::strerror(saved ? saved : errno));
  }
  give_default_permissions(temp, 0666);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    ::unlink(temp.c_str());
    throw Error(ErrorCode::IO, path + ": cannot write: " + std::strerror(rename_error));
  }
}

}  // namespace onnxpipe::detail
