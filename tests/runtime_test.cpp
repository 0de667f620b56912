// The ORT wrapper: sessions on devices, runs on host tensors and on values, profiling, device strings.
#include "runtime.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "onnxpipe/error.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

// ONNX Runtime keeps one small allocation (14 bytes, made while creating the first session) to the end of the process;
// LeakSanitizer, in the AddressSanitizer build, reports it. It is ORT's, not ours: suppress that library only.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;

void add_value(onnx::ValueInfoProto* info, const std::string& name, int elem_type,
               const std::vector<std::string>& dims) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* shape = tensor->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

void add_node(onnx::GraphProto* graph, const std::string& op, const std::string& name,
              const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  auto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(name);
  for (const auto& i : inputs) node->add_input(i);
  for (const auto& o : outputs) node->add_output(o);
}

onnx::ModelProto new_model() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(13);
  model.mutable_graph()->set_name("g");
  return model;
}

void save(const onnx::ModelProto& model, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(model.SerializeToOstream(&out));
}

// z = x + y; w = z * y, x and y float [batch, 3].
onnx::ModelProto add_mul_model() {
  onnx::ModelProto model = new_model();
  auto* g = model.mutable_graph();
  add_value(g->add_input(), "x", onnx::TensorProto::FLOAT, {"batch", "3"});
  add_value(g->add_input(), "y", onnx::TensorProto::FLOAT, {"batch", "3"});
  add_node(g, "Add", "add0", {"x", "y"}, {"z"});
  add_node(g, "Mul", "mul0", {"z", "y"}, {"w"});
  add_value(g->add_output(), "z", onnx::TensorProto::FLOAT, {"batch", "3"});
  add_value(g->add_output(), "w", onnx::TensorProto::FLOAT, {"batch", "3"});
  return model;
}

Tensor floats(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t = make_tensor(DType::FLOAT, std::move(shape));
  EXPECT_EQ(t.data.size(), values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<float> values_of(const Tensor& t) {
  return std::vector<float>(t.as<float>(), t.as<float>() + t.element_count());
}

SessionConfig cpu1() {
  SessionConfig config;
  config.device = "cpu:1";
  return config;
}

TEST(Runtime, RunsAddMulModelOnHostTensors) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  const auto out = session.run({{"x", floats({2, 3}, {1, 2, 3, 4, 5, 6})}, {"y", floats({2, 3}, {1, 1, 1, 2, 2, 2})}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.at("z").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values_of(out.at("z")), (std::vector<float>{2, 3, 4, 6, 7, 8}));
  EXPECT_EQ(values_of(out.at("w")), (std::vector<float>{2, 3, 4, 12, 14, 16}));

  const auto only_w = session.run({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {2, 2, 2})}}, {"w"});
  ASSERT_EQ(only_w.size(), 1u);
  EXPECT_EQ(values_of(only_w.at("w")), (std::vector<float>{6, 8, 10}));
}

TEST(Runtime, DescribesInputsWithSymbolicDims) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  const auto inputs = session.inputs();
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].name, "x");
  EXPECT_EQ(inputs[0].dtype, DType::FLOAT);
  ASSERT_TRUE(inputs[0].has_shape);
  ASSERT_EQ(inputs[0].dims.size(), 2u);
  EXPECT_EQ(inputs[0].dims[0], (Dim{-1, "batch"}));
  EXPECT_EQ(inputs[0].dims[1], (Dim{3, ""}));
  const auto outputs = session.outputs();
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[1].name, "w");
}

TEST(Runtime, ProfilingReturnsATimeForEveryNodeInEveryRun) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  SessionConfig config = cpu1();
  config.profiling = true;
  config.optimization_level = 0;
  Session session(dir.file("m.onnx"), config);
  const auto runs = session.profile_node_runs({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {1, 1, 1})}}, 5);
  ASSERT_EQ(runs.size(), 5u);  // the warm-up dropped
  for (const auto& times : runs) {
    ASSERT_EQ(times.size(), 2u);
    EXPECT_TRUE(times.count("add0"));
    EXPECT_TRUE(times.count("mul0"));
    for (const auto& [node, us] : times) EXPECT_GE(us, 0.0) << node;
  }
  // The trace file is gone.
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path())) {
    EXPECT_EQ(entry.path().filename().string().find("onnxpipe_profile_" + std::to_string(getpid()) + "_"),
              std::string::npos);
  }
}

