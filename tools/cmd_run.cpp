// onnxpipe run PLAN_DIR|MODEL --devices D1,D2: runs N requests through a pipeline (or the unsplit model, or replicas)
// and prints throughput, latency percentiles, and what every stage spent its time on.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <memory>
#include <optional>
#include <tuple>

#include "commands.h"
#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/ranks.h"
#include "onnxpipe/verify.h"
#include "options.h"
#include "rank_args.h"
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
  RankArgs ranks;  // several machines: the rank of each stage
};

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

PipelineOptions pipeline_options(const RunArgs& args, const TensorMap& given, Progress& progress) {
  PipelineOptions options;
  options.mode = pipeline_mode_from_name(args.mode);
  options.devices = split_list(args.devices, "--devices");
  options.max_inflight = args.max_inflight;
  options.micro_batch = args.micro_batch;
  options.all_devices.provider_options = parse_options(args.provider_options, "--provider-option");
  options.all_devices.session_options = parse_options(args.session_options, "--session-option");
  options.split.dims = parse_dims(args.dims);
  options.split.inputs = given;  // a model is split with them: sizing and timing runs need inputs without a shape
  options.split.progress = progress.callback();
  return options;
}

// Every request carries the same inputs: what is measured is the runtime, not the data.
TensorMap request_inputs(const RunArgs& args, const TensorMap& given, const Pipeline& pipeline,
                         const std::map<std::string, int64_t>& dims) {
  VerifyOptions random;
  random.inputs = given;
  random.dims = dims;
  std::tie(random.int_low, random.int_high) = parse_int_range(args.int_range, "--int-range");
  random.seed = args.seed;
  return make_inputs(pipeline.inputs(), random);
}

// Counts the answers on the progress bar as the stages hand them out.
class ProgressObserver : public StageObserver {
 public:
  explicit ProgressObserver(Progress& progress) : progress_(progress) {}
  void reset(int64_t total) {
    total_ = total;
    done_ = 0;
  }
  void on_request_done(const RequestRecord&) override { progress_.update("requests", ++done_, total_); }

 private:
  Progress& progress_;
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> done_{0};
};

// What the measured requests gave. Latency is the pipeline's (RequestRecord::latency_us), per pipeline request: per
// micro-batch with --micro-batch.
struct RunResult {
  double wall_s = 0;
  int failures = 0;
  std::string first_error;
  TensorMap first_outputs;
  std::vector<double> latencies_ms;
};

RunResult run_requests(Pipeline& pipeline, const TensorMap& inputs, const RunArgs& args) {
  RunResult result;
  auto failed = [&result](const std::exception& e) {
    if (result.failures++ == 0) result.first_error = e.what();
  };
  pipeline.timings().clear();
  const double start = pipeline.now_us();
  std::vector<Ticket> tickets;
  for (int i = 0; i < args.count; ++i) {
    try {
      // With micro-batches one request runs at a time, its micro-batches pipelined.
      if (args.micro_batch > 0) {
        TensorMap outputs = pipeline.run_batch(inputs);
        if (i == 0) result.first_outputs = std::move(outputs);
      } else {
        tickets.push_back(pipeline.submit(inputs));  // blocks at max_inflight while the stages answer
      }
    } catch (const std::exception& e) {
      failed(e);
    }
  }
  for (size_t i = 0; i < tickets.size(); ++i) {
    try {
      TensorMap outputs = tickets[i].get();
      if (i == 0) result.first_outputs = std::move(outputs);
    } catch (const std::exception& e) {
      failed(e);
    }
  }
  result.wall_s = (pipeline.now_us() - start) / 1e6;
  for (const RequestRecord& r : pipeline.timings().requests()) result.latencies_ms.push_back(r.latency_us() / 1e3);
  return result;
}

void print_summary(Printer& printer, const RunArgs& args, const Pipeline& pipeline, const RunResult& result) {
  const std::vector<double>& latencies = result.latencies_ms;
  printer.record("run",
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
                 {args.mode, args.devices, pipeline.stage_count() * pipeline.lane_count(), args.count, result.failures,
                  result.wall_s, args.count / result.wall_s, detail::percentile(latencies, 0.5),
                  detail::percentile(latencies, 0.9), detail::percentile(latencies, 0.99)});
}

