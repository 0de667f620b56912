#include "runtime_cuda.h"

#include <dlfcn.h>

#include <cstddef>
#include <mutex>

namespace onnxpipe::detail {

std::map<std::string, std::string> cuda_provider_options(int device_id,
                                                         const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> options = {{"cudnn_conv_algo_search", "HEURISTIC"}};
  for (const auto& [key, value] : overrides) options[key] = value;
  options["device_id"] = std::to_string(device_id);
  return options;
}

int Placement::cpu_nodes() const {
  const auto it = nodes_per_provider.find("CPUExecutionProvider");
  return it == nodes_per_provider.end() ? 0 : it->second;
}

int Placement::total_nodes() const {
  int total = 0;
  for (const auto& [provider, nodes] : nodes_per_provider) total += nodes;
  return total;
}

std::string placement_warning(const std::string& label, const Placement& placement) {
  const int cpu = placement.cpu_nodes();
  if (cpu == 0) return "";
  std::string ops;
  for (const auto& [op, count] : placement.cpu_ops) {
    ops += (ops.empty() ? "" : ", ") + op + " x" + std::to_string(count);
  }
  return label + ": " + std::to_string(cpu) + " of " + std::to_string(placement.total_nodes()) +
         " nodes run on the CPU (" + ops +
         "), their values copied between host and device; session option session.disable_cpu_ep_fallback=1 makes "
         "this an error";
}

bool make_current_device(int device_id, CudaGetDevice get_device, CudaSetDevice set_device) {
  int current = -1;
  if (get_device(&current) != 0) return false;
  return current == device_id || set_device(device_id) == 0;
}

namespace {

using MemGetInfo = int (*)(size_t*, size_t*);

struct CudaRuntime {
  CudaGetDevice get_device = nullptr;
  CudaSetDevice set_device = nullptr;
  MemGetInfo mem_get_info = nullptr;
};

// The CUDA runtime the provider loaded, looked up until it is found (it is loaded with the first CUDA session), then
// kept. Never loads it: RTLD_NOLOAD.
const CudaRuntime* cuda_runtime() {
  static std::mutex mutex;
  static CudaRuntime runtime;
  static bool found = false;
  std::lock_guard<std::mutex> lock(mutex);
  if (found) return &runtime;
  for (const char* name : {"libcudart.so.13", "libcudart.so.12", "libcudart.so"}) {
    void* library = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
    if (!library) continue;
    runtime.get_device = reinterpret_cast<CudaGetDevice>(dlsym(library, "cudaGetDevice"));
    runtime.set_device = reinterpret_cast<CudaSetDevice>(dlsym(library, "cudaSetDevice"));
    runtime.mem_get_info = reinterpret_cast<MemGetInfo>(dlsym(library, "cudaMemGetInfo"));
    if (runtime.get_device && runtime.set_device && runtime.mem_get_info) {
      found = true;  // the handle stays open: the provider keeps the library loaded anyway
      return &runtime;
    }
    dlclose(library);
  }
  return nullptr;
}

}  // namespace

bool cuda_make_current(int device_id) {
  const CudaRuntime* cuda = cuda_runtime();
  return cuda && make_current_device(device_id, cuda->get_device, cuda->set_device);
}

std::pair<int64_t, int64_t> cuda_device_memory(int device_id) {
  const CudaRuntime* cuda = cuda_runtime();
  if (!cuda) return {-1, -1};
  int previous = 0;
  if (cuda->get_device(&previous) != 0 || cuda->set_device(device_id) != 0) return {-1, -1};
  std::pair<int64_t, int64_t> result{-1, -1};
  size_t free_bytes = 0, total_bytes = 0;
  if (cuda->mem_get_info(&free_bytes, &total_bytes) == 0) {
    result = {static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
  }
  cuda->set_device(previous);
  return result;
}

}  // namespace onnxpipe::detail
