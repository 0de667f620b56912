#include "onnxpipe/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "onnxpipe/error.h"
#include "support/temp_dir.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(ONNXPIPE_SOURCE_DIR) + "/tests/data/";

template <typename T>
Tensor tensor_of(DType dtype, std::vector<int64_t> shape, std::vector<T> values) {
  Tensor t = make_tensor(dtype, std::move(shape));
  EXPECT_EQ(t.data.size(), values.size() * sizeof(T));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

Tensor floats(std::vector<int64_t> shape, std::vector<float> values) {
  return tensor_of(DType::FLOAT, std::move(shape), std::move(values));
}

void expect_error(const std::function<void()>& f, ErrorCode code, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(DType, NamesRoundTripAndSizes) {
  for (DType d : {DType::FLOAT, DType::UINT8, DType::INT8, DType::UINT16, DType::INT16, DType::INT32, DType::INT64,
                  DType::STRING, DType::BOOL, DType::FLOAT16, DType::DOUBLE, DType::UINT32, DType::UINT64,
                  DType::COMPLEX64, DType::COMPLEX128, DType::BFLOAT16}) {
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_name(DType::FLOAT), "float");
  EXPECT_EQ(dtype_name(DType::INT64), "int64");
  EXPECT_EQ(dtype_size(DType::FLOAT16), 2u);
  EXPECT_EQ(dtype_size(DType::COMPLEX128), 16u);
  EXPECT_EQ(dtype_size(DType::STRING), 0u);
  EXPECT_EQ(dtype_size(DType::UNDEFINED), 0u);
  expect_error([] { dtype_from_name("float32x"); }, ErrorCode::USAGE, "float32x");
}

TEST(Tensor, MakeTensorIsZeroFilledWithElementCount) {
  Tensor t = make_tensor(DType::INT32, {2, 3, 4});
  EXPECT_EQ(t.element_count(), 24);
  EXPECT_EQ(t.byte_size(), 96u);
  for (uint8_t b : t.data) EXPECT_EQ(b, 0);
  EXPECT_EQ(make_tensor(DType::FLOAT, {}).element_count(), 1);  // a scalar
  EXPECT_EQ(make_tensor(DType::FLOAT, {3, 0}).byte_size(), 0u);
  EXPECT_EQ(make_tensor(DType::STRING, {2, 2}).strings.size(), 4u);
  expect_error([] { make_tensor(DType::FLOAT, {2, -1}); }, ErrorCode::USAGE, "negative");
}

TEST(Tensor, BorrowedBytesAreReadInPlaceUntilOwned) {
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  Tensor t;
  t.dtype = DType::FLOAT;
  t.shape = {2, 2};
  t.borrowed = {buffer, reinterpret_cast<const uint8_t*>(buffer->data()), buffer->size() * sizeof(float)};
  const Tensor& view = t;
  EXPECT_TRUE(t.is_borrowed() && t.data.empty());
  EXPECT_EQ(view.as<float>(), buffer->data());  // no copy
  EXPECT_EQ(t.byte_size(), 16u);
  check_tensor("x", t);
  Tensor copy = make_tensor(DType::FLOAT, {2, 2});
  std::memcpy(copy.data.data(), buffer->data(), 16);
  EXPECT_TRUE(compare(t, copy, 0, 0).bitwise_equal);
  EXPECT_EQ(buffer.use_count(), 2);  // the tensor keeps its owner alive
  t.as<float>()[0] = 9;              // a writer owns the bytes first: the borrowed buffer is untouched
  EXPECT_FALSE(t.is_borrowed());
  EXPECT_EQ(buffer.use_count(), 1);
  EXPECT_EQ((*buffer)[0], 1);
  EXPECT_EQ(t.as<float>()[1], 2);
  t.borrowed = {buffer, reinterpret_cast<const uint8_t*>(buffer->data()), 12};
  t.data.clear();
  expect_error([&] { check_tensor("x", t); }, ErrorCode::USAGE, "12 bytes");
}

TEST(Npy, RoundTripsEveryNumericDtype) {
  test::TempDir dir;
  std::vector<Tensor> tensors = {
      floats({2, 3}, {0.f, -1.5f, 3.25f, 1e-30f, std::numeric_limits<float>::infinity(), 7.f}),
      tensor_of<double>(DType::DOUBLE, {3}, {1.0 / 3, -2e300, 0}),
      tensor_of<int64_t>(DType::INT64, {2, 1}, {-(int64_t(1) << 60), 42}),
      tensor_of<int32_t>(DType::INT32, {}, {-7}),
      tensor_of<uint8_t>(DType::UINT8, {4}, {0, 1, 254, 255}),
      tensor_of<int8_t>(DType::INT8, {2}, {-128, 127}),
      tensor_of<uint8_t>(DType::BOOL, {3}, {1, 0, 1}),
      tensor_of<uint16_t>(DType::FLOAT16, {2}, {0x3e00, 0xfc00}),
      tensor_of<uint16_t>(DType::UINT16, {1}, {65535}),
      tensor_of<uint64_t>(DType::UINT64, {1}, {~uint64_t(0)}),
      tensor_of<float>(DType::COMPLEX64, {2}, {1, 2, 3, 4}),
      make_tensor(DType::FLOAT, {0, 5}),
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::string path = dir.file("t" + std::to_string(i) + ".npy");
    write_npy(path, tensors[i]);
    Tensor back = read_npy(path);
    EXPECT_EQ(back.dtype, tensors[i].dtype) << dtype_name(tensors[i].dtype);
    EXPECT_EQ(back.shape, tensors[i].shape) << dtype_name(tensors[i].dtype);
    EXPECT_EQ(back.data, tensors[i].data) << dtype_name(tensors[i].dtype);
    // numpy aligns the data to 64 bytes.
    EXPECT_EQ((fs::file_size(path) - tensors[i].data.size()) % 64, 0u);
  }
}

TEST(Npy, RoundTripsStrings) {
  test::TempDir dir;
  Tensor t = make_tensor(DType::STRING, {3});
  t.strings = {"abc", "", "h\xc3\xa9llo"};
  write_npy(dir.file("s.npy"), t);
  Tensor back = read_npy(dir.file("s.npy"));
  EXPECT_EQ(back.dtype, DType::STRING);
  EXPECT_EQ(back.shape, t.shape);
  EXPECT_EQ(back.strings, t.strings);
}

TEST(Npy, ManyDimensionsUseVersion2) {
  test::TempDir dir;
  std::vector<int64_t> shape(25000, 1);  // a header over 64 KiB
  Tensor t = make_tensor(DType::FLOAT, shape);
  write_npy(dir.file("big.npy"), t);
  std::ifstream in(dir.file("big.npy"), std::ios::binary);
  char head[8];
  in.read(head, 8);
  EXPECT_EQ(head[6], 2);
  Tensor back = read_npy(dir.file("big.npy"));
  EXPECT_EQ(back.shape, shape);
}

TEST(Npy, BfloatHasNoNpyDtype) {
  test::TempDir dir;
  expect_error([&] { write_npy(dir.file("b.npy"), make_tensor(DType::BFLOAT16, {1})); }, ErrorCode::USAGE, "bfloat16");
}

TEST(Npy, ReadsFilesWrittenByNumpy) {
  Tensor f = read_npy(kData + "np_f4_2x3.npy");
  EXPECT_EQ(f.dtype, DType::FLOAT);
  EXPECT_EQ(f.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.as<float>()[5], 1.25f);

  Tensor be = read_npy(kData + "np_i4_be.npy");  // big endian, swapped on reading
  ASSERT_EQ(be.dtype, DType::INT32);
  EXPECT_EQ(be.as<int32_t>()[0], 1);
  EXPECT_EQ(be.as<int32_t>()[1], -2);
  EXPECT_EQ(be.as<int32_t>()[2], 70000);

  Tensor b = read_npy(kData + "np_b1.npy");
  EXPECT_EQ(b.dtype, DType::BOOL);
  EXPECT_EQ(b.data, (std::vector<uint8_t>{1, 0, 0, 1}));

  Tensor h = read_npy(kData + "np_f2.npy");
  ASSERT_EQ(h.dtype, DType::FLOAT16);
  EXPECT_EQ(h.as<uint16_t>()[0], 0x3e00);  // 1.5
  EXPECT_EQ(h.as<uint16_t>()[1], 0xb400);  // -0.25
  EXPECT_EQ(h.as<uint16_t>()[2], 0x7bff);  // 65504
  EXPECT_EQ(h.as<uint16_t>()[3], 0x0001);  // the smallest subnormal

  Tensor u = read_npy(kData + "np_u1_scalar.npy");
  EXPECT_EQ(u.dtype, DType::UINT8);
  EXPECT_TRUE(u.shape.empty());
  EXPECT_EQ(u.data, (std::vector<uint8_t>{7}));

  Tensor s = read_npy(kData + "np_str.npy");  // '<U5': UTF-32 in the file, UTF-8 in the tensor
  EXPECT_EQ(s.dtype, DType::STRING);
  EXPECT_EQ(s.strings, (std::vector<std::string>{"ab", "h\xc3\xa9llo", ""}));

  Tensor v2 = read_npy(kData + "np_i8_v2.npy");
  ASSERT_EQ(v2.dtype, DType::INT64);
  EXPECT_EQ(v2.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(v2.as<int64_t>()[1], int64_t(1) << 40);
  EXPECT_EQ(v2.as<int64_t>()[2], -3);
}

TEST(Npy, NumpyReadsWhatWeWrite) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";
  }
  test::TempDir dir;
  write_npy(dir.file("f.npy"), floats({2, 2}, {1, 2, 3, 4.5f}));
  write_npy(dir.file("b.npy"), tensor_of<uint8_t>(DType::BOOL, {2}, {1, 0}));
  write_npy(dir.file("i.npy"), tensor_of<int64_t>(DType::INT64, {}, {-9}));
  std::string check =
      "/usr/bin/python3 -c \"import numpy as np, sys; d = sys.argv[1]; "
      "f = np.load(d + '/f.npy'); b = np.load(d + '/b.npy'); i = np.load(d + '/i.npy'); "
      "ok = f.dtype == np.float32 and f.shape == (2, 2) and f[1, 1] == 4.5 and "
      "b.dtype == np.bool_ and list(b) == [True, False] and i.shape == () and i == -9; "
      "sys.exit(0 if ok else 1)\" " +
      fs::path(dir.file("f.npy")).parent_path().string();
  EXPECT_EQ(std::system(check.c_str()), 0);
}

TEST(Npy, ErrorsNameTheFile) {
  test::TempDir dir;
  expect_error([&] { read_npy(dir.file("missing.npy")); }, ErrorCode::IO, "missing.npy");
  expect_error([&] { read_npy(kData + "np_fortran.npy"); }, ErrorCode::INVALID_DATA, "np_fortran.npy: Fortran");
  expect_error([&] { read_npy(kData + "np_object.npy"); }, ErrorCode::INVALID_DATA, "unsupported dtype '|O'");
  { std::ofstream(dir.file("text.npy")) << "just text, not numpy"; }
  expect_error([&] { read_npy(dir.file("text.npy")); }, ErrorCode::INVALID_DATA, "text.npy: not a .npy file");

  // Truncated data: cut the last bytes off a valid file.
  write_npy(dir.file("cut.npy"), floats({4}, {1, 2, 3, 4}));
  fs::resize_file(dir.file("cut.npy"), fs::file_size(dir.file("cut.npy")) - 3);
  expect_error([&] { read_npy(dir.file("cut.npy")); }, ErrorCode::INVALID_DATA, "truncated");
  // Truncated header.
  fs::resize_file(dir.file("cut.npy"), 20);
  expect_error([&] { read_npy(dir.file("cut.npy")); }, ErrorCode::INVALID_DATA, "cut.npy");

  expect_error([&] { read_tensor_file(dir.file("x.bin")); }, ErrorCode::USAGE, "x.bin");
}

TEST(Npy, ReadTensorFilePicksNpyByExtension) {
  test::TempDir dir;
  write_npy(dir.file("x.npy"), floats({1}, {2.5f}));
  EXPECT_EQ(read_tensor_file(dir.file("x.npy")).as<float>()[0], 2.5f);
}

TEST(Compare, EqualTensorsAreBitwiseEqual) {
  Tensor a = floats({3}, {1, 2, 3});
  Difference d = compare(a, a, 0, 0);
  EXPECT_TRUE(d.pass());
  EXPECT_TRUE(d.bitwise_equal);
  EXPECT_EQ(d.max_abs, 0);
  EXPECT_EQ(d.max_rel, 0);
}

TEST(Compare, ToleranceDecidesMismatches) {
  Tensor expected = floats({4}, {1, 100, -2, 0});
  Tensor actual = floats({4}, {1.00001f, 100.5f, -2, 1e-7f});
  Difference d = compare(actual, expected, 1e-3, 1e-6);
  EXPECT_FALSE(d.bitwise_equal);
  EXPECT_EQ(d.mismatches, 1);  // only 100 vs 100.5 breaks 1e-6 + 1e-3 * |e|
  EXPECT_NEAR(d.max_abs, 0.5, 1e-9);
  EXPECT_NEAR(d.max_rel, 0.005, 1e-7);  // the element at 0 has no relative difference
  EXPECT_FALSE(d.pass());
  EXPECT_TRUE(compare(actual, expected, 1e-2, 1e-6).pass());
}

TEST(Compare, NanMatchesNanOnly) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  float inf = std::numeric_limits<float>::infinity();
  Difference same = compare(floats({3}, {nan, inf, -inf}), floats({3}, {nan, inf, -inf}), 0, 0);
  EXPECT_TRUE(same.pass());
  EXPECT_EQ(same.max_abs, 0);

  Difference d = compare(floats({2}, {nan, 1}), floats({2}, {1, 1}), 1, 1);
  EXPECT_EQ(d.mismatches, 1);
  EXPECT_TRUE(std::isinf(d.max_abs));
  EXPECT_EQ(compare(floats({1}, {1}), floats({1}, {nan}), 1, 1).mismatches, 1);
  EXPECT_EQ(compare(floats({1}, {inf}), floats({1}, {-inf}), 1, 1).mismatches, 1);
}

