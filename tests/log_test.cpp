#include "log.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace onnxpipe {
namespace {

// Restores "nobody listens" after each test: the channel is process-wide.
class Log : public ::testing::Test {
 protected:
  void TearDown() override { set_log_callback(LogLevel::DEBUG, nullptr); }
};

TEST_F(Log, MessagesBelowTheLevelAreDropped) {
  std::vector<std::pair<LogLevel, std::string>> seen;
  set_log_callback(LogLevel::WARN, [&](LogLevel level, const std::string& text) { seen.emplace_back(level, text); });
  EXPECT_FALSE(detail::log_enabled(LogLevel::INFO));
  EXPECT_TRUE(detail::log_enabled(LogLevel::ERROR));
  detail::log(LogLevel::DEBUG, "d");
  detail::log(LogLevel::INFO, "i");
  detail::log(LogLevel::WARN, "w");
  detail::log(LogLevel::ERROR, "e");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(LogLevel::WARN, std::string("w")));
  EXPECT_EQ(seen[1], std::make_pair(LogLevel::ERROR, std::string("e")));
}

TEST_F(Log, WithoutACallbackNothingIsEnabled) {
  set_log_callback(LogLevel::DEBUG, nullptr);
  EXPECT_FALSE(detail::log_enabled(LogLevel::ERROR));
  detail::log(LogLevel::ERROR, "dropped");  // must not crash
}

TEST_F(Log, ReplacingTheCallbackRedirectsLaterMessages) {
  int first = 0, second = 0;
  set_log_callback(LogLevel::DEBUG, [&](LogLevel, const std::string&) { ++first; });
  detail::log(LogLevel::INFO, "a");
  set_log_callback(LogLevel::DEBUG, [&](LogLevel, const std::string&) { ++second; });
  detail::log(LogLevel::INFO, "b");
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
}

TEST_F(Log, CallsFromManyThreadsComeOneAtATime) {
  int calls = 0;  // unsynchronised on purpose: the channel serialises the callback
  set_log_callback(LogLevel::DEBUG, [&](LogLevel, const std::string&) { ++calls; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 1000; ++i) detail::log(LogLevel::INFO, "x");
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(calls, 8000);
}

TEST_F(Log, LevelsHaveNames) {
  EXPECT_STREQ(log_level_name(LogLevel::WARN), "warning");
  EXPECT_STREQ(log_level_name(LogLevel::DEBUG), "debug");
}

}  // namespace
}  // namespace onnxpipe
