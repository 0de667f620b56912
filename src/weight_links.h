#pragma once
// Pieces that share the source's external data instead of copying it: each data file of the source is hard-linked
// into the plan directory once and the pieces' tensors point at their offsets in the link. A hard link, not a
// symlink: ONNX Runtime (1.29) refuses external data whose canonical path (symlinks resolved) leaves the model's
// folder, and absolute locations. No bytes are written, so a split of a 6 GB model costs no disk for its weights.
#include <filesystem>
#include <map>
#include <string>

#include "model_io.h"
#include "onnxpipe/split.h"

namespace onnxpipe::detail {

// The links made in `dir` (source data file as GraphDesc::data_files names it -> file name in dir); empty when the
// pieces copy their weights. AUTO without external data, or when a link fails (another filesystem, a file the user may
// not link), copies; a failed link is logged (WARN) and the links made so far are removed. LINK throws then:
// Error(USAGE) without external data, Error(IO) naming the file and why the link failed (argument() "weights").
// Error(USAGE) for LINK when the source has no external data: checked before any costly step of a split.
void check_weight_storage(const GraphDesc& graph, WeightStorage storage);

std::map<std::string, std::string> link_data_files(const GraphDesc& graph, WeightStorage storage,
                                                   const std::filesystem::path& dir);

}  // namespace onnxpipe::detail
