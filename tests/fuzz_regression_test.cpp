// Inputs the fuzz targets (fuzz/) found that broke a reader. Each must now be an onnxpipe::Error with a code; and every
// file under fuzz/regressions/ is replayed through its reader here too, so that the normal build catches a return of
// what only the fuzz build would otherwise see.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>

#include "graph.h"
#include "model_io.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/tensor.h"
#include "staging.h"
#include "support/expect_error.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

std::string write(const detail::TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = (dir.path() / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A numpy 1.0 file: magic, header length, the header padded to a multiple of 64 with a newline, then the payload.
std::string npy(const std::string& header, const std::string& payload) {
  std::string text = header;
  text.append(63 - (10 + text.size()) % 64, ' ');
  text += '\n';
  const auto length = static_cast<uint16_t>(text.size());
  return std::string("\x93NUMPY\x01\x00", 8) + char(length & 0xff) + char(length >> 8) + text + payload;
}

TEST(FuzzRegression, PlanJsonNumberOverflowIsInvalidModel) {
  std::string message;
  EXPECT_EQ(test::error_code_of([] { Plan::from_json("4e642"); }, &message), ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  EXPECT_EQ(test::error_code_of([] { Plan::from_json(R"({"format_version": 1e999})"); }), ErrorCode::INVALID_MODEL);
}

TEST(FuzzRegression, NpyShapeWhoseCountOverflowsIsAnError) {
  detail::TempDir dir("fuzz_regression");
  const std::string path = write(
      dir, "big.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", ""));
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { read_npy(path); }, &message), ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("too large"), std::string::npos) << message;
  // 2^60 floats are 2^62 bytes: within int64, but no payload of 0 bytes may pass for them.
  const std::string empty =
      write(dir, "empty.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }", ""));
  EXPECT_EQ(test::error_code_of([&] { read_npy(empty); }), ErrorCode::INVALID_DATA);
}

TEST(FuzzRegression, NpyStringWidthWhoseSizeWrapsIsAnError) {
  // 4 strings of 2^62 + 1 bytes wrap to 4 bytes in 64 bits: the reader used to accept them and read far past the end.
  detail::TempDir dir("fuzz_regression");
  const std::string path = write(
      dir, "wrap.npy", npy("{'descr': '|S4611686018427387905', 'fortran_order': False, 'shape': (4,), }", "abcd"));
  EXPECT_EQ(test::error_code_of([&] { read_npy(path); }), ErrorCode::INVALID_DATA);
}

TEST(FuzzRegression, TensorPbWithNegativeOrOverflowingDimsIsInvalidModel) {
  detail::TempDir dir("fuzz_regression");
  onnx::TensorProto proto;
  proto.set_name("t");
  proto.set_data_type(onnx::TensorProto::FLOAT);
  proto.add_dims(int64_t(1) << 40);
  proto.add_dims(int64_t(1) << 40);
  const std::string big = write(dir, "big.pb", proto.SerializeAsString());
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { read_tensor_pb(big); }, &message), ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("dims negative or too large"), std::string::npos) << message;

  // Two dims of -1 make a count of 1: four bytes used to pass for a tensor no reader can use.
  proto.clear_dims();
  proto.add_dims(-1);
  proto.add_dims(-1);
  proto.set_raw_data(std::string(4, '\0'));
  const std::string negative = write(dir, "negative.pb", proto.SerializeAsString());
  EXPECT_EQ(test::error_code_of([&] { read_tensor_pb(negative); }), ErrorCode::INVALID_DATA);
}

TEST(FuzzRegression, ModelWithAnOverflowingInitializerIsInvalidModel) {
  detail::TempDir dir("fuzz_regression");
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::TensorProto* weight = model.mutable_graph()->add_initializer();
  weight->set_name("w");
  weight->set_data_type(onnx::TensorProto::FLOAT);
  for (int i = 0; i < 3; ++i) weight->add_dims(int64_t(1) << 30);
  const std::string path = write(dir, "m.onnx", model.SerializeAsString());
  EXPECT_EQ(test::error_code_of([&] { detail::Model::load(path); }), ErrorCode::INVALID_MODEL);
}

// Every saved fuzz finding, through the entry point of the target that found it: an Error or a result, nothing else.
TEST(FuzzRegression, SavedFindingsAreErrorsOrResults) {
  const std::map<std::string, std::function<void(const std::string&)>> readers = {
      {"fuzz_model",
       [](const std::string& path) {
         detail::Model model = detail::Model::load(path);
         detail::Graph graph(model.graph());
       }},
      {"fuzz_plan",
       [](const std::string& path) {
         std::ifstream in(path, std::ios::binary);
         Plan::from_json(std::string(std::istreambuf_iterator<char>(in), {})).validate();
       }},
      {"fuzz_npy", [](const std::string& path) { check_tensor("fuzz", read_npy(path)); }},
      {"fuzz_tensor_pb", [](const std::string& path) { check_tensor("fuzz", read_tensor_pb(path)); }},
  };
  const fs::path root = fs::path(ONNXPIPE_SOURCE_DIR) / "fuzz" / "regressions";
  int replayed = 0;
  for (const auto& [target, read] : readers) {
    if (!fs::is_directory(root / target)) continue;
    for (const auto& entry : fs::directory_iterator(root / target)) {
      SCOPED_TRACE(entry.path().string());
      try {
        read(entry.path().string());
      } catch (const Error&) {
      }
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0) << "no files under " << root;
}

}  // namespace
}  // namespace onnxpipe
