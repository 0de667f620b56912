#pragma once
// Model I/O, part 3: what Model::load keeps (Model::Impl: the parsed ModelProto, its plain description, where its
// weight bytes lie on disk), shared by the model-I/O files that read it: shape inference, serialization, piece
// writing. Like them it may include onnx headers.
#include <onnx/onnx_pb.h>
#include <sys/stat.h>

#include <optional>
#include <string>
#include <unordered_map>

#include "model_io.h"
#include "onnx_proto.h"
#include "proto_stream.h"

namespace onnxpipe::detail {

struct Model::Impl {
  onnx::ModelProto model;
  GraphDesc desc;
  std::string dir;  // external data locations are relative to it
  std::unordered_map<std::string, const onnx::TensorProto*> initializers;
  std::unordered_map<std::string, const onnx::SparseTensorProto*> sparse_initializers;
  DeferredRanges deferred;  // large raw_data fields left in the model file
  struct stat file_stat {};
  // Sequences, optionals, maps: ValueDesc cannot carry them, so pieces that pass them on copy these types (filled by
  // shape inference).
  mutable std::unordered_map<std::string, onnx::TypeProto> non_tensor_types;

  // Error(IO) when raw_data was left in the model file and the file has changed since it was loaded.
  void check_unchanged() const;
  // Where the tensor's data lives on disk (an external file, or the model file itself); nullopt when in memory.
  std::optional<FileRange> stored_range(const onnx::TensorProto& t) const;
  // The range of an initializer's raw_data left in the model file when loading; nullopt when in memory.
  std::optional<FileRange> deferred_range(const std::string& initializer) const;
  // Bytes of an external tensor's data (its length entry, else its size by type); its reference in *ref.
  int64_t external_length(const onnx::TensorProto& t, ExternalRef* ref) const;
};

}  // namespace onnxpipe::detail
