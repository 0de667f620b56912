#include "support/onnx_check.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "onnxpipe/error.h"

namespace onnxpipe::test {

namespace {

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::IO, path + ": cannot open");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in)) throw Error(ErrorCode::INVALID_MODEL, path + ": not an ONNX model or truncated");
  return model;
}

// Opset domains and versions onnx 1.12's schema registry knows.
bool opsets_known(const google::protobuf::RepeatedPtrField<onnx::OperatorSetIdProto>& opsets) {
  const auto& range = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  for (const auto& o : opsets) {
    const auto it = range.find(o.domain() == "ai.onnx" ? std::string() : o.domain());
    if (it != range.end() && o.version() > it->second.second) return false;
  }
  return true;
}

bool shapeless(const onnx::ValueInfoProto& v) {
  return v.type().has_tensor_type() && !v.type().tensor_type().has_shape();
}

}  // namespace

bool check_onnx_file(const std::string& onnx_path) {
  onnx::ModelProto model = read_model(onnx_path);
  if (model.ir_version() > onnx::IR_VERSION || !opsets_known(model.opset_import())) return false;
  for (const auto& f : model.functions())
    if (!opsets_known(f.opset_import())) return false;

  // onnx 1.12's checker demands a shape on every main-graph input and output, while the IR lets a value of unknown
  // rank go without one (pieces declare such crossing values that way). Such a model is checked through a copy, in
  // the same folder so that external data resolves, where those values carry an empty (never checked) shape.
  const auto& g = model.graph();
  const bool needs_copy = std::any_of(g.input().begin(), g.input().end(), shapeless) ||
                          std::any_of(g.output().begin(), g.output().end(), shapeless);
  std::string checked = onnx_path;
  if (needs_copy) {
    for (auto* values : {model.mutable_graph()->mutable_input(), model.mutable_graph()->mutable_output()})
      for (auto& v : *values)
        if (shapeless(v)) v.mutable_type()->mutable_tensor_type()->mutable_shape();
    checked = std::filesystem::path(onnx_path).parent_path().string();
    checked = (checked.empty() ? std::string(".") : checked) + "/.onnxpipe_check_XXXXXX";
    const int fd = ::mkstemp(checked.data());
    if (fd < 0) throw Error(ErrorCode::IO, checked + ": cannot create");
    ::close(fd);
    std::ofstream out(checked, std::ios::binary | std::ios::trunc);
    if (!model.SerializeToOstream(&out) || !out.flush()) {
      std::remove(checked.c_str());
      throw Error(ErrorCode::IO, checked + ": cannot write");
    }
  }
  std::optional<std::string> failure;
  try {
    onnx::checker::check_model(checked);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (needs_copy) std::remove(checked.c_str());
  if (failure) throw Error(ErrorCode::INVALID_MODEL, onnx_path + ": onnx checker: " + *failure);
  return true;
}

}  // namespace onnxpipe::test
