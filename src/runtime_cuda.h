#pragma once
// The CUDA side of the runtime pair (no ORT header here): the provider options a session gets, the CUDA runtime the
// provider loaded (reached with dlopen, so that onnxpipe links no CUDA library), and what ORT's node placement means
// for a CUDA session. The pure parts are separate functions so that they are tested without a device.
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace onnxpipe::detail {

// The CUDA provider's options for a session on cuda:`device_id`: onnxpipe's defaults, then `overrides` (the caller's
// provider options), then device_id (the device of the session wins over a device_id option). The one default:
// cudnn_conv_algo_search=HEURISTIC, since ORT's EXHAUSTIVE benchmarks every convolution algorithm again for each new
// input shape (every micro-batch remainder would pay for a search).
std::map<std::string, std::string> cuda_provider_options(int device_id,
                                                         const std::map<std::string, std::string>& overrides);

// Where ORT placed a session's nodes: recorded for CUDA sessions (and for any session whose options set
// session.record_ep_graph_assignment_info=1), empty otherwise.
struct Placement {
  std::map<std::string, int> nodes_per_provider;  // "CUDAExecutionProvider" -> 120, "CPUExecutionProvider" -> 9
  std::map<std::string, int> cpu_ops;             // op type -> nodes of that type on the CPU provider
  int cpu_nodes() const;
  int total_nodes() const;
};

// The warning for a CUDA session some of whose nodes run on the CPU provider (shape computations the CUDA provider
// leaves on the host on purpose, ops it has no kernel for): how many, of which types, and that the session option
// session.disable_cpu_ep_fallback=1 makes that an error. Empty when every node is on the device or nothing was
// recorded.
std::string placement_warning(const std::string& label, const Placement& placement);

// cudaGetDevice / cudaSetDevice, as the functions of the CUDA runtime are typed (0 = success).
using CudaGetDevice = int (*)(int*);
using CudaSetDevice = int (*)(int);
// Makes `device_id` the calling thread's current CUDA device unless it already is (a worker thread that serves one
// session sets it once, on its first run). False when either call failed.
bool make_current_device(int device_id, CudaGetDevice get_device, CudaSetDevice set_device);

// The same on the CUDA runtime the provider loaded; false when it is not loaded (no CUDA session yet) or failed.
bool cuda_make_current(int device_id);
// Free and total memory of the whole device (every process and every session on it, not one session's use), from
// the CUDA runtime the provider loaded: {free, total}, or {-1, -1} when it cannot be reached.
std::pair<int64_t, int64_t> cuda_device_memory(int device_id);

}  // namespace onnxpipe::detail
