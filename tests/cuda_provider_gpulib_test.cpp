// ONNX Runtime's CUDA provider without a GPU (label gpu-lib): where the provider (scripts/install_deps.sh --gpu) and
// CUDA 13's libraries (/usr/local/cuda*) are installed, the provider resolves every library but the driver, and a
// cuda:0 session gets as far as asking the driver for a device: it fails with CUDA's device/driver error, not with a
// library that does not load. Skipped with a message where either is missing.
#include <gtest/gtest.h>
#include <link.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "runtime.h"
#include "support/model_builder.h"
#include "support/shell.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

const char* kChildVariable = "ONNXPIPE_GPULIB_CHILD";  // set in the child process of CudaSessionFailsOnTheDriver

// The directory of the libonnxruntime.so.1 this process loaded: ORT loads its providers from there.
fs::path ort_library_dir() {
  fs::path found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        const fs::path path = info->dlpi_name ? info->dlpi_name : "";
        if (path.filename() != "libonnxruntime.so.1") return 0;
        *static_cast<fs::path*>(data) = path.parent_path();
        return 1;
      },
      &found);
  return found;
}

// The CUDA toolkit's library directories that hold CUDA 13's runtime (/usr/local/cuda*/lib64 and the like).
std::vector<fs::path> cuda_library_dirs() {
  std::vector<fs::path> dirs;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/usr/local", error)) {
    if (entry.path().filename().string().rfind("cuda", 0) != 0) continue;
    for (const char* sub : {"lib64", "lib", "targets/x86_64-linux/lib"}) {
      const fs::path dir = entry.path() / sub;
      if (fs::exists(dir / "libcudart.so.13")) dirs.push_back(fs::weakly_canonical(dir));
    }
  }
  return dirs;
}

std::string search_path(const std::vector<fs::path>& dirs) {
  std::string path;
  for (const fs::path& dir : dirs) path += (path.empty() ? "" : ":") + dir.string();
  return path;
}

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome run_shell(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " >" + test::shell_quote(log.string()) + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, test::read_file(log)};
}

// The system's GPU driver, when one is installed (ldconfig knows libcuda.so.1).
bool has_driver() { return std::system("/sbin/ldconfig -p 2>/dev/null | grep -q 'libcuda\\.so\\.1 '") == 0; }

class CudaProviderLib : public ::testing::Test {
 protected:
  void SetUp() override {
    provider_ = ort_library_dir() / "libonnxruntime_providers_cuda.so";
    if (!fs::exists(provider_) || !fs::exists(provider_.parent_path() / "libonnxruntime_providers_shared.so")) {
      GTEST_SKIP() << "ONNX Runtime's CUDA provider is not installed beside "
                   << ort_library_dir() / "libonnxruntime.so.1"
                   << ": install it with scripts/install_deps.sh --gpu (or make gpu)";
    }
    cuda_dirs_ = cuda_library_dirs();
    if (cuda_dirs_.empty()) GTEST_SKIP() << "no CUDA 13 libraries (libcudart.so.13) under /usr/local/cuda*";
    dir_ = test::temp_dir("cuda_provider_gpulib_test");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path provider_;
  std::vector<fs::path> cuda_dirs_;
  std::string dir_;
};

TEST_F(CudaProviderLib, ProviderResolvesEveryLibraryButTheDriver) {
  const Outcome ldd = run_shell(
      "LD_LIBRARY_PATH=" + test::shell_quote(search_path(cuda_dirs_)) + " ldd " + test::shell_quote(provider_),
      dir_ + "/ldd.txt");
  ASSERT_EQ(ldd.exit_code, 0) << ldd.output;
  std::istringstream lines(ldd.output);
  int resolved = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("not found") == std::string::npos) {
      resolved += line.find("=> /") != std::string::npos;
      continue;
    }
    EXPECT_NE(line.find("libcuda.so.1"), std::string::npos) << "only the driver may be missing: " << line;
  }
  for (const char* lib : {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"}) {
    EXPECT_NE(ldd.output.find(std::string(lib) + " => /"), std::string::npos) << lib << " is not resolved:\n"
                                                                              << ldd.output;
  }
  EXPECT_GE(resolved, 4);
}

// Creating a cuda:0 session, in a child process whose library path holds the CUDA libraries and, where no driver is
// installed, the toolkit's stub libcuda: the provider loads, then the driver answers (stub: CUDA failure 34; no
// device: 100; old driver: 35). With a GPU the session is simply made.
TEST_F(CudaProviderLib, CudaSessionFailsOnTheDriverNotOnLoading) {
  if (std::getenv(kChildVariable)) {
    test::ModelBuilder b;
    b.input("x", DType::FLOAT, {1, 4});
    b.node("Relu", {"x"}, {"y"});
    b.output("y", DType::FLOAT, {1, 4});
    const std::string model = b.save(dir_ + "/relu.onnx");
    // A CPU session first: it creates ORT's environment. Appending the CUDA provider before the environment exists
    // fails with "Attempt to use DefaultLogger but none has been registered" (runtime.cpp builds a session's options
    // before its first use of the environment), which would hide what this test is after.
    detail::Session cpu(model, detail::SessionConfig{});
    detail::SessionConfig config;
    config.device = "cuda:0";
    try {
      detail::Session session(model, config);
      std::printf("session created: a CUDA device is present\n");
    } catch (const Error& e) {
      const std::string message = e.what();
      std::printf("session failed: %s\n", message.c_str());
      EXPECT_EQ(message.find("Failed to load"), std::string::npos) << "a library did not load: " << message;
      EXPECT_NE(message.find("CUDA failure"), std::string::npos) << "not CUDA's error: " << message;
    }
    return;
  }
  std::vector<fs::path> dirs = cuda_dirs_;
  if (!has_driver()) {
    fs::path stub;
    for (const fs::path& dir : cuda_dirs_) {
      if (fs::exists(dir / "stubs" / "libcuda.so")) stub = dir / "stubs" / "libcuda.so";
    }
    if (stub.empty()) GTEST_SKIP() << "no GPU driver and no stub libcuda.so under " << search_path(cuda_dirs_);
    fs::create_directories(dir_ + "/driver");
    fs::create_symlink(stub, dir_ + "/driver/libcuda.so.1");
    dirs.insert(dirs.begin(), dir_ + "/driver");
  }
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const Outcome child =
      run_shell(std::string(kChildVariable) + "=1 LD_LIBRARY_PATH=" + test::shell_quote(search_path(dirs)) + " " +
                    test::shell_quote(self) + " --gtest_filter=CudaProviderLib.CudaSessionFailsOnTheDriverNotOnLoading",
                dir_ + "/child.txt");
  EXPECT_EQ(child.exit_code, 0) << child.output;
  const size_t said = child.output.find("session ");
  ASSERT_NE(said, std::string::npos) << child.output;
  const size_t cuda = child.output.find("CUDA failure", said);  // the driver's answer, past ORT's long prefix
  std::printf("%s\n", child.output.substr(cuda == std::string::npos ? said : cuda, 300).c_str());
}

}  // namespace
}  // namespace onnxpipe
