// Sequences of tensors: read from the ONNX test data's SequenceProto files, made into and read back from ORT values,
// and compared by verify as their tensors end to end.
#include "onnxpipe/sequence.h"

#include <gtest/gtest.h>
// onnx_pb.h first: onnx-data.pb.h needs its ONNX_API.
// clang-format off
#include <onnx/onnx_pb.h>
#include <onnx/onnx-data.pb.h>
// clang-format on

#include <filesystem>
#include <fstream>

#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

Tensor floats(std::vector<int64_t> shape, float first) {
  Tensor tensor = make_tensor(DType::FLOAT, std::move(shape));
  for (int64_t i = 0; i < tensor.element_count(); ++i) tensor.as<float>()[i] = first + static_cast<float>(i);
  return tensor;
}

void add_tensor(const Tensor& tensor, onnx::TensorProto* proto) {
  proto->set_data_type(static_cast<int32_t>(tensor.dtype));
  for (int64_t dim : tensor.shape) proto->add_dims(dim);
  proto->set_raw_data(tensor.data.data(), tensor.data.size());
}

void write_message(const std::string& path, const google::protobuf::Message& message) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(message.SerializeToOstream(&out));
}

const fs::path kSequenceMap = "/usr/share/libonnx-testdata/data/node/test_sequence_map_add_2_sequences_expanded";

}  // namespace

TEST(Sequence, ReadsASequenceProtoOfTensors) {
  test::TempDir dir;
  onnx::SequenceProto proto;
  proto.set_elem_type(onnx::SequenceProto::TENSOR);
  add_tensor(floats({2, 3}, 0), proto.add_tensor_values());
  add_tensor(floats({4}, 10), proto.add_tensor_values());
  write_message(dir.file("seq.pb"), proto);
  const TensorSequence sequence = read_sequence_pb(dir.file("seq.pb"));
  EXPECT_EQ(sequence.dtype, DType::FLOAT);
  ASSERT_EQ(sequence.tensors.size(), 2u);
  EXPECT_EQ(sequence.tensors[1].shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(sequence.tensors[1].as<float>()[3], 13.0f);
}

TEST(Sequence, ATensorFileOrMixedDtypesAreNotASequence) {
  test::TempDir dir;
  onnx::TensorProto tensor;
  add_tensor(floats({2}, 0), &tensor);
  tensor.set_name("t");
  write_message(dir.file("tensor.pb"), tensor);
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { read_sequence_pb(dir.file("tensor.pb")); }, &message), ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("tensor.pb"), std::string::npos) << message;

  onnx::SequenceProto mixed;
  mixed.set_elem_type(onnx::SequenceProto::TENSOR);
  add_tensor(floats({2}, 0), mixed.add_tensor_values());
  add_tensor(make_tensor(DType::INT64, {2}), mixed.add_tensor_values());
  write_message(dir.file("mixed.pb"), mixed);
  EXPECT_EQ(test::error_code_of([&] { read_sequence_pb(dir.file("mixed.pb")); }, &message), ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("element 1 is int64"), std::string::npos) << message;
  EXPECT_EQ(test::error_code_of([&] { read_sequence_pb(dir.file("none.pb")); }), ErrorCode::IO);
}

TEST(Sequence, OrtValueRoundTripsItsTensors) {
  TensorSequence sequence{DType::FLOAT, {floats({2, 3}, 0), floats({1}, 7)}};
  const detail::Value value = detail::Value::from_sequence(sequence);
  EXPECT_TRUE(value.is_sequence());
  EXPECT_EQ(value.dtype(), DType::UNDEFINED);
  EXPECT_EQ(value.byte_size(), 7 * 4);
  EXPECT_EQ(value.device_id(), -1);
  const TensorSequence back = value.to_sequence();
  ASSERT_EQ(back.tensors.size(), 2u);
  EXPECT_EQ(back.dtype, DType::FLOAT);
  EXPECT_EQ(back.tensors[0].shape, sequence.tensors[0].shape);
  EXPECT_EQ(back.tensors[0].data, sequence.tensors[0].data);
  EXPECT_EQ(back.tensors[1].data, sequence.tensors[1].data);
  EXPECT_EQ(test::error_code_of([&] { value.to_tensor(); }), ErrorCode::RUNTIME);
  EXPECT_FALSE(detail::Value::from_tensor(floats({1}, 0)).is_sequence());
}

