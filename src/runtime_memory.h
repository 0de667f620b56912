#pragma once
// What a piece's run holds, measured in ONNX Runtime: a dry run of each piece with the planned shapes, read from the
// session arena's statistics (the one allocator a session's activations come from, on CPU and on CUDA).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/plan.h"
#include "onnxpipe/tensor.h"
#include "runtime.h"

namespace onnxpipe::detail {

struct RunMemory {
  int64_t loaded = -1;  // arena bytes in use once loaded (prepacked weights, ...); -1: no arena statistics
  int64_t peak = -1;    // the arena's peak in use during the runs, above `loaded`: activations, outputs, scratch
  int64_t inputs = 0;   // bytes of the inputs the run was given (held by the caller: outside the arena on CPU)
  // What the stage holds for its activations while it runs: the peak, plus its inputs where they are outside the
  // arena (CPU). -1 when not measured.
  int64_t activations(bool cpu) const { return peak < 0 ? -1 : peak + (cpu ? inputs : 0); }
};

// Runs the pieces of `dir` one after the other as the pipeline chains them, one session at a time (piece k with
// configs[k]; the first on `inputs`, by name; each later one on what earlier ones made), each twice: the second run is
// the one that uses ORT's memory pattern, as every later run of a stage does. Weights are kept out of the arena for
// the dry run (session.use_device_allocator_for_initializers), so that what loading leaves in it cannot hide the
// run's peak; on CPU the large ones read as zeros that take no memory (SessionConfig::zero_initializers), unpacked, so
// that the dry runs hold no piece's weights. Errors name the piece.
std::vector<RunMemory> measure_piece_memory(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                            const std::vector<SessionConfig>& configs,
                                            const std::map<std::string, Tensor>& inputs);

}  // namespace onnxpipe::detail