TEST(Runtime, ProfilingNeedsAProfilingSession) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  try {
    session.profile_node_runs({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {1, 1, 1})}}, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
  }
}

TEST(Runtime, BadInputErrorNamesModelAndDevice) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  try {
    session.run({{"x", floats({3, 2}, {1, 2, 3, 4, 5, 6})}, {"y", floats({3, 2}, {1, 2, 3, 4, 5, 6})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
    const std::string message = e.what();
    EXPECT_NE(message.find(dir.file("m.onnx") + " (cpu:1): "), std::string::npos) << message;
  }
}

TEST(Runtime, ShortTensorBufferIsRejectedBeforeOrtReadsIt) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  Tensor short_x = floats({1, 3}, {1, 2, 3});
  short_x.shape = {2, 3};
  try {
    session.run({{"x", short_x}, {"y", floats({2, 3}, {1, 2, 3, 4, 5, 6})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("input 'x'"), std::string::npos) << e.what();
  }
}

TEST(Runtime, NotAModelIsARuntimeErrorNamingTheFile) {
  test::TempDir dir;
  std::ofstream(dir.file("bad.onnx")) << "not a model";
  try {
    Session session(dir.file("bad.onnx"), cpu1());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("bad.onnx") + " (cpu:1): ", 0), 0u) << e.what();
  }
}

TEST(Runtime, CudaSessionFailsCleanlyWithoutAGpu) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  SessionConfig config;
  config.device = "cuda:0";
  config.provider_options = {{"gpu_mem_limit", "1073741824"}, {"arena_extend_strategy", "kSameAsRequested"}};
  try {
    Session session(dir.file("m.onnx"), config);
    GTEST_SKIP() << "a CUDA device is present: covered by the gpu tests";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
    EXPECT_NE(std::string(e.what()).find("(cuda:0): "), std::string::npos) << e.what();
  }
  // CPU sessions keep working after the failed CUDA one.
  Session cpu(dir.file("m.onnx"), cpu1());
  EXPECT_EQ(cpu.run({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {1, 1, 1})}}).size(), 2u);
}

TEST(Runtime, ProviderOptionsOnACpuDeviceAreAUsageError) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  SessionConfig config = cpu1();
  config.provider_options = {{"gpu_mem_limit", "1"}};
  try {
    Session session(dir.file("m.onnx"), config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
  }
}

TEST(RuntimeDevice, ParsesEveryForm) {
  DeviceSpec all = parse_device("cpu");
  EXPECT_EQ(all.kind, DeviceKind::CPU);
  EXPECT_EQ(all.threads, 0);
  EXPECT_EQ(all.thread_count(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));

  DeviceSpec one = parse_device("cpu:1@0");
  EXPECT_EQ(one.threads, 1);
  EXPECT_EQ(one.cores, (std::vector<int>{0}));
  EXPECT_EQ(one.to_string(), "cpu:1@0");

  EXPECT_EQ(parse_device("cpu:4").threads, 4);
  EXPECT_TRUE(parse_device("cpu:4").cores.empty());

  DeviceSpec gpu = parse_device("cuda:1");
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_EQ(gpu.device_id, 1);
  EXPECT_EQ(gpu.to_string(), "cuda:1");

  const auto list = parse_devices("cpu:1@0,cuda:0,cpu");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1], parse_device("cuda:0"));
  for (const auto& d : list) EXPECT_EQ(parse_device(d.to_string()), d);
}

TEST(RuntimeDevice, ParsesACoreRange) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 cores";
  DeviceSpec spec = parse_device("cpu:2@0-1");
  EXPECT_EQ(spec.threads, 2);
  EXPECT_EQ(spec.cores, (std::vector<int>{0, 1}));
  EXPECT_EQ(spec.to_string(), "cpu:2@0-1");
}

