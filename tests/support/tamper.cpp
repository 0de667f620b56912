#include "support/tamper.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace onnxpipe::test {

namespace fs = std::filesystem;

namespace {

int count_pieces(const fs::path& dir) {
  int n = 0;
  while (fs::exists(dir / ("piece_" + std::to_string(n) + ".onnx"))) ++n;
  return n;
}

void shift(onnx::TensorProto& weight, float delta) {
  if (!weight.has_raw_data()) {
    for (int i = 0; i < weight.float_data_size(); ++i) weight.set_float_data(i, weight.float_data(i) + delta);
    return;
  }
  std::string raw = weight.raw_data();
  for (size_t at = 0; at + sizeof(float) <= raw.size(); at += sizeof(float)) {
    float value;
    std::memcpy(&value, raw.data() + at, sizeof value);
    value += delta;
    std::memcpy(raw.data() + at, &value, sizeof value);
  }
  weight.set_raw_data(raw);
}

}  // namespace

std::string shift_a_weight(const std::string& plan_dir, float delta) {
  for (int p = count_pieces(plan_dir) - 1; p >= 0; --p) {
    const fs::path piece = fs::path(plan_dir) / ("piece_" + std::to_string(p) + ".onnx");
    onnx::ModelProto proto;
    {
      std::ifstream in(piece, std::ios::binary);
      if (!proto.ParseFromIstream(&in)) throw std::runtime_error("cannot parse " + piece.string());
    }
    for (onnx::TensorProto& weight : *proto.mutable_graph()->mutable_initializer()) {
      if (weight.data_type() != onnx::TensorProto::FLOAT) continue;
      shift(weight, delta);
      std::ofstream out(piece, std::ios::binary | std::ios::trunc);
      if (!proto.SerializeToOstream(&out)) throw std::runtime_error("cannot write " + piece.string());
      return piece.string();
    }
  }
  throw std::runtime_error(plan_dir + ": no piece holds a float weight");
}

}  // namespace onnxpipe::test