TEST(Sequence, EmptyOrMixedSequencesAreRefusedClearly) {
  std::string message;
  EXPECT_EQ(test::error_code_of(
                [] {
                  detail::Value::from_sequence(TensorSequence{DType::FLOAT, {}});
                },
                &message),
            ErrorCode::USAGE);
  EXPECT_NE(message.find("an empty sequence"), std::string::npos) << message;
  TensorSequence mixed{DType::FLOAT, {floats({1}, 0), make_tensor(DType::INT64, {1})}};
  EXPECT_EQ(test::error_code_of([&] { detail::Value::from_sequence(mixed); }, &message), ErrorCode::USAGE);
  EXPECT_NE(message.find("sequence element 1 is int64"), std::string::npos) << message;
}

// Two sequences in, one out (Loop over SequenceAt / SequenceInsert), split in 2: the crossing values are sequences.
TEST(Sequence, VerifyComparesSequenceOutputsTensorByTensor) {
  if (!fs::exists(kSequenceMap)) GTEST_SKIP() << kSequenceMap << " missing: apt-get install libonnx-testdata";
  test::TempDir dir;
  const std::string model = (kSequenceMap / "model.onnx").string(), data = (kSequenceMap / "test_data_set_0").string();
  SplitOptions split;
  split.parts = 2;
  split.output_dir = dir.file("pieces");
  split_model(model, split);
  VerifyOptions options;
  options.inputs_dir = data;
  VerifyReport report = verify_split(model, split.output_dir, options);  // against the unsplit model
  ASSERT_TRUE(report.pass());
  ASSERT_EQ(report.outputs.size(), 1u);
  EXPECT_EQ(report.outputs[0].sequence_of, DType::FLOAT);
  EXPECT_TRUE(report.outputs[0].diff.bitwise_equal);

  TensorSequence expected = read_sequence_pb(data + "/output_0.pb");
  ASSERT_GE(expected.tensors.size(), 2u);
  options.expected_sequences["y0"] = expected;
  report = verify_split(model, split.output_dir, options);
  EXPECT_EQ(report.reference, "expected");
  EXPECT_TRUE(report.pass());

  options.expected_sequences["y0"].tensors[1].as<float>()[0] += 1.0f;  // one element off
  report = verify_split(model, split.output_dir, options);
  EXPECT_FALSE(report.pass());
  EXPECT_EQ(report.outputs[0].diff.mismatches, 1);
  EXPECT_FALSE(report.outputs[0].diff.shape_mismatch);

  expected.tensors.pop_back();  // one tensor short: the sequences differ in length
  options.expected_sequences["y0"] = expected;
  report = verify_split(model, split.output_dir, options);
  EXPECT_FALSE(report.pass());
  EXPECT_TRUE(report.outputs[0].diff.shape_mismatch);
}

TEST(Sequence, AnOptionalIsNotTakenForASequence) {
  const fs::path optional = "/usr/share/libonnx-testdata/data/node/test_optional_get_element";
  if (!fs::exists(optional)) GTEST_SKIP() << optional << " missing: apt-get install libonnx-testdata";
  test::TempDir dir;
  const std::string model = (optional / "model.onnx").string();
  SplitOptions split;
  split.parts = 1;  // one node
  split.output_dir = dir.file("pieces");
  split_model(model, split);
  VerifyOptions options;
  options.inputs_dir = (optional / "test_data_set_0").string();
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { verify_split(model, split.output_dir, options); }, &message),
            ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("is given as a sequence but is not one"), std::string::npos) << message;
}
