// Host facts the device layer reads and the contention it warns of (the device strings themselves are parsed in
// runtime_test's RuntimeDevice tests).
#include "onnxpipe/device.h"

#include <gtest/gtest.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <string>
#include <thread>

namespace onnxpipe {
namespace {

TEST(HostMemory, AvailableIsPositiveAndAtMostTheTotal) {
  struct sysinfo info {};
  ASSERT_EQ(sysinfo(&info), 0);
  const int64_t total = static_cast<int64_t>(info.totalram) * info.mem_unit;
  const int64_t available = host_memory_available();
  EXPECT_GT(available, 0);
  EXPECT_LE(available, total);
}

TEST(Contention, ACoreTwoDevicesArePinnedToIsNamed) {
  const std::string warning = contention_warning({parse_device("cpu:1@0"), parse_device("cpu:1@0")});
  EXPECT_NE(warning.find("devices 0 (cpu:1@0) and 1 (cpu:1@0) are both pinned to core 0"), std::string::npos)
      << warning;
}

TEST(Contention, MoreThreadsThanTheMachineHasAreNamed) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string warning = contention_warning({parse_device("cpu:" + std::to_string(cores)), parse_device("cpu:1")});
  EXPECT_NE(warning.find(std::to_string(cores + 1) + " CPU threads for " + std::to_string(cores) + " hardware threads"),
            std::string::npos)
      << warning;
}

TEST(Contention, OneCorePerStageAndGpusAreFine) {
  EXPECT_EQ(contention_warning({parse_device("cpu:1"), parse_device("cuda:0"), parse_device("cuda:1")}), "");
  if (std::thread::hardware_concurrency() >= 2) {
    EXPECT_EQ(contention_warning({parse_device("cpu:1@0"), parse_device("cpu:1@1")}), "");
  }
  EXPECT_EQ(contention_warning({}), "");
}

}  // namespace
}  // namespace onnxpipe
