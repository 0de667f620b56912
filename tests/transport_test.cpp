// The transport's message header (src/transport.h): what every MPI message between ranks starts with.
#include "transport.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace onnxpipe::detail {
namespace {

TEST(TransportHeader, RoundTripsEveryFieldAndShapesOfAnyRank) {
  Header h;
  h.kind = MessageKind::FAILED;
  h.request = 1234567890123;
  h.stage = 3;
  h.run_us = 12.5;
  h.wire_us = 0.25;
  h.bytes_in = 99;
  h.code = ErrorCode::CANCELLED;
  h.text = std::string("a message with a \0 inside", 25);
  h.values = {{"x", DType::FLOAT, {1, 7, 4}, 112}, {"", DType::INT64, {}, 8}, {"/m/out:0", DType::UINT8, {0}, 0}};
  const Header back = decode_header(encode_header(h));
  EXPECT_EQ(back.kind, h.kind);
  EXPECT_EQ(back.request, h.request);
  EXPECT_EQ(back.stage, h.stage);
  EXPECT_EQ(back.run_us, h.run_us);
  EXPECT_EQ(back.wire_us, h.wire_us);
  EXPECT_EQ(back.bytes_in, h.bytes_in);
  EXPECT_EQ(back.code, h.code);
  EXPECT_EQ(back.text, h.text);
  ASSERT_EQ(back.values.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.values[i].name, h.values[i].name);
    EXPECT_EQ(back.values[i].dtype, h.values[i].dtype);
    EXPECT_EQ(back.values[i].shape, h.values[i].shape);
    EXPECT_EQ(back.values[i].bytes, h.values[i].bytes);
  }
}

TEST(TransportHeader, TruncatedOrTrailingBytesAreAnInternalError) {
  Header h;
  h.values = {{"x", DType::FLOAT, {2, 2}, 16}};
  const std::string bytes = encode_header(h);
  for (size_t n : {size_t(0), size_t(5), bytes.size() - 1}) {
    EXPECT_EQ(test::error_code_of([&] { decode_header(bytes.substr(0, n)); }), ErrorCode::INTERNAL) << n;
  }
  EXPECT_EQ(test::error_code_of([&] { decode_header(bytes + "x"); }), ErrorCode::INTERNAL);
}

}  // namespace
}  // namespace onnxpipe::detail