TEST(RuntimeDevice, BadDeviceStringsAreUsageErrors) {
  for (const std::string text : {"gpu", "", "cpu:", "cpu:0", "cpu:x", "cpu:2@1-0", "cpu:1@", "cpu:1@a",
                                 "cuda:", "cuda:x", "cpu:1@99999", "CPU", "cpu:1,cpu:1", "cuda:-1"}) {
    try {
      parse_device(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::USAGE) << text;
      EXPECT_NE(std::string(e.what()).find("device '" + text + "'"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_devices("cpu:1,,cpu:1"), Error);
}

TEST(RuntimeDevice, BadDeviceInSessionConfigIsAUsageError) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  SessionConfig config;
  config.device = "tpu:0";
  try {
    Session session(dir.file("m.onnx"), config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
  }
}

TEST(RuntimeDevice, PinnedSessionsRunAndPinTheCallingThread) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::string> devices = {"cpu:1@0"};
  if (cores >= 2) devices.push_back("cpu:2@0-1");
  for (const std::string& device : devices) {
    SessionConfig config;
    config.device = device;
    Session session(dir.file("m.onnx"), config);
    std::thread worker([&] {
      pin_current_thread(session.device());
      cpu_set_t set;
      CPU_ZERO(&set);
      ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(set), &set), 0);
      EXPECT_EQ(CPU_COUNT(&set), 1);
      EXPECT_TRUE(CPU_ISSET(0, &set));
      const auto out = session.run({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {1, 1, 1})}}, {"z"});
      EXPECT_EQ(values_of(out.at("z")), (std::vector<float>{2, 3, 4}));
    });
    worker.join();
  }
}

TEST(Runtime, StringTensorsRoundTrip) {
  test::TempDir dir;
  onnx::ModelProto model = new_model();
  auto* g = model.mutable_graph();
  add_value(g->add_input(), "s", onnx::TensorProto::STRING, {"2"});
  add_node(g, "Identity", "id", {"s"}, {"t"});
  add_value(g->add_output(), "t", onnx::TensorProto::STRING, {"2"});
  save(model, dir.file("s.onnx"));
  Session session(dir.file("s.onnx"), cpu1());
  Tensor s;
  s.dtype = DType::STRING;
  s.shape = {2};
  s.strings = {"hello", ""};
  const auto out = session.run({{"s", s}});
  EXPECT_EQ(out.at("t").dtype, DType::STRING);
  EXPECT_EQ(out.at("t").strings, s.strings);
}

TEST(Runtime, FromBytesResolvesExternalDataInTheGivenFolder) {
  test::TempDir dir;
  onnx::ModelProto model = new_model();
  auto* g = model.mutable_graph();
  add_value(g->add_input(), "x", onnx::TensorProto::FLOAT, {"3"});
  add_node(g, "Add", "add_w", {"x", "w"}, {"y"});
  add_value(g->add_output(), "y", onnx::TensorProto::FLOAT, {"3"});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"location", "w.bin"}, {"offset", "0"}, {"length", "12"}};
  for (const auto& [key, value] : entries) {
    auto* entry = w->add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  const float weights[3] = {10, 20, 30};
  std::ofstream(dir.file("w.bin"), std::ios::binary).write(reinterpret_cast<const char*>(weights), sizeof(weights));

  SessionConfig config = cpu1();
  config.external_data_dir = dir.file("");
  Session session = Session::from_bytes(model.SerializeAsString(), config);
  EXPECT_EQ(session.label(), "model bytes (cpu:1)");
  const auto out = session.run({{"x", floats({3}, {1, 2, 3})}});
  EXPECT_EQ(values_of(out.at("y")), (std::vector<float>{11, 22, 33}));
}