TEST(Compare, ShapeOrDtypeMismatchCountsEveryElement) {
  Difference d = compare(floats({2, 3}, {1, 2, 3, 4, 5, 6}), floats({3, 2}, {1, 2, 3, 4, 5, 6}), 1, 1);
  EXPECT_TRUE(d.shape_mismatch);
  EXPECT_FALSE(d.bitwise_equal);
  EXPECT_EQ(d.mismatches, 6);
  EXPECT_FALSE(d.pass());

  Difference t = compare(tensor_of<double>(DType::DOUBLE, {2}, {1, 2}), floats({2}, {1, 2}), 1, 1);
  EXPECT_TRUE(t.shape_mismatch);
  EXPECT_EQ(t.mismatches, 2);
}

TEST(Compare, HalfPrecisionIsComparedAsFloat) {
  // 1.5 vs 1.0 in float16, and the smallest subnormal against zero.
  Tensor a = tensor_of<uint16_t>(DType::FLOAT16, {2}, {0x3e00, 0x0001});
  Tensor e = tensor_of<uint16_t>(DType::FLOAT16, {2}, {0x3c00, 0x0000});
  Difference d = compare(a, e, 0, 0.1);
  EXPECT_DOUBLE_EQ(d.max_abs, 0.5);
  EXPECT_DOUBLE_EQ(d.max_rel, 0.5);
  EXPECT_EQ(d.mismatches, 1);
  EXPECT_NEAR(compare(tensor_of<uint16_t>(DType::FLOAT16, {1}, {0x0001}),
                      tensor_of<uint16_t>(DType::FLOAT16, {1}, {0x0000}), 0, 0)
                  .max_abs,
              5.960464477539063e-08, 1e-20);

  // bfloat16 1.0 (0x3f80) vs 2.0 (0x4000).
  Difference b = compare(tensor_of<uint16_t>(DType::BFLOAT16, {1}, {0x3f80}),
                         tensor_of<uint16_t>(DType::BFLOAT16, {1}, {0x4000}), 0, 0);
  EXPECT_DOUBLE_EQ(b.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(b.max_rel, 0.5);
}

TEST(Compare, IntegersAreComparedExactly) {
  Tensor e = tensor_of<int64_t>(DType::INT64, {2}, {1000000, -5});
  Tensor a = tensor_of<int64_t>(DType::INT64, {2}, {1000001, -5});
  Difference d = compare(a, e, 1e-3, 1e-3);  // a float within these tolerances would pass
  EXPECT_EQ(d.mismatches, 1);
  EXPECT_DOUBLE_EQ(d.max_abs, 1);
  // Values beyond 2^53 differ even where their doubles are equal.
  int64_t big = int64_t(1) << 60;
  EXPECT_EQ(
      compare(tensor_of<int64_t>(DType::INT64, {1}, {big + 1}), tensor_of<int64_t>(DType::INT64, {1}, {big}), 1, 1)
          .mismatches,
      1);
  EXPECT_EQ(
      compare(tensor_of<uint8_t>(DType::BOOL, {3}, {1, 0, 1}), tensor_of<uint8_t>(DType::BOOL, {3}, {1, 1, 1}), 1, 1)
          .mismatches,
      1);
}

TEST(Compare, StringsMustBeEqual) {
  Tensor a = make_tensor(DType::STRING, {2});
  a.strings = {"x", "y"};
  Tensor e = a;
  EXPECT_TRUE(compare(a, e, 0, 0).bitwise_equal);
  e.strings[1] = "z";
  Difference d = compare(a, e, 1, 1);
  EXPECT_EQ(d.mismatches, 1);
  EXPECT_FALSE(d.bitwise_equal);
}

TEST(CheckTensor, RejectsBuffersThatDoNotMatchTheShape) {
  EXPECT_NO_THROW(check_tensor("x", make_tensor(DType::FLOAT, {2, 3})));
  Tensor short_buffer = make_tensor(DType::FLOAT, {2, 3});
  short_buffer.data.resize(20);
  EXPECT_THROW(check_tensor("x", short_buffer), Error);
  Tensor negative;
  negative.dtype = DType::FLOAT;
  negative.shape = {-1};
  EXPECT_THROW(check_tensor("x", negative), Error);
  Tensor strings;
  strings.dtype = DType::STRING;
  strings.shape = {2};
  strings.strings = {"a"};
  try {
    check_tensor("s", strings);
    ADD_FAILURE() << "one string for two elements must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_STREQ(e.what(), "input 's': 1 strings for shape [2]");
  }
}

}  // namespace
}  // namespace onnxpipe
