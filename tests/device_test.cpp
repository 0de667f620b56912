// Host facts the device layer reads (the device strings themselves are parsed in runtime_test's RuntimeDevice tests).
#include <gtest/gtest.h>
#include <sys/sysinfo.h>

#include "onnxpipe/device.h"

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

}  // namespace
}  // namespace onnxpipe
