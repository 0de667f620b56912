#include "runtime.h"

#include <onnxruntime_cxx_api.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unordered_map>

#include "log.h"
#include "onnxpipe/error.h"
#include "runtime_profile.h"

namespace onnxpipe::detail {
namespace {

OrtLoggingLevel ort_log_level() {
  const char* level = std::getenv("ONNXPIPE_ORT_LOG");
  if (level && *level >= '0' && *level <= '4' && level[1] == '\0') return static_cast<OrtLoggingLevel>(*level - '0');
  return ORT_LOGGING_LEVEL_FATAL;
}

// One environment per process, created on first use (a second Ort::Env would return the first anyway).
Ort::Env& ort_env() {
  // ORT's own error lines would repeat what our Error already says; ONNXPIPE_ORT_LOG=0..4 (verbose..fatal) shows more.
  static Ort::Env env(ort_log_level(), "onnxpipe");
  return env;
}

using Clock = std::chrono::steady_clock;
double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

ONNXTensorElementDataType ort_type(DType dtype) {
  return static_cast<ONNXTensorElementDataType>(static_cast<int>(dtype));  // both follow TensorProto.DataType
}
DType our_type(ONNXTensorElementDataType type) { return static_cast<DType>(static_cast<int>(type)); }

const Ort::MemoryInfo& host_memory() {
  static const Ort::MemoryInfo info = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault);
  return info;
}

// An ORT tensor over a host tensor's bytes, no copy: `tensor` must outlive the value. Strings are copied into ORT.
Ort::Value wrap_tensor(const std::string& name, const Tensor& tensor) {
  check_tensor(name, tensor);
  if (tensor.dtype == DType::STRING) {
    Ort::AllocatorWithDefaultOptions allocator;
    Ort::Value value = Ort::Value::CreateTensor(allocator, tensor.shape.data(), tensor.shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    std::vector<const char*> items;
    items.reserve(tensor.strings.size());
    for (const std::string& s : tensor.strings) items.push_back(s.c_str());
    value.FillStringTensor(items.data(), items.size());
    return value;
  }
  // ORT never writes to inputs; an empty tensor still needs a non-null pointer.
  static uint8_t empty_buffer = 0;
  void* data = tensor.byte_size() == 0 ? &empty_buffer : const_cast<uint8_t*>(tensor.bytes());
  return Ort::Value::CreateTensor(host_memory(), data, tensor.byte_size(), tensor.shape.data(), tensor.shape.size(),
                                  ort_type(tensor.dtype));
}

// Device memory is a GPU device's DEFAULT memory; pinned memory ("CudaPinned": GPU, HOST_ACCESSIBLE) is host memory.
int location(const Ort::ConstMemoryInfo& info) {
  const bool device =
      info.GetDeviceType() == OrtMemoryInfoDeviceType_GPU && info.GetDeviceMemoryType() == OrtDeviceMemoryType_DEFAULT;
  return device ? info.GetDeviceId() : -1;
}

// Sequences, maps and optionals have no memory info of their own (ORT throws): onnxpipe keeps them on the host.
int value_device(const Ort::Value& value) { return value.IsTensor() ? location(value.GetTensorMemoryInfo()) : -1; }

bool is_sequence(const Ort::Value& value) { return value.GetTypeInfo().GetONNXType() == ONNX_TYPE_SEQUENCE; }

// The element of a sequence, as ORT hands it out (a value of its own).
Ort::Value sequence_item(const Ort::Value& sequence, size_t index) {
  Ort::AllocatorWithDefaultOptions allocator;
  return sequence.GetValue(static_cast<int>(index), allocator);
}

int64_t value_bytes(const Ort::Value& value) {
  if (!value.IsTensor()) {  // a sequence: its tensors' bytes; maps and optionals are not sized
    int64_t bytes = 0;
    if (is_sequence(value))
      for (size_t i = 0; i < value.GetCount(); ++i) bytes += value_bytes(sequence_item(value, i));
    return bytes;
  }
  const auto info = value.GetTensorTypeAndShapeInfo();
  return static_cast<int64_t>(info.GetElementCount() * dtype_size(our_type(info.GetElementType())));
}

// Copies a host ORT tensor out into a Tensor.
Tensor copy_out(const std::string& name, const Ort::Value& value) {
  if (!value.IsTensor())
    throw Error(ErrorCode::RUNTIME,
                "output '" + name + "' is " + (is_sequence(value) ? "a sequence" : "not a tensor") + ", not a tensor");
  if (value_device(value) >= 0) {
    throw Error(ErrorCode::RUNTIME, "output '" + name + "' is in device memory: bind it to the host to read it");
  }
  const auto info = value.GetTensorTypeAndShapeInfo();
  Tensor tensor;
  tensor.dtype = our_type(info.GetElementType());
  tensor.shape = info.GetShape();
  const size_t count = info.GetElementCount();
  if (tensor.dtype == DType::STRING) {
    tensor.strings.reserve(count);
    for (size_t i = 0; i < count; ++i) tensor.strings.push_back(value.GetStringTensorElement(i));
    return tensor;
  }
  const size_t bytes = count * dtype_size(tensor.dtype);
  tensor.data.resize(bytes);
  if (bytes) std::memcpy(tensor.data.data(), value.GetTensorRawData(), bytes);
  return tensor;
}

ValueDesc describe(const std::string& name, const Ort::TypeInfo& type) {
  ValueDesc desc;
  desc.name = name;
  if (type.GetONNXType() != ONNX_TYPE_TENSOR) return desc;
  const auto info = type.GetTensorTypeAndShapeInfo();
  desc.dtype = our_type(info.GetElementType());
  desc.has_shape = info.HasShape();
  if (!desc.has_shape) return desc;
  const std::vector<int64_t> shape = info.GetShape();
  const std::vector<const char*> symbols = info.GetSymbolicDimensions();
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    Dim dim;
    dim.value = shape[i];
    if (shape[i] < 0) {
      dim.value = -1;
      if (i < symbols.size() && symbols[i] && *symbols[i]) dim.param = symbols[i];
      count = -1;
    } else if (count >= 0) {
      count *= shape[i];
    }
    desc.dims.push_back(dim);
  }
  const size_t item = dtype_size(desc.dtype);
  desc.bytes = count >= 0 && item ? count * static_cast<int64_t>(item) : -1;
  return desc;
}

std::string profile_prefix() {
  static std::atomic<int> counter{0};
  return (std::filesystem::temp_directory_path() /
          ("onnxpipe_profile_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
      .string();
}

std::string affinities(const DeviceSpec& device) {
  // Thread 0 is the caller (pinned by pin_current_thread); ORT's threads 1..T-1 take the next cores, 1-based ids.
  std::string text;
  for (int i = 1; i < device.thread_count(); ++i) {
    if (i > 1) text += ";";
    text += std::to_string(device.cores[i % device.cores.size()] + 1);
  }
  return text;
}

const char* const kRecordPlacement = "session.record_ep_graph_assignment_info";

Ort::SessionOptions make_options(const SessionConfig& config, const DeviceSpec& device) {
  // The environment first: appending the CUDA provider loads it, which logs through the environment's logger; without
  // one, the first CUDA session of a process fails ("Attempt to use DefaultLogger but none has been registered").
  ort_env();
  Ort::SessionOptions options;
  GraphOptimizationLevel level = ORT_ENABLE_ALL;
  switch (config.optimization_level) {
    case 0:
      level = ORT_DISABLE_ALL;
      break;
    case 1:
      level = ORT_ENABLE_BASIC;
      break;
    case 2:
      level = ORT_ENABLE_EXTENDED;
      break;
    case 99:
      level = ORT_ENABLE_ALL;
      break;
    default:
      throw Error(ErrorCode::USAGE,
                  "optimization level " + std::to_string(config.optimization_level) + ": expected 0, 1, 2 or 99");
  }
  options.SetGraphOptimizationLevel(level);
  options.SetInterOpNumThreads(1);
  // Spinning threads steal the cores of the other stages.
  options.AddConfigEntry("session.intra_op.allow_spinning", "0");
  options.AddConfigEntry("session.inter_op.allow_spinning", "0");
  if (device.is_cuda()) {
    options.SetIntraOpNumThreads(1);
    const auto provider = cuda_provider_options(device.device_id, config.provider_options);
    Ort::CUDAProviderOptions cuda;
    cuda.Update(std::unordered_map<std::string, std::string>(provider.begin(), provider.end()));
    options.AppendExecutionProvider_CUDA_V2(*cuda);
    // The CUDA provider leaves shape computations on the CPU on purpose: let it (GPT-2 would not load otherwise), but
    // record where the nodes went so that the session can say how many run on the CPU.
    if (!config.session_options.count(kRecordPlacement)) options.AddConfigEntry(kRecordPlacement, "1");
  } else {
    if (!config.provider_options.empty()) {
      throw Error(ErrorCode::USAGE, "provider option '" + config.provider_options.begin()->first +
                                        "': provider options apply to cuda devices only");
    }
    options.SetIntraOpNumThreads(device.thread_count());
    if (!device.cores.empty() && device.thread_count() > 1) {
      options.AddConfigEntry("session.intra_op_thread_affinities", affinities(device).c_str());
    }
  }
  if (config.profiling) options.EnableProfiling(profile_prefix().c_str());
  if (!config.external_data_dir.empty()) {
    options.AddConfigEntry("session.model_external_initializers_file_folder_path", config.external_data_dir.c_str());
  }
  for (const auto& [key, value] : config.session_options) options.AddConfigEntry(key.c_str(), value.c_str());
  return options;
}

// Nodes per provider, and the op types of the nodes on the CPU provider, as ORT recorded them.
Placement read_placement(const Ort::Session& session) {
  Placement placement;
  for (const Ort::ConstEpAssignedSubgraph& subgraph : session.GetEpGraphAssignmentInfo()) {
    const std::string provider = subgraph.GetEpName();
    for (const Ort::ConstEpAssignedNode& node : subgraph.GetNodes()) {
      ++placement.nodes_per_provider[provider];
      if (provider == "CPUExecutionProvider") ++placement.cpu_ops[node.GetOperatorType()];
    }
  }
  return placement;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Value

struct Value::Impl {
  Tensor owned;                               // the bytes a host value wraps, when it owns them
  std::shared_ptr<Ort::Allocator> allocator;  // keeps the allocator of pinned memory alive as long as the value
  Ort::Value value{nullptr};
};

Value::Value() = default;
Value::~Value() = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(Value&&) noexcept = default;

Value Value::from_tensor(Tensor tensor) {
  Value result;
  result.impl_ = std::make_unique<Impl>();
  result.impl_->owned = std::move(tensor);
  try {
    result.impl_->value = wrap_tensor("value", result.impl_->owned);
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::RUNTIME, e.what());
  }
  if (result.impl_->owned.dtype == DType::STRING) result.impl_->owned.strings.clear();  // ORT holds its own copy
  return result;
}

Value Value::from_sequence(const TensorSequence& sequence) {
  if (sequence.tensors.empty())
    throw Error(ErrorCode::USAGE, "an empty sequence: ONNX Runtime cannot make one from values (no element type)");
  Value result;
  result.impl_ = std::make_unique<Impl>();
  try {
    // Each element in memory of ORT's own: the sequence owns all it holds, whatever ORT shares of its elements.
    Ort::AllocatorWithDefaultOptions allocator;
    std::vector<Ort::Value> items;
    for (size_t i = 0; i < sequence.tensors.size(); ++i) {
      const Tensor& tensor = sequence.tensors[i];
      const std::string name = "sequence element " + std::to_string(i);
      check_tensor(name, tensor);
      if (tensor.dtype != sequence.dtype)
        throw Error(ErrorCode::USAGE,
                    name + " is " + dtype_name(tensor.dtype) + ", the sequence " + dtype_name(sequence.dtype));
      if (tensor.dtype == DType::STRING) {
        items.push_back(wrap_tensor(name, tensor));  // strings are copied into ORT
        continue;
      }
      items.push_back(
          Ort::Value::CreateTensor(allocator, tensor.shape.data(), tensor.shape.size(), ort_type(tensor.dtype)));
      if (!tensor.data.empty())
        std::memcpy(items.back().GetTensorMutableRawData(), tensor.data.data(), tensor.data.size());
    }
    result.impl_->value = Ort::Value::CreateSequence(items);
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::RUNTIME, std::string("making a sequence: ") + e.what());
  }
  return result;
}

bool Value::empty() const { return !impl_ || !impl_->value; }

bool Value::is_sequence() const {
  try {
    return !empty() && detail::is_sequence(impl_->value);
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::RUNTIME, e.what());
  }
}

DType Value::dtype() const {
  if (!impl_->value.IsTensor()) return DType::UNDEFINED;
  return our_type(impl_->value.GetTensorTypeAndShapeInfo().GetElementType());
}

std::vector<int64_t> Value::shape() const {
  if (!impl_->value.IsTensor()) return {};
  return impl_->value.GetTensorTypeAndShapeInfo().GetShape();
}

int64_t Value::byte_size() const { return value_bytes(impl_->value); }

int Value::device_id() const { return value_device(impl_->value); }

const void* Value::data() const {
  return is_sequence() || dtype() == DType::STRING ? nullptr : impl_->value.GetTensorRawData();
}

Tensor Value::to_tensor() const {
  try {
    return copy_out("value", impl_->value);
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::RUNTIME, e.what());
  }
}

