// onnxpipe run PLAN_DIR|MODEL --devices D1,D2: runs N requests through a pipeline (or the unsplit model, or replicas)
// and prints throughput, latency percentiles, and what every stage spent its time on.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>

#include "commands.h"
#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/verify.h"
#include "options.h"
#include "staging.h"
#include "stats.h"

namespace onnxpipe::cli {

namespace {

struct RunArgs {
  std::string source;
  std::string devices = "cpu";
  std::string mode = "pipeline";
  std::vector<std::string> inputs;
  std::vector<std::string> dims;
  int count = 100;
  int warmup = 1;
  int max_inflight = 8;
  int micro_batch = 0;
  std::vector<std::string> provider_options;
  std::vector<std::string> session_options;
  std::string int_range = "0,10";
  uint64_t seed = 0;
  std::string output_dir;
  bool force = false;
  std::string trace_file;
};

using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> parse_options(const std::vector<std::string>& specs, const std::string& option) {
  std::map<std::string, std::string> result;
  for (const std::string& spec : specs) {
    const auto [key, value] = parse_assignment(spec, option);
    result[key] = value;
  }
  return result;
}

int64_t stat(const std::map<std::string, int64_t>& memory, const std::string& key) {
  const auto it = memory.find(key);
  return it == memory.end() ? -1 : it->second;
}

// An output's file in -o: its name with every character that is not a letter, digit, '.', '_' or '-' replaced by
// '_' (ONNX names hold '/' and ':'), then ".npy".
std::string npy_file_name(const std::string& output) {
  std::string name = output;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return name + ".npy";
}

// The first request's outputs as NAME.npy in a directory that appears whole (staged, renamed at the end).
void write_outputs(const TensorMap& outputs, const std::string& dir, bool replace) {
  detail::StagingDir staging(dir);
  std::map<std::string, std::string> written;  // file -> output
  for (const auto& [name, tensor] : outputs) {
    const std::string file = npy_file_name(name);
    const auto [it, fresh] = written.emplace(file, name);
    if (!fresh) {
      throw Error(ErrorCode::USAGE, "outputs '" + it->second + "' and '" + name + "' would both be written to " + file);
    }
    write_npy((staging.path() / file).string(), tensor);
  }
  staging.commit(replace);
}

void run_run(const CliContext& context, const RunArgs& args) {
  if (!args.output_dir.empty() && std::filesystem::exists(args.output_dir) && !args.force) {
    throw Error(ErrorCode::USAGE, args.output_dir + " exists (use --force to replace it)");
  }
  PipelineOptions options;
  options.mode = pipeline_mode_from_name(args.mode);
  options.devices = split_list(args.devices, "--devices");
  options.max_inflight = args.max_inflight;
  options.micro_batch = args.micro_batch;
  options.all_devices.provider_options = parse_options(args.provider_options, "--provider-option");
  options.all_devices.session_options = parse_options(args.session_options, "--session-option");
  options.split.dims = parse_dims(args.dims);
  auto progress = context.progress();
  options.split.progress = progress->callback();

  context.log("run: loading " + args.source + " (" + args.mode + " on " + args.devices + ")");
  Pipeline pipeline(args.source, options);
  progress->clear();
  std::vector<DeviceSpec> stage_devices;
  for (const StageInfo& stage : pipeline.stages()) stage_devices.push_back(parse_device(stage.device));
  const std::string contention = contention_warning(stage_devices);
  if (!contention.empty()) context.log("warning: " + contention);

  VerifyOptions random;
  random.inputs = read_inputs(args.inputs);
  random.dims = options.split.dims;
  std::tie(random.int_low, random.int_high) = parse_int_range(args.int_range, "--int-range");
  random.seed = args.seed;
  const TensorMap inputs = make_inputs(pipeline.inputs(), random);

  // Every request carries the same inputs: what is measured is the runtime, not the data.
  auto run_one = [&](const TensorMap& in) {
    return args.micro_batch > 0 ? std::async(std::launch::deferred, [&pipeline, in] { return pipeline.run_batch(in); })
                                : pipeline.submit(in);
  };
  for (int i = 0; i < args.warmup; ++i) run_one(inputs).get();
  pipeline.timings().clear();

  // A waiter takes the answers in order while this thread submits; answers come in order, so the time it sees
  // one is the time it was ready.
  std::vector<Clock::time_point> submitted(args.count), answered(args.count);
  std::vector<std::future<TensorMap>> futures(args.count);
  std::mutex mutex;
  std::condition_variable ready;
  int submitted_count = 0;
  TensorMap first_outputs;
  std::string first_error;
  int failures = 0;
  std::thread waiter([&] {  // reads submitted[i] only after submitted_count > i (under the mutex)
    for (int i = 0; i < args.count; ++i) {
      std::future<TensorMap> future;
      {
        std::unique_lock<std::mutex> lock(mutex);
        ready.wait(lock, [&] { return submitted_count > i; });
        future = std::move(futures[i]);
      }
      // With micro-batches a request runs when its answer is asked for (one request at a time).
      if (args.micro_batch > 0) submitted[i] = std::max(submitted[i], Clock::now());
      try {
        TensorMap outputs = future.get();
        if (i == 0) first_outputs = std::move(outputs);
      } catch (const std::exception& e) {
        if (failures++ == 0) first_error = e.what();
      }
      answered[i] = Clock::now();
      progress->update("requests", i + 1, args.count);
    }
  });
  const auto start = Clock::now();
  for (int i = 0; i < args.count; ++i) {
    submitted[i] = Clock::now();
    std::future<TensorMap> future;
    try {
      future = run_one(inputs);
    } catch (...) {
      std::promise<TensorMap> failed;
      failed.set_exception(std::current_exception());
      future = failed.get_future();
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      futures[i] = std::move(future);
      ++submitted_count;
    }
    ready.notify_one();
  }
  waiter.join();
  const double wall = std::chrono::duration<double>(answered.back() - start).count();
  progress->clear();

  std::vector<double> latencies;
  for (int i = 0; i < args.count; ++i) {
    latencies.push_back(std::chrono::duration<double, std::milli>(answered[i] - submitted[i]).count());
  }

  auto printer = context.printer();
  printer->record("run",
                  {{"mode", FieldType::STRING},
                   {"devices", FieldType::STRING},
                   {"stages", FieldType::INT},
                   {"requests", FieldType::INT},
                   {"failures", FieldType::INT},
                   {"wall_s", FieldType::FLOAT, 3},
                   {"throughput_rps", FieldType::FLOAT, 2},
                   {"latency_p50_ms", FieldType::FLOAT, 3},
                   {"latency_p90_ms", FieldType::FLOAT, 3},
                   {"latency_p99_ms", FieldType::FLOAT, 3}},
                  {args.mode, args.devices, pipeline.stage_count() * pipeline.lane_count(), args.count, failures, wall,
                   args.count / wall, detail::percentile(latencies, 0.5), detail::percentile(latencies, 0.9),
                   detail::percentile(latencies, 0.99)});

  // Per stage: the seed's timings (means per request, ms), copies by path, memory.
  const std::vector<StageInfo> stages = pipeline.stages();
  std::map<int, const StageInfo*> info;
  for (const StageInfo& s : stages) {
    if (!info.count(s.stage)) info[s.stage] = &s;
  }
  const std::vector<Field> stage_fields = {{"stage", FieldType::INT},
                                           {"piece", FieldType::STRING},
                                           {"device", FieldType::STRING},
                                           {"requests", FieldType::INT, -1, false},
                                           {"wait0_ms", FieldType::FLOAT, 3},
                                           {"wait_ms", FieldType::FLOAT, 3},
                                           {"copy1_ms", FieldType::FLOAT, 3},
                                           {"run_ms", FieldType::FLOAT, 3},
                                           {"run_median_ms", FieldType::FLOAT, 3, false},
                                           {"copy2_ms", FieldType::FLOAT, 3},
                                           {"ttime_ms", FieldType::FLOAT, 3},
                                           {"h2d_bytes", FieldType::INT, -1, false},
                                           {"d2d_bytes", FieldType::INT, -1, false},
                                           {"d2h_bytes", FieldType::INT, -1, false},
                                           {"host_copy_bytes", FieldType::INT, -1, false},
                                           {"copies", FieldType::STRING},
                                           {"mem_in_use_mb", FieldType::FLOAT, 2, false},
                                           {"mem_peak_mb", FieldType::FLOAT, 2}};
  // Every row is at hand: table() aligns the md columns to them.
  std::vector<Row> stage_rows;
  for (const StageSummary& s : pipeline.timings().summary()) {
    const StageInfo* stage = info.count(s.stage) ? info[s.stage] : nullptr;
    auto bytes = [&](CopyPath path) {
      const auto it = s.copy_bytes.find(path);
      return it == s.copy_bytes.end() ? int64_t(0) : it->second;
    };
    std::string copies;
    for (const auto& [path, n] : s.copy_count) {
      copies += (copies.empty() ? "" : " ") + std::string(copy_path_name(path)) + ":" + std::to_string(n);
    }
    const int64_t in_use = stage ? stat(stage->memory, "InUse") : -1;
    const int64_t peak = stage ? stat(stage->memory, "MaxInUse") : -1;
    stage_rows.push_back({s.stage, stage ? Cell(stage->piece) : Cell(), s.device, s.requests, s.wait0 / 1e3,
                          s.wait / 1e3, s.copy1 / 1e3, s.run / 1e3, s.run_median / 1e3, s.copy2 / 1e3, s.ttime / 1e3,
                          bytes(CopyPath::H2D), bytes(CopyPath::D2D), bytes(CopyPath::D2H), bytes(CopyPath::HOST),
                          copies.empty() ? "none" : copies, in_use >= 0 ? Cell(megabytes(in_use)) : Cell(),
                          peak >= 0 ? Cell(megabytes(peak)) : Cell()});
  }
  printer->table("stages", stage_fields, stage_rows);
  printer->finish();

  if (!args.trace_file.empty()) {
    detail::write_file_atomically(args.trace_file, pipeline.timings().chrome_trace());
    context.log("run: timeline written to " + args.trace_file);
  }
  if (!args.output_dir.empty() && !first_outputs.empty()) {
    write_outputs(first_outputs, args.output_dir, args.force);
    context.log("run: outputs written to " + args.output_dir);
  }
  if (failures > 0) {
    throw Error(ErrorCode::RUNTIME, std::to_string(failures) + " of " + std::to_string(args.count) +
                                        " requests failed; first: " + first_error);
  }
}

}  // namespace

void add_run_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* command = app.add_subcommand(
      "run",
      "Run requests through the pieces of a plan as a pipeline (or the whole model: sequence, replicas) and "
      "print throughput, latency and per-stage timings");
  command->add_option("SOURCE", args->source, "a plan directory (split's output) or a .onnx model")->required();
  command
      ->add_option("--devices", args->devices,
                   "comma list, one per stage (pipeline) or replica: cpu, cpu:T, cpu:T@C0-C1, cuda:K")
      ->capture_default_str();
  command->add_option("--mode", args->mode, "pipeline, sequence or replicas")
      ->check(CLI::IsMember({"pipeline", "sequence", "replicas"}))
      ->capture_default_str();
  command->add_option("--input", args->inputs, "NAME=FILE.npy|FILE.pb: an input's value (default random); repeatable")
      ->allow_extra_args(false);
  command->add_option("--dim", args->dims, "NAME=VALUE: a symbolic dimension's value (default 1); repeatable")
      ->allow_extra_args(false);
  command->add_option("--count", args->count, "requests to run")->check(at_least(1))->capture_default_str();
  command->add_option("--warmup", args->warmup, "requests run first and not measured")
      ->check(at_least(0))
      ->capture_default_str();
  command->add_option("--max-inflight", args->max_inflight, "requests in flight at most")
      ->check(at_least(1))
      ->capture_default_str();
  command
      ->add_option("--micro-batch", args->micro_batch,
                   "split each request along axis 0 into micro-batches of this size (0: off)")
      ->check(at_least(0))
      ->capture_default_str();
  command
      ->add_option("--provider-option", args->provider_options,
                   "KEY=VALUE for the CUDA provider (gpu_mem_limit, arena_extend_strategy, cudnn_conv_algo_search, "
                   "...); repeatable")
      ->allow_extra_args(false);
  command->add_option("--session-option", args->session_options, "KEY=VALUE ORT session config entry; repeatable")
      ->allow_extra_args(false);
  command->add_option("--int-range", args->int_range, "LO,HI: random integer inputs in [LO, HI)")
      ->capture_default_str();
  command->add_option("--seed", args->seed, "seed of the random inputs")->capture_default_str();
  command->add_option("-o,--output-dir", args->output_dir,
                      "write the first request's outputs to this new directory as NAME.npy ('/', ':'... as '_')");
  command->add_flag("--force", args->force, "replace an existing --output-dir");
  command->add_option("--trace", args->trace_file, "write the stage timeline as a Chrome trace (JSON)");
  command->callback([&context, args] { run_run(context, *args); });
}

}  // namespace onnxpipe::cli
