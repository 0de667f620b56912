#include "runtime_memory.h"

#include <onnxruntime_session_options_config_keys.h>

#include <filesystem>

#include "measure.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "proto_stream.h"

namespace onnxpipe::detail {
namespace {

int64_t stat_of(const std::map<std::string, int64_t>& stats, const char* key) {
  const auto it = stats.find(key);
  return it == stats.end() ? -1 : it->second;
}

// The piece's large initializers, which a CPU dry run reads as zeros (SessionConfig::zero_initializers): the
// activations do not depend on their values, and the run then holds none of the piece's weights (GPT-2-XL's first
// piece: 1.9 GB). The small ones stay: they may hold shapes and indices.
std::vector<ValueDesc> large_initializers(const std::string& piece_path) {
  const Model piece = Model::load(piece_path);
  std::vector<ValueDesc> large;
  for (const auto& [name, weight] : piece.graph().weights)
    if (weight.constant_node < 0 && !weight.sparse && weight.dtype != DType::STRING &&
        weight.bytes > static_cast<int64_t>(kSmallTensorBytes))
      large.push_back(ValueDesc::of_shape(name, weight.dtype, weight.shape));
  return large;
}

}  // namespace

std::vector<RunMemory> measure_piece_memory(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                            const std::vector<SessionConfig>& configs,
                                            const std::map<std::string, Tensor>& inputs) {
  if (configs.size() != pieces.size())
    throw Error(ErrorCode::INTERNAL, "dry runs of " + std::to_string(pieces.size()) + " pieces with " +
                                         std::to_string(configs.size()) + " session configs");
  std::map<std::string, Value> pool;
  for (const auto& [name, tensor] : inputs) pool.emplace(name, Value::from_tensor(tensor));
  std::vector<RunMemory> measured;
  for (size_t k = 0; k < pieces.size(); ++k) {
    const PieceDesc& piece = pieces[k];
    try {
      const std::string path = (std::filesystem::path(dir) / piece.file).string();
      SessionConfig dry = configs[k];
      dry.session_options.emplace(kOrtSessionOptionsUseDeviceAllocatorForInitializers, "1");
      if (!parse_device(dry.device).is_cuda()) {
        dry.zero_initializers = large_initializers(path);
        // Packed copies of the zeros would be written: resident, and outside what the peak measures anyway.
        dry.session_options.emplace(kOrtSessionOptionsConfigDisablePrepacking, "1");
      }
      const Session session(path, dry);
      RunMemory memory;
      for (const ValueDesc& input : piece.inputs) {
        const auto it = pool.find(input.name);
        if (it != pool.end()) memory.inputs += it->second.byte_size();
      }
      memory.loaded = stat_of(session.memory_stats(), "InUse");
      run_on(session, pool);  // its outputs freed before the second run, as a stage's are once handed on
      std::map<std::string, Value> produced = run_on(session, pool);
      const int64_t peak = stat_of(session.memory_stats(), "MaxInUse");
      if (memory.loaded >= 0 && peak >= 0) memory.peak = std::max<int64_t>(0, peak - memory.loaded);
      for (auto& [name, value] : produced) pool[name] = std::move(value);
      measured.push_back(memory);
    } catch (const Error& error) {
      throw error.with_context("dry run of piece " + std::to_string(piece.index) + " (" + piece.file + ")");
    }
  }
  return measured;
}

}  // namespace onnxpipe::detail