TensorSequence Value::to_sequence() const {
  try {
    if (!detail::is_sequence(impl_->value)) throw Error(ErrorCode::RUNTIME, "the value is not a sequence");
    TensorSequence sequence;
    for (size_t i = 0; i < impl_->value.GetCount(); ++i) {
      sequence.tensors.push_back(copy_out("sequence element " + std::to_string(i), sequence_item(impl_->value, i)));
      sequence.dtype = sequence.tensors.back().dtype;
    }
    return sequence;
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::RUNTIME, e.what());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// RunControl

struct RunControl::Impl {
  Ort::RunOptions options;
};

RunControl::RunControl() : impl_(std::make_unique<Impl>()) {}
RunControl::~RunControl() = default;
void RunControl::terminate() { impl_->options.SetTerminate(); }

// ---------------------------------------------------------------------------------------------------------------
// Session

struct Session::Impl {
  std::string label;
  DeviceSpec device;
  bool profiling = false;
  std::shared_ptr<void> zero_pages;  // config.zero_initializers: declared before the session, which outlives neither
  std::vector<Ort::Value> zeros;
  Ort::Session session{nullptr};
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  Ort::MemoryInfo device_memory{nullptr};  // CUDA: where outputs stay
  std::shared_ptr<Ort::Allocator> pinned;  // CUDA: pinned host memory for inputs, when the provider has it
  Ort::MemoryInfo pinned_memory{nullptr};  // CUDA: its description, where outputs for the host are bound
  Placement placement;

  std::optional<StageContext> stage;

  // An error of this session, named by the stage it serves or else by the model and device.
  Error attributed(const Error& e) const { return stage ? e.with_stage(*stage) : e.with_context(label); }
  Error ort_error(const Ort::Exception& e) const { return attributed(Error(ErrorCode::RUNTIME, e.what())); }

  void init(const SessionConfig& config, const std::string& model_label,
            const std::function<Ort::Session(const Ort::SessionOptions&)>& create) {
    device = parse_device(config.device);
    stage = config.stage;
    label = stage ? stage->label() : model_label + " (" + device.to_string() + ")";
    profiling = config.profiling;
    if (device.is_cuda() && !config.zero_initializers.empty())
      throw attributed(Error(ErrorCode::USAGE, "zero initializers are for CPU sessions only"));
    try {
      Ort::SessionOptions options = make_options(config, device);
      add_zero_initializers(config.zero_initializers, options);
      session = create(options);
      Ort::AllocatorWithDefaultOptions allocator;
      for (size_t i = 0; i < session.GetInputCount(); ++i) {
        input_names.push_back(session.GetInputNameAllocated(i, allocator).get());
      }
      for (size_t i = 0; i < session.GetOutputCount(); ++i) {
        output_names.push_back(session.GetOutputNameAllocated(i, allocator).get());
      }
      const auto record = config.session_options.find(kRecordPlacement);
      if (record == config.session_options.end() ? device.is_cuda() : record->second == "1") {
        try {
          placement = read_placement(session);
        } catch (const Ort::Exception& e) {
          log(LogLevel::DEBUG, label + ": node placement not recorded: " + e.what());
        }
      }
      if (device.is_cuda()) {
        device_memory = Ort::MemoryInfo("Cuda", OrtArenaAllocator, device.device_id, OrtMemTypeDefault);
        find_pinned_allocator();
      }
    } catch (const Ort::Exception& e) {
      throw ort_error(e);
    }
    if (device.is_cuda() && log_enabled(LogLevel::WARN)) {
      const std::string warning = placement_warning(label, placement);
      if (!warning.empty()) log(LogLevel::WARN, warning);
    }
  }

  // Shared initializers over one anonymous mapping that nothing writes (ORT never writes to initializers): reading
  // it maps the kernel's zero page, which counts in no process's resident memory.
  void add_zero_initializers(const std::vector<ValueDesc>& weights, Ort::SessionOptions& options) {
    if (weights.empty()) return;
    size_t largest = 1;
    for (const ValueDesc& weight : weights) largest = std::max(largest, static_cast<size_t>(weight.bytes));
    void* pages = mmap(nullptr, largest, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pages == MAP_FAILED)
      throw Error(ErrorCode::RUNTIME,
                  "mapping " + std::to_string(largest) + " bytes of zeros: " + std::strerror(errno));
    zero_pages = std::shared_ptr<void>(pages, [largest](void* p) { munmap(p, largest); });
    for (const ValueDesc& weight : weights) {
      const std::vector<int64_t> shape = weight.concrete_shape();
      zeros.push_back(Ort::Value::CreateTensor(host_memory(), pages, static_cast<size_t>(weight.bytes), shape.data(),
                                               shape.size(), ort_type(weight.dtype)));
      options.AddInitializer(weight.name.c_str(), zeros.back());
    }
  }

  // The provider's pinned host allocator, registered under this device's id or (in some ORT versions) under 0. Without
  // one, inputs go from and outputs come back to plain host memory.
  void find_pinned_allocator() {
    std::vector<int> ids = {device.device_id};
    if (device.device_id != 0) ids.push_back(0);
    for (int id : ids) {
      try {
        Ort::MemoryInfo info("CudaPinned", OrtDeviceAllocator, id, OrtMemTypeCPUOutput);
        pinned = std::make_shared<Ort::Allocator>(session, info);
        pinned_memory = std::move(info);
        return;
      } catch (const Ort::Exception&) {
        // not under this id
      }
    }
  }

  // Where outputs that leave the device are bound: pinned memory (the copy from the device runs at full speed and
  // lands where to_tensor() copies it from once), else plain host memory.
  const OrtMemoryInfo* host_output_memory() const {
    return pinned ? static_cast<const OrtMemoryInfo*>(pinned_memory) : static_cast<const OrtMemoryInfo*>(host_memory());
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Session::Session(const std::string& model_path, const SessionConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->init(config, model_path,
              [&](const Ort::SessionOptions& options) { return Ort::Session(ort_env(), model_path.c_str(), options); });
}

Session Session::from_bytes(const std::string& model_bytes, const SessionConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->init(config, "model bytes", [&](const Ort::SessionOptions& options) {
    return Ort::Session(ort_env(), model_bytes.data(), model_bytes.size(), options);
  });
  return Session(std::move(impl));
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::vector<ValueDesc> Session::inputs() const {
  std::vector<ValueDesc> result;
  try {
    for (size_t i = 0; i < impl_->input_names.size(); ++i) {
      result.push_back(describe(impl_->input_names[i], impl_->session.GetInputTypeInfo(i)));
    }
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  }
  return result;
}

std::vector<ValueDesc> Session::outputs() const {
  std::vector<ValueDesc> result;
  try {
    for (size_t i = 0; i < impl_->output_names.size(); ++i) {
      result.push_back(describe(impl_->output_names[i], impl_->session.GetOutputTypeInfo(i)));
    }
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  }
  return result;
}

std::set<std::string> Session::sequence_values() const {
  std::set<std::string> names;
  try {
    for (size_t i = 0; i < impl_->input_names.size(); ++i)
      if (impl_->session.GetInputTypeInfo(i).GetONNXType() == ONNX_TYPE_SEQUENCE) names.insert(impl_->input_names[i]);
    for (size_t i = 0; i < impl_->output_names.size(); ++i)
      if (impl_->session.GetOutputTypeInfo(i).GetONNXType() == ONNX_TYPE_SEQUENCE) names.insert(impl_->output_names[i]);
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  }
  return names;
}

const DeviceSpec& Session::device() const { return impl_->device; }
const std::string& Session::label() const { return impl_->label; }
const Placement& Session::placement() const { return impl_->placement; }

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs,
                                           const std::vector<std::string>& outputs) const {
  const std::vector<std::string>& wanted = outputs.empty() ? impl_->output_names : outputs;
  std::vector<const char*> input_names, output_names;
  std::vector<Ort::Value> values;
  std::map<std::string, Tensor> result;
  try {
    for (const auto& [name, tensor] : inputs) {
      input_names.push_back(name.c_str());
      values.push_back(wrap_tensor(name, tensor));
    }
    for (const std::string& name : wanted) output_names.push_back(name.c_str());
    if (impl_->device.is_cuda()) {
      // Outputs bound to (pinned) host memory: ORT copies them back once, at the end of the run.
      cuda_make_current(impl_->device.device_id);  // the copies of BindInput run on the current device
      Ort::IoBinding binding(impl_->session);
      for (size_t i = 0; i < values.size(); ++i) binding.BindInput(input_names[i], values[i]);
      for (const char* name : output_names) binding.BindOutput(name, impl_->host_output_memory());
      impl_->session.Run(Ort::RunOptions{}, binding);
      std::vector<Ort::Value> out = binding.GetOutputValues();
      for (size_t i = 0; i < out.size(); ++i) result[wanted[i]] = copy_out(wanted[i], out[i]);
      return result;
    }
    std::vector<Ort::Value> out = impl_->session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(),
                                                     values.size(), output_names.data(), output_names.size());
    for (size_t i = 0; i < out.size(); ++i) result[wanted[i]] = copy_out(wanted[i], out[i]);
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  } catch (const Error& e) {
    throw impl_->attributed(e);
  }
  return result;
}

std::vector<std::map<std::string, double>> Session::profile_node_runs(const std::map<std::string, Tensor>& inputs,
                                                                      int runs) {
  if (!impl_->profiling) {
    throw Error(ErrorCode::USAGE, impl_->label + ": profile_node_runs needs a session made with profiling on");
  }
  if (runs < 1) throw Error(ErrorCode::USAGE, impl_->label + ": profile_node_runs needs runs >= 1");
  for (int i = 0; i <= runs; ++i) run(inputs);
  std::string path;
  try {
    Ort::AllocatorWithDefaultOptions allocator;
    path = impl_->session.EndProfilingAllocated(allocator).get();
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  }
  impl_->profiling = false;  // ORT stops profiling the session once its trace is written
  std::vector<std::map<std::string, double>> times;
  try {
    times = node_runs_from_trace(path);
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
  std::filesystem::remove(path);
  return times;
}

Value Session::make_input(Tensor tensor, CopyStat* copy) const {
  if (!impl_->pinned || tensor.dtype == DType::STRING) return Value::from_tensor(std::move(tensor));
  check_tensor("value", tensor);
  const auto start = Clock::now();
  Value result;
  result.impl_ = std::make_unique<Value::Impl>();
  result.impl_->allocator = impl_->pinned;
  try {
    result.impl_->value =
        Ort::Value::CreateTensor(*impl_->pinned, tensor.shape.data(), tensor.shape.size(), ort_type(tensor.dtype));
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  }
  if (tensor.byte_size()) {
    std::memcpy(result.impl_->value.GetTensorMutableRawData(), tensor.bytes(), tensor.byte_size());
  }
  if (copy) {
    copy->path = CopyPath::HOST;
    copy->bytes += static_cast<int64_t>(tensor.byte_size());
    copy->us += micros_since(start);
  }
  return result;
}

std::vector<Value> Session::run_values(const std::vector<std::string>& input_names,
                                       const std::vector<const Value*>& inputs,
                                       const std::vector<std::string>& output_names, const std::vector<bool>& to_host,
                                       RunControl* control, RunRecord* record) const {
  if (input_names.size() != inputs.size() || (!to_host.empty() && to_host.size() != output_names.size())) {
    throw Error(ErrorCode::INTERNAL, impl_->label + ": run_values: mismatched name and value counts");
  }
  std::vector<const char*> in_names, out_names;
  for (const std::string& name : input_names) in_names.push_back(name.c_str());
  for (const std::string& name : output_names) out_names.push_back(name.c_str());
  static const Ort::RunOptions default_options;
  const Ort::RunOptions& options = control ? control->impl_->options : default_options;
  RunRecord local;
  RunRecord& rec = record ? *record : local;
  std::vector<Value> result(output_names.size());
  try {
    if (!impl_->device.is_cuda()) {
      // CPU: ORT reads the inputs where they are (host memory, pinned included) and hands its outputs over: no copy.
      std::vector<const OrtValue*> in_values;
      for (size_t i = 0; i < inputs.size(); ++i) {
        check_host_input(input_names[i], value_device(inputs[i]->impl_->value));
        in_values.push_back(inputs[i]->impl_->value);
      }
      std::vector<OrtValue*> out_values(output_names.size(), nullptr);
      const auto start = Clock::now();
      Ort::ThrowOnError(Ort::GetApi().Run(impl_->session, options, in_names.data(), in_values.data(), in_values.size(),
                                          out_names.data(), out_names.size(), out_values.data()));
      rec.run_us += micros_since(start);
      for (size_t i = 0; i < out_values.size(); ++i) {
        result[i].impl_ = std::make_unique<Value::Impl>();
        result[i].impl_->value = Ort::Value(out_values[i]);
      }
      return result;
    }

    // CUDA: inputs bound where they live (ORT copies host or other-device values into this device while binding);
    // outputs bound to this device's memory, or to (pinned) host memory for the values that leave the device.
    // The copies of BindInput run on the calling thread's current device, and the synchronisation after them is a
    // cudaDeviceSynchronize of that device: make it this session's device (ORT sets it only once Run starts).
    cuda_make_current(impl_->device.device_id);
    Ort::IoBinding binding(impl_->session);
    auto start = Clock::now();
    bool copied = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Ort::Value& value = inputs[i]->impl_->value;
      const int where = value_device(value);
      if (where != impl_->device.device_id) {
        const CopyPath path = where < 0 ? CopyPath::H2D : CopyPath::D2D;
        rec.copy_in.path = std::max(rec.copy_in.path, path);
        rec.copy_in.bytes += value_bytes(value);
        copied = true;
      }
      binding.BindInput(in_names[i], value);
    }
    // Values already on this device were finished by their producer's Run (it syncs its stream at the end): only a
    // copy made here needs waiting for.
    if (copied) binding.SynchronizeInputs();
    rec.copy_in.us += micros_since(start);
    for (size_t i = 0; i < out_names.size(); ++i) {
      if (to_host.empty() || to_host[i]) {
        binding.BindOutput(out_names[i], impl_->host_output_memory());
      } else {
        binding.BindOutput(out_names[i], impl_->device_memory);
      }
    }
    start = Clock::now();
    impl_->session.Run(options, binding);
    rec.run_us += micros_since(start);
    std::vector<Ort::Value> out = binding.GetOutputValues();
    for (size_t i = 0; i < out.size(); ++i) {
      if (to_host.empty() || to_host[i]) {
        rec.copy_out.path = CopyPath::D2H;
        rec.copy_out.bytes += value_bytes(out[i]);
      }
      result[i].impl_ = std::make_unique<Value::Impl>();
      result[i].impl_->value = std::move(out[i]);
    }
  } catch (const Ort::Exception& e) {
    throw impl_->ort_error(e);
  } catch (const Error& e) {
    throw impl_->attributed(e);
  }
  return result;
}

std::map<std::string, int64_t> Session::memory_stats() const {
  std::map<std::string, int64_t> stats;
  try {
    const Ort::MemoryInfo info =
        impl_->device.is_cuda() ? Ort::MemoryInfo("Cuda", OrtArenaAllocator, impl_->device.device_id, OrtMemTypeDefault)
                                : Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Ort::Allocator allocator(impl_->session, info);
    for (const auto& [key, value] : allocator.GetStats().GetKeyValuePairs()) {
      try {
        stats[key] = std::stoll(value);
      } catch (const std::exception&) {
        // a statistic that is not a number: not one we report
      }
    }
  } catch (const Ort::Exception&) {
    // no allocator for this memory in the session (arena off): no statistics
  }
  if (impl_->device.is_cuda()) {
    const auto [free_bytes, total_bytes] = cuda_device_memory(impl_->device.device_id);
    if (total_bytes >= 0) {
      stats["device_free_bytes"] = free_bytes;
      stats["device_total_bytes"] = total_bytes;
    }
  }
  return stats;
}

int memory_location(const std::string& ort_memory_name, int id) {
  try {
    return location(Ort::MemoryInfo(ort_memory_name.c_str(), OrtDeviceAllocator, id, OrtMemTypeDefault).GetConst());
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::USAGE, "memory '" + ort_memory_name + "': " + e.what());
  }
}

void check_host_input(const std::string& name, int device_id) {
  if (device_id < 0) return;
  throw Error(ErrorCode::USAGE, "input '" + name + "' is in device memory of cuda:" + std::to_string(device_id) +
                                    ": a CPU session reads host memory only");
}

std::string ort_version() { return OrtGetApiBase()->GetVersionString(); }

std::vector<std::string> available_providers() { return Ort::GetAvailableProviders(); }

}  // namespace onnxpipe::detail