// What plan.json predicts of each piece's memory, by piece file (a plan directory as the source; else empty).
std::map<std::string, PieceDesc> planned_pieces(const std::string& source) {
  std::map<std::string, PieceDesc> pieces;
  if (!std::filesystem::is_directory(source)) return pieces;
  for (const PieceDesc& piece : Plan::load(source).pieces) pieces.emplace(piece.file, piece);
  return pieces;
}

Cell mb_or_null(int64_t bytes) { return bytes < 0 ? Cell() : Cell(megabytes(bytes)); }

// Per stage: the seed's timings (means per request, ms), copies by path, memory: what plan.json predicts beside
// what the stage's arena held after loading (`loaded`: stages() read then) and after the run.
void print_stages(Printer& printer, const Pipeline& pipeline, const std::vector<StageInfo>& loaded,
                  const std::map<std::string, PieceDesc>& planned) {
  const std::vector<StageInfo> stages = pipeline.stages();
  std::map<int, const StageInfo*> info, at_load;
  for (const StageInfo& s : stages) {
    if (!info.count(s.stage)) info[s.stage] = &s;
  }
  for (const StageInfo& s : loaded) {
    if (!at_load.count(s.stage)) at_load[s.stage] = &s;
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
                                           {"pred_weights_mb", FieldType::FLOAT, 2, false},
                                           {"pred_act_mb", FieldType::FLOAT, 2},
                                           {"pred_mb", FieldType::FLOAT, 2},
                                           {"loaded_mb", FieldType::FLOAT, 2},
                                           {"act_mb", FieldType::FLOAT, 2},
                                           {"mem_in_use_mb", FieldType::FLOAT, 2, false},
                                           {"mem_peak_mb", FieldType::FLOAT, 2},
                                           {"rank", FieldType::INT, -1, false},
                                           {"host", FieldType::STRING, -1, false},
                                           {"hop_bytes", FieldType::INT, -1, false},
                                           {"hop_ms", FieldType::FLOAT, 3, false},
                                           {"hop_share", FieldType::FLOAT, 3, false}};
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
    const int64_t at_loading = at_load.count(s.stage) ? stat(at_load[s.stage]->memory, "InUse") : -1;
    // The activations measured: how far the runs took the arena above what loading left in it.
    const int64_t activations = peak >= 0 && at_loading >= 0 ? std::max<int64_t>(0, peak - at_loading) : -1;
    const auto piece = stage ? planned.find(stage->piece) : planned.end();
    const bool predicted = piece != planned.end() && piece->second.activation_bytes >= 0;
    const int64_t pred_weights = predicted ? piece->second.resident_weight_bytes : -1;
    const int64_t pred_act = predicted ? piece->second.activation_bytes : -1;
    stage_rows.push_back({s.stage,
                          stage ? Cell(stage->piece) : Cell(),
                          s.device,
                          s.requests,
                          s.wait0 / 1e3,
                          s.wait / 1e3,
                          s.copy1 / 1e3,
                          s.run / 1e3,
                          s.run_median / 1e3,
                          s.copy2 / 1e3,
                          s.ttime / 1e3,
                          bytes(CopyPath::H2D),
                          bytes(CopyPath::D2D),
                          bytes(CopyPath::D2H),
                          bytes(CopyPath::HOST),
                          copies.empty() ? "none" : copies,
                          mb_or_null(pred_weights),
                          mb_or_null(pred_act),
                          predicted ? Cell(megabytes(pred_weights + pred_act)) : Cell(),
                          mb_or_null(at_loading),
                          mb_or_null(activations),
                          mb_or_null(in_use),
                          mb_or_null(peak)});
    // Stages on other ranks: where, and their hop (share: of the hop and the run together).
    stage_rows.back().insert(stage_rows.back().end(),
                             {s.rank, stage ? Cell(stage->host) : Cell(), static_cast<int64_t>(s.hop_bytes),
                              s.hop / 1e3, s.hop > 0 ? Cell(s.hop / (s.hop + s.run)) : Cell()});
  }
  printer.table("stages", stage_fields, stage_rows);
}

