#include "memory_probe.h"

#include <malloc.h>

#include <algorithm>

#include "log.h"
#include "onnxpipe/device.h"
#include "runtime.h"
#include "staging.h"

namespace onnxpipe::detail {

int64_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  malloc_trim(0);
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
#else
  return -1;
#endif
}

namespace {

constexpr int64_t kMinProbeBytes = int64_t(1) << 20;

// Heap a session of piece [position, position + 1) holds once loaded; -1 when it does not load.
int64_t session_heap(const Analysis& analysis, int position, const TempDir& dir, const SessionConfig& config) {
  const std::string path = (dir.path() / ("probe_" + std::to_string(position) + ".onnx")).string();
  analysis.model.write_piece(piece_spec(analysis, position, position + 1), path);
  try {
    const int64_t before = heap_in_use();
    Session session(path, config);
    return heap_in_use() - before;
  } catch (const Error& error) {
    log(LogLevel::DEBUG, "memory probe of node " + std::to_string(position) + ": " + error.what());
    return -1;
  }
}

}  // namespace

MemoryConstants measure_memory_constants(const Analysis& analysis, const std::string& device) {
  MemoryConstants constants;
  if (parse_device(device).is_cuda() || heap_in_use() < 0) return constants;
  const Graph& graph = analysis.graph;
  // Per op type, its node with the most weight bytes; and a node without weights for the session alone.
  std::map<std::string, std::pair<int64_t, int>> heaviest;
  int weightless = -1;
  for (int position = 0; position < graph.size(); ++position) {
    int64_t bytes = 0;
    for (const auto& name : graph.weights_read(position)) bytes += graph.desc().weights.at(name).bytes;
    const std::string& op = graph.desc().nodes[graph.order()[position]].op_type;
    if (bytes == 0 && weightless < 0) weightless = position;
    if (bytes > 0 && bytes > heaviest[op].first) heaviest[op] = {bytes, position};
  }
  TempDir dir("memory_probe");
  SessionConfig config;
  config.device = device;
  // The first session of a process also allocates ORT's globals: a throwaway one first, then the weighed ones.
  session_heap(analysis, weightless >= 0 ? weightless : 0, dir, config);
  int64_t base = weightless >= 0 ? session_heap(analysis, weightless, dir, config) : 0;
  if (base < 0) base = 0;
  constants.device = device;
  constants.session_overhead = base;
  for (const auto& [op, probe] : heaviest) {
    if (probe.first < kMinProbeBytes) continue;  // the heap's noise would swamp the factor: 1 it is
    const int64_t held = session_heap(analysis, probe.second, dir, config);
    if (held >= 0) constants.weight_factor[op] = std::max(1.0, double(held - base) / double(probe.first));
  }
  return constants;
}

}  // namespace onnxpipe::detail
