// The streaming reader and writer on a model built in code: large raw_data stays on disk when parsing, and a model
// written field by field from borrowed messages and file ranges is the model that was parsed.
#include "proto_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "onnx_proto.h"
#include "onnxpipe/error.h"
#include "support/expect_error.h"
#include "support/model_builder.h"

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;

class ProtoStream : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("proto_stream"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

onnx::ModelProto parse(const std::string& file, DeferredRanges* deferred) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  onnx::ModelProto model;
  parse_model(fd.fd, file, static_cast<int64_t>(fs::file_size(file)), &model, deferred);
  return model;
}

std::string save_model(const std::string& file) {
  test::ModelBuilder b;
  b.input("x", DType::FLOAT, {1, 256});
  b.initializer(test::random_tensor("w", {256, 256}));  // 256 KiB: over kSmallTensorBytes
  b.initializer(test::random_tensor("bias", {256}));
  b.node("MatMul", {"x", "w"}, {"h"});
  b.node("Add", {"h", "bias"}, {"y"});
  b.output("y", DType::FLOAT, {1, 256});
  return b.save(file);
}

TEST_F(ProtoStream, LargeRawDataStaysOnDiskAndWritingItBackGivesTheSameModel) {
  const std::string file = save_model(path("m.onnx"));
  DeferredRanges deferred;
  const onnx::ModelProto parsed = parse(file, &deferred);
  ASSERT_EQ(deferred.size(), 1u);
  EXPECT_EQ(deferred.at("w").second, 256 * 256 * 4);
  for (const auto& t : parsed.graph().initializer()) EXPECT_EQ(t.has_raw_data(), t.name() == "bias") << t.name();

  ModelWriter w;
  w.header = model_header(parsed);
  w.graph.set_name(parsed.graph().name());
  *w.graph.mutable_input() = parsed.graph().input();
  *w.graph.mutable_output() = parsed.graph().output();
  for (const auto& n : parsed.graph().node()) w.nodes.push_back(&n);
  for (const auto& t : parsed.graph().initializer()) {
    const auto it = deferred.find(t.name());
    w.initializers.push_back(
        {&t, it == deferred.end() ? std::nullopt
                                  : std::optional<FileRange>(FileRange{file, it->second.first, it->second.second})});
  }
  const size_t size = w.byte_size();
  StringSink sink(size);
  w.write(sink);
  const std::string bytes = sink.take();
  EXPECT_EQ(bytes.size(), size);

  onnx::ModelProto original, written;
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(original.ParseFromIstream(&in));
  ASSERT_TRUE(written.ParseFromString(bytes));
  EXPECT_EQ(written.SerializeAsString(), original.SerializeAsString());  // same fields, whatever their order
}

TEST_F(ProtoStream, TruncatedFileIsInvalidModelNamingIt) {
  const std::string file = save_model(path("m.onnx"));
  fs::resize_file(file, fs::file_size(file) / 2);
  DeferredRanges deferred;
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { parse(file, &deferred); }, &message), ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find(file), std::string::npos) << message;
}

TEST_F(ProtoStream, ExternalTensorsAreAlignedInTheirDataFile) {
  FileSink data(path("d.bin"));
  data.bytes("abc", 3);
  onnx::TensorProto meta;
  begin_external(data, "d.bin", 5, &meta);
  data.bytes("hello", 5);
  data.close();
  const ExternalRef ref = external_ref(meta);
  EXPECT_EQ(ref.location, "d.bin");
  EXPECT_EQ(ref.offset, 4096);
  EXPECT_EQ(ref.length, 5);
  std::string back(5, '\0');
  read_range(FileRange{path("d.bin"), ref.offset, ref.length}, back.data());
  EXPECT_EQ(back, "hello");
}

}  // namespace
}  // namespace onnxpipe::detail