void run_run(CliContext& context, const RunArgs& args) {
  if (!args.output_dir.empty() && std::filesystem::exists(args.output_dir) && !args.force) {
    throw Error(ErrorCode::USAGE, args.output_dir + " exists (use --force to replace it)");
  }
  auto progress = context.progress();
  const TensorMap given = read_inputs(args.inputs);
  PipelineOptions options = pipeline_options(args, given, *progress);
  auto counter = std::make_shared<ProgressObserver>(*progress);
  options.observers.push_back(counter);
  std::optional<RankSession> session;
  options.ranks = join_ranks(args.ranks, args.source, session, context);
  if (session && session->rank() == 0) {
    context.log("run: " + describe_job(*session));
  }
  context.log("run: loading " + args.source + " (" + args.mode + " on " + args.devices + ")");
  Pipeline pipeline = [&] {
    try {
      return Pipeline(args.source, options);
    } catch (const std::exception& e) {
      // A rank that fails ends the whole job as its session goes (before main could say why): say it here.
      if (session) context.log("error: rank " + std::to_string(session->rank()) + ": " + e.what());
      throw;
    }
  }();
  if (session && session->rank() != 0) {
    pipeline.serve();  // rank 0 submits, collects and prints
    return;
  }
  progress->clear();
  const std::vector<StageInfo> loaded = pipeline.stages();  // the arenas before any run
  std::vector<DeviceSpec> stage_devices;
  for (const StageInfo& stage : pipeline.stages()) stage_devices.push_back(parse_device(stage.device));
  const std::string contention = contention_warning(stage_devices);
  if (!contention.empty()) context.log("warning: " + contention);

  const TensorMap inputs = request_inputs(args, given, pipeline, options.split.dims);
  for (int i = 0; i < args.warmup; ++i) {
    if (args.micro_batch > 0) {
      pipeline.run_batch(inputs);
    } else {
      pipeline.submit(inputs).get();
    }
  }
  counter->reset(args.micro_batch > 0 ? 0 : args.count);
  const RunResult result = run_requests(pipeline, inputs, args);
  progress->clear();

  auto printer = context.printer();
  print_summary(*printer, args, pipeline, result);
  print_stages(*printer, pipeline, loaded, planned_pieces(args.source));
  printer->finish();

  if (!args.trace_file.empty()) {
    const std::string title = "onnxpipe run " + args.mode + " on " + args.devices;
    detail::write_file_atomically(args.trace_file,
                                  chrome_trace(pipeline.timings().requests(), pipeline.stages(), title) + "\n");
    context.log("run: timeline written to " + args.trace_file);
  }
  if (!args.output_dir.empty() && !result.first_outputs.empty()) {
    write_outputs(result.first_outputs, args.output_dir, args.force);
    context.log("run: outputs written to " + args.output_dir);
  }
  if (result.failures > 0) {
    // A job that lost a rank ends in MPI_Abort when the session goes: say why first.
    if (session && session->any_lost()) context.log("error: " + result.first_error);
    throw Error(ErrorCode::RUNTIME, std::to_string(result.failures) + " of " + std::to_string(args.count) +
                                        " requests failed; first: " + result.first_error);
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
  add_devices_option(*command, args->devices, "one per stage (pipeline) or replica")->capture_default_str();
  command->add_option("--mode", args->mode, "pipeline, sequence or replicas")
      ->check(CLI::IsMember({"pipeline", "sequence", "replicas"}))
      ->capture_default_str();
  add_inputs_option(*command, args->inputs);
  add_dims_option(*command, args->dims);
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
  add_rank_options(*command, args->ranks);
  command->callback([&context, args] { run_run(context, *args); });
}

}  // namespace onnxpipe::cli