TEST(Runtime, ValuesChainBetweenSessionsWithoutCopies) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session first(dir.file("m.onnx"), cpu1());
  Session second(dir.file("m.onnx"), cpu1());
  Value x = first.make_input(floats({1, 3}, {1, 2, 3}));
  Value y = first.make_input(floats({1, 3}, {1, 1, 1}));
  EXPECT_EQ(x.device_id(), -1);
  EXPECT_EQ(x.shape(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(x.byte_size(), 12);
  RunRecord record;
  std::vector<Value> z = first.run_values({"x", "y"}, {&x, &y}, {"z"}, {}, nullptr, &record);
  ASSERT_EQ(z.size(), 1u);
  EXPECT_EQ(record.copy_in.path, CopyPath::NONE);
  EXPECT_EQ(record.copy_in.bytes, 0);
  EXPECT_EQ(record.copy_out.bytes, 0);
  // The output of the first session feeds the second one as is.
  Value y2 = second.make_input(floats({1, 3}, {2, 2, 2}));
  std::vector<Value> w = second.run_values({"x", "y"}, {&z[0], &y2}, {"w", "z"});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(values_of(w[0].to_tensor()), (std::vector<float>{8, 10, 12}));
  EXPECT_EQ(values_of(w[1].to_tensor()), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(w[0].dtype(), DType::FLOAT);
}

TEST(Runtime, BorrowedInputsAreWrappedWithoutACopy) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  Tensor borrowed;
  borrowed.dtype = DType::FLOAT;
  borrowed.shape = {1, 3};
  borrowed.borrowed = {buffer, reinterpret_cast<const uint8_t*>(buffer->data()), 12};
  Value x = session.make_input(std::move(borrowed));
  Value y = session.make_input(floats({1, 3}, {1, 1, 1}));
  (*buffer)[0] = 10;  // written after wrapping: the run sees it, since ORT reads the borrowed buffer itself
  std::weak_ptr<std::vector<float>> watch = buffer;
  buffer.reset();  // the Value keeps the buffer alive
  std::vector<Value> z = session.run_values({"x", "y"}, {&x, &y}, {"z"});
  EXPECT_EQ(values_of(z[0].to_tensor()), (std::vector<float>{11, 3, 4}));
  EXPECT_FALSE(watch.expired());
  x = Value();
  EXPECT_TRUE(watch.expired());
}

TEST(Runtime, TerminatedRunControlFailsEveryLaterRun) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  Value x = Value::from_tensor(floats({1, 3}, {1, 2, 3}));
  Value y = Value::from_tensor(floats({1, 3}, {1, 1, 1}));
  RunControl control;
  control.terminate();
  for (int run = 0; run < 2; ++run) {
    try {
      session.run_values({"x", "y"}, {&x, &y}, {"z"}, {}, &control);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::RUNTIME);
    }
  }
  // The session itself is fine: a fresh control runs.
  RunControl fresh;
  EXPECT_EQ(session.run_values({"x", "y"}, {&x, &y}, {"z"}, {}, &fresh).size(), 1u);
}

TEST(Runtime, MemoryStatsComeFromTheCpuArena) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  Session session(dir.file("m.onnx"), cpu1());
  session.run({{"x", floats({1, 3}, {1, 2, 3})}, {"y", floats({1, 3}, {1, 1, 1})}});
  const auto stats = session.memory_stats();
  ASSERT_TRUE(stats.count("MaxInUse")) << "no arena statistics";
  EXPECT_GT(stats.at("MaxInUse"), 0);
  EXPECT_TRUE(stats.count("Limit"));  // the arena's cap: gpu_mem_limit on CUDA
  EXPECT_FALSE(stats.count("device_total_bytes"));
}

// ORT 1.29 describes "CudaPinned" memory as a GPU device with HOST_ACCESSIBLE memory: host memory for us, as for ORT
// (OrtDevice::UsesCpuMemory). Only a GPU device's DEFAULT memory is device memory. No device is needed to ask.
TEST(RuntimeMemory, PinnedMemoryIsHostMemoryAndCudaMemoryIsDeviceMemory) {
  EXPECT_EQ(memory_location("Cpu", 0), -1);
  EXPECT_EQ(memory_location("CudaPinned", 0), -1);
  EXPECT_EQ(memory_location("CudaPinned", 1), -1);
  EXPECT_EQ(memory_location("Cuda", 0), 0);
  EXPECT_EQ(memory_location("Cuda", 1), 1);
  EXPECT_EQ(test::error_code_of([] { memory_location("Tpu", 0); }), ErrorCode::USAGE);
}

TEST(RuntimeMemory, CpuSessionsRejectInputsInDeviceMemory) {
  EXPECT_NO_THROW(check_host_input("x", -1));
  std::string message;
  EXPECT_EQ(test::error_code_of([] { check_host_input("x", 1); }, &message), ErrorCode::USAGE);
  EXPECT_NE(message.find("input 'x'"), std::string::npos) << message;
  EXPECT_NE(message.find("cuda:1"), std::string::npos) << message;
}

