#pragma once
// ONNX Runtime, behind plain types: the only file pair that includes ORT headers. Sessions on a device, runs on host
// tensors, per-node profiling, and the device-resident values the pipeline hands from stage to stage.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/sequence.h"
#include "onnxpipe/stage_timing.h"
#include "onnxpipe/tensor.h"
#include "runtime_cuda.h"

namespace onnxpipe::detail {

struct SessionConfig {
  std::string device = "cpu";     // cpu | cpu:T | cpu:T@C0-C1 | cuda:K (parse_device)
  int optimization_level = 99;    // 0 none, 1 basic, 2 extended, 99 all
  std::string external_data_dir;  // for sessions made from bytes: where external data locations are resolved
  bool profiling = false;
  // Passed through as session config entries. A CUDA session lets ORT run what the CUDA provider leaves aside (shape
  // computations, ops without a CUDA kernel) on the CPU and warns how many nodes that is (Session::placement());
  // session.disable_cpu_ep_fallback=1 makes that an error instead.
  std::map<std::string, std::string> session_options;
  // Passed through to the execution provider, over onnxpipe's defaults (cuda_provider_options).
  std::map<std::string, std::string> provider_options;
  // Initializers of the model (name, dtype, concrete shape) that read as zeros instead, from one mapping of pages never
  // written: they add no resident memory. For dry runs, whose activation peak does not depend on the weights' values.
  // CPU sessions only (Error(USAGE) otherwise): ORT uses such shared initializers where they lie.
  std::vector<ValueDesc> zero_initializers;
  // A pipeline stage's session: its errors carry the stage (Error::stage()) and are named by its label.
  std::optional<StageContext> stage;
};

// A tensor owned by ONNX Runtime, in host or device memory: moved between stages without copying. Move-only.
class Value {
 public:
  Value();
  ~Value();
  Value(Value&&) noexcept;
  Value& operator=(Value&&) noexcept;

  // Wraps a host tensor without copying its bytes (the Value keeps the tensor alive). Strings are copied into ORT.
  static Value from_tensor(Tensor tensor);
  // An ORT sequence (ONNX_TYPE_SEQUENCE) of copies of the tensors, in host memory. Error(USAGE) for an empty one (ORT
  // makes sequences of one or more values only) or an element of another dtype than the sequence's.
  static Value from_sequence(const TensorSequence& sequence);

  bool empty() const;
  bool is_sequence() const;
  DType dtype() const;                 // UNDEFINED for a sequence (or another non-tensor)
  std::vector<int64_t> shape() const;  // empty for a sequence
  int64_t byte_size() const;           // 0 for strings; a sequence: its tensors' bytes
  int device_id() const;     // -1: host memory (plain or pinned); K: device memory of cuda:K (memory_location)
  const void* data() const;  // a tensor's bytes where they are (device_id() says in which memory); nullptr for strings
                             // and sequences
  // A host copy. Throws Error(RUNTIME) for a value in device memory (bind it to the host when running instead).
  Tensor to_tensor() const;
  // A host copy of a sequence's tensors; Error(RUNTIME) for a value that is not a sequence.
  TensorSequence to_sequence() const;

 private:
  friend class Session;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lets another thread cancel a run in progress (ORT's RunOptions terminate flag). One per worker, reused.
class RunControl {
 public:
  RunControl();
  ~RunControl();
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;
  void terminate();  // the current and every later run with this control fails

 private:
  friend class Session;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What one run_values call did. On CUDA, copies to the host of outputs bound to host (pinned) memory happen inside
// the run: their bytes are in copy_out, their time in run_us.
struct RunRecord {
  CopyStat copy_in;
  double run_us = 0;
  CopyStat copy_out;
};

class Session {
 public:
  // Throws Error(RUNTIME) with ORT's message, prefixed with the model path and device; Error(USAGE) for a bad device.
  Session(const std::string& model_path, const SessionConfig& config);
  static Session from_bytes(const std::string& model_bytes, const SessionConfig& config);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  std::vector<ValueDesc> inputs() const;  // as ORT reports them (symbolic dims by name, unknown -1)
  std::vector<ValueDesc> outputs() const;
  // The inputs and outputs that are sequences (ONNX_TYPE_SEQUENCE): their ValueDesc says only "not a tensor", as it
  // does for optionals and maps.
  std::set<std::string> sequence_values() const;
  const DeviceSpec& device() const;
  const std::string& label() const;  // config.stage's label, else "<model> (<device>)"
  // Where ORT placed the nodes (recorded for CUDA sessions; for others when session_options ask for it). A CUDA
  // session with nodes on the CPU logs placement_warning() when it is created.
  const Placement& placement() const;

  // Runs on host tensors; `outputs` empty means every output. Thread-safe like ORT's Run.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const std::vector<std::string>& outputs = {}) const;

  // Needs config.profiling: one warm-up run (dropped) then `runs` runs; returns per run the microseconds per node name.
  // Ends the session's profiling: call it once per session.
  std::vector<std::map<std::string, double>> profile_node_runs(const std::map<std::string, Tensor>& inputs, int runs);

  // A host tensor as an input value for this session: wrapped without copying on CPU; copied into pinned host
  // memory on CUDA (so that the copy to the device is fast). `copy` gets that host copy, if any.
  Value make_input(Tensor tensor, CopyStat* copy = nullptr) const;

  // Runs on values. inputs[i] feeds input_names[i]. On CUDA, outputs stay in this device's memory unless
  // to_host[i] (to_host empty: all on the host), and outputs for the host land in pinned memory when the provider has
  // a pinned allocator (to_tensor() then copies them once); on CPU they are always host values. Inputs in other
  // memory are copied by ORT (host to device, device to device), counted in record->copy_in; the device is
  // synchronised only after such a copy. A CPU session rejects inputs in device memory: Error(USAGE). The calling
  // thread's current CUDA device is set to this session's device when it is not already. Thread-safe; `control`
  // (optional) lets another thread cancel the run.
  std::vector<Value> run_values(const std::vector<std::string>& input_names, const std::vector<const Value*>& inputs,
                                const std::vector<std::string>& output_names, const std::vector<bool>& to_host = {},
                                RunControl* control = nullptr, RunRecord* record = nullptr) const;

  // Allocator statistics of the session's own arena in its device's memory (ORT's names: Limit, InUse, MaxInUse,
  // TotalAllocated, NumAllocs, ...; empty when the arena is off): every CUDA session has its own arena, with the
  // gpu_mem_limit provider option as its Limit. On CUDA also device_free_bytes / device_total_bytes when the CUDA
  // runtime can be reached: those are the whole device's (every process and session on it), not this session's use.
  std::map<std::string, int64_t> memory_stats() const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where ORT's memory named `ort_memory_name` ("Cpu", "Cuda", "CudaPinned") on device `id` is, as Value::device_id()
// tells it: K for device memory of cuda:K (a GPU device with ORT's DEFAULT memory type), -1 for host memory. Pinned
// memory is host memory: ORT gives it the GPU device type with the HOST_ACCESSIBLE memory type and reads it as CPU
// memory (OrtDevice::UsesCpuMemory). The classification of device_id(), applied to a memory description made by
// name, so that it can be checked without a device.
int memory_location(const std::string& ort_memory_name, int id);

// What a CPU session checks of each input before ORT reads it: Error(USAGE) naming the input when it is in device
// memory (device_id >= 0), since ORT would read a device pointer from the host.
void check_host_input(const std::string& name, int device_id);

std::string ort_version();
std::vector<std::string> available_providers();

}  // namespace onnxpipe::detail
