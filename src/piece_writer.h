#pragma once
// Model I/O, part 6: one piece of a loaded model written as a valid ONNX model, behind Model::write_piece (see there).
// Owns where a piece's weight bytes go (borrowed, embedded from disk, pointed at in a linked source data file, or
// streamed into the piece's own data file) and the relocation of external tensors held in node attributes. A model-I/O
// file: its .cpp includes onnx headers.
#include <cstdint>
#include <string>

#include "model_impl.h"

namespace onnxpipe::detail {

int64_t write_model_piece(const Model::Impl& model, const PieceSpec& spec, const std::string& onnx_path);

}  // namespace onnxpipe::detail
