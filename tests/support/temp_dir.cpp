#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <cctype>

namespace onnxpipe::test {
namespace {

// "Suite_Test", with what a file name cannot hold (the '/' of parameterised tests) made '_'.
std::string test_name() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "test";
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  return name;
}

}  // namespace

TempDir::TempDir() : detail::TempDir(test_name()) {}

}  // namespace onnxpipe::test
