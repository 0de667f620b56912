// Host facts the device layer reads, the contention it warns of, and device capacities (the device strings
// themselves are parsed in runtime_test's RuntimeDevice tests).
#include "onnxpipe/device.h"

#include <gtest/gtest.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <string>
#include <thread>

#include "onnxpipe/error.h"
#include "support/expect_error.h"

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

TEST(ByteCount, UnitsAreBinaryOrDecimalAsNamed) {
  EXPECT_EQ(parse_bytes("4096"), 4096);
  EXPECT_EQ(parse_bytes("4096B"), 4096);
  EXPECT_EQ(parse_bytes("2KiB"), 2048);
  EXPECT_EQ(parse_bytes("3MiB"), 3 << 20);
  EXPECT_EQ(parse_bytes("6GiB"), int64_t(6) << 30);
  EXPECT_EQ(parse_bytes("1.5GiB"), int64_t(3) << 29);
  EXPECT_EQ(parse_bytes("2KB"), 2000);
  EXPECT_EQ(parse_bytes("5MB"), 5000000);
  EXPECT_EQ(parse_bytes("1.5GB"), 1500000000);
  EXPECT_EQ(parse_bytes("1TiB"), int64_t(1) << 40);
}

TEST(ByteCount, BadCountsAreUsageErrorsNamingTheText) {
  for (const std::string text :
       {"", "GiB", "4gib", "4 GiB", "1.5", "1..5GiB", "-1GiB", "4XB", "99999999TiB", ".TB", "."}) {
    std::string message;
    EXPECT_EQ(test::error_code_of([&] { parse_bytes(text); }, &message), ErrorCode::USAGE) << text;
    EXPECT_NE(message.find("'" + text + "'"), std::string::npos) << message;
  }
}

TEST(ByteCount, TextForAPersonHasOneDecimalUnderTen) {
  EXPECT_EQ(bytes_text(512), "512 B");
  EXPECT_EQ(bytes_text(int64_t(25) << 30), "25 GiB");
  EXPECT_EQ(bytes_text(static_cast<int64_t>(5.1 * (1 << 30))), "5.1 GiB");
  EXPECT_EQ(bytes_text(640 << 20), "640 MiB");
}

TEST(DeviceCapacity, AnyDeviceTakesOneAndKeepsItThroughItsText) {
  const DeviceSpec gpu = parse_device("cuda:1=40GiB");
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_EQ(gpu.device_id, 1);
  EXPECT_EQ(gpu.capacity, int64_t(40) << 30);
  EXPECT_EQ(gpu.to_string(), "cuda:1=40GiB");
  EXPECT_EQ(parse_device(gpu.to_string()), gpu);

  const DeviceSpec cpu = parse_device("cpu:1@0=1.5GB");
  EXPECT_EQ(cpu.threads, 1);
  EXPECT_EQ(cpu.cores, std::vector<int>{0});
  EXPECT_EQ(cpu.capacity, 1500000000);
  EXPECT_EQ(parse_device(cpu.to_string()), cpu);

  EXPECT_EQ(parse_device("cpu").capacity, -1);
  EXPECT_EQ(parse_device("cpu").to_string(), "cpu");
  EXPECT_FALSE(parse_device("cpu=1GiB") == parse_device("cpu"));

  const std::vector<DeviceSpec> list = parse_devices("cuda:0=4GiB,cpu:1=512MiB,cpu:1");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].capacity, int64_t(4) << 30);
  EXPECT_EQ(list[1].capacity, int64_t(512) << 20);
  EXPECT_EQ(list[2].capacity, -1);
}

TEST(DeviceCapacity, ABadCapacityNamesTheDevice) {
  for (const std::string text : {"cuda:0=", "cuda:0=4XiB", "cpu:1=lots", "cpu=1=2"}) {
    std::string message;
    EXPECT_EQ(test::error_code_of([&] { parse_device(text); }, &message), ErrorCode::USAGE) << text;
    EXPECT_NE(message.find("device '" + text + "'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace onnxpipe