TEST(RuntimeCuda, ProviderOptionsSearchConvolutionsHeuristicallyUnlessOverridden) {
  EXPECT_EQ(cuda_provider_options(1, {}),
            (std::map<std::string, std::string>{{"cudnn_conv_algo_search", "HEURISTIC"}, {"device_id", "1"}}));
  const auto custom = cuda_provider_options(0, {{"cudnn_conv_algo_search", "EXHAUSTIVE"},
                                                {"gpu_mem_limit", "1024"},
                                                {"device_id", "3"}});  // the session's device wins
  EXPECT_EQ(custom, (std::map<std::string, std::string>{
                        {"cudnn_conv_algo_search", "EXHAUSTIVE"}, {"device_id", "0"}, {"gpu_mem_limit", "1024"}}));
}

// A fake CUDA runtime: one current device per process is enough for the test.
int fake_current_device = 0;
int fake_set_calls = 0;
int fake_get(int* device) {
  *device = fake_current_device;
  return 0;
}
int fake_set(int device) {
  ++fake_set_calls;
  fake_current_device = device;
  return 0;
}
int fake_set_fails(int) { return 100; }  // cudaErrorNoDevice

TEST(RuntimeCuda, CurrentDeviceIsSetOnlyWhenItDiffers) {
  fake_current_device = 0;
  fake_set_calls = 0;
  EXPECT_TRUE(make_current_device(1, fake_get, fake_set));
  EXPECT_EQ(fake_current_device, 1);
  for (int run = 0; run < 5; ++run) EXPECT_TRUE(make_current_device(1, fake_get, fake_set));
  EXPECT_EQ(fake_set_calls, 1);  // the worker's later runs find it set
  EXPECT_TRUE(make_current_device(0, fake_get, fake_set));
  EXPECT_EQ(fake_set_calls, 2);
  EXPECT_FALSE(make_current_device(2, fake_get, fake_set_fails));
  EXPECT_TRUE(make_current_device(0, fake_get, fake_set_fails));  // already current: nothing to set
}

TEST(RuntimeCuda, PlacementWarningSaysHowManyNodesRunOnTheCpu) {
  Placement placement;
  placement.nodes_per_provider = {{"CUDAExecutionProvider", 10}, {"CPUExecutionProvider", 3}};
  placement.cpu_ops = {{"Gather", 1}, {"Shape", 2}};
  EXPECT_EQ(placement.cpu_nodes(), 3);
  EXPECT_EQ(placement.total_nodes(), 13);
  const std::string warning = placement_warning("stage 0 (piece_0.onnx, cuda:0)", placement);
  EXPECT_EQ(warning.rfind("stage 0 (piece_0.onnx, cuda:0): 3 of 13 nodes run on the CPU (Gather x1, Shape x2)", 0), 0u)
      << warning;
  EXPECT_NE(warning.find("session.disable_cpu_ep_fallback=1"), std::string::npos) << warning;

  placement.nodes_per_provider = {{"CUDAExecutionProvider", 10}};
  placement.cpu_ops.clear();
  EXPECT_EQ(placement_warning("s", placement), "");
  EXPECT_EQ(placement_warning("s", Placement{}), "");  // nothing recorded
}

TEST(Runtime, PlacementIsRecordedWhenAsked) {
  test::TempDir dir;
  save(add_mul_model(), dir.file("m.onnx"));
  EXPECT_TRUE(Session(dir.file("m.onnx"), cpu1()).placement().nodes_per_provider.empty());  // CPU: not by default
  SessionConfig config = cpu1();
  config.session_options = {{"session.record_ep_graph_assignment_info", "1"}};
  Session session(dir.file("m.onnx"), config);
  EXPECT_EQ(session.placement().nodes_per_provider, (std::map<std::string, int>{{"CPUExecutionProvider", 2}}));
  EXPECT_EQ(session.placement().cpu_ops, (std::map<std::string, int>{{"Add", 1}, {"Mul", 1}}));
  const std::string warning = placement_warning(session.label(), session.placement());
  EXPECT_EQ(warning.rfind(session.label() + ": 2 of 2 nodes run on the CPU (Add x1, Mul x1)", 0), 0u) << warning;
}

TEST(Runtime, ReportsVersionAndProviders) {
  EXPECT_EQ(ort_version().rfind("1.", 0), 0u) << ort_version();
  const auto providers = available_providers();
  EXPECT_NE(std::find(providers.begin(), providers.end(), "CPUExecutionProvider"), providers.end());
}

}  // namespace
}  // namespace onnxpipe::detail
