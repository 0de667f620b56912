// onnxpipe bench MODEL|PLAN_DIR --devices D1,D2: the seed's experiment (sequence vs pipeline vs replicas for N = 1, 3,
// 5 ... images, repeated), one row per (mode, N) as it is measured, and how close each run came to its bound. Under
// mpirun (`mpirun -np K onnxpipe bench PLAN --devices ... --ranks ...`) pipeline mode runs its stages on the ranks,
// and the rows carry ranks, hosts and each stage's hop.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_table.h"
#include "commands.h"
#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "onnxpipe/ranks.h"
#include "options.h"
#include "rank_args.h"
#include "sweep.h"

namespace onnxpipe::cli {

namespace {

struct BenchArgs {
  std::string source;
  int parts = 0;
  std::string devices;
  std::string balance = "time";
  std::string images = "1:81:2";
  int repeat = 4;
  double warmup = 1;
  int alone_runs = 100;
  std::string modes = "sequence,pipeline,replicas";
  int micro_batch = 0;
  int max_inflight = 8;
  double atol = 1e-3;
  uint64_t seed = 0;
  int profile_runs = 20;
  std::vector<std::string> dims;
  std::vector<std::string> inputs;
  std::string trace_file;
  RankArgs ranks;
};

detail::BenchOptions bench_options(const BenchArgs& args, Progress& progress) {
  detail::BenchOptions options;
  options.devices = split_list(args.devices, "--devices");
  options.modes = parse_modes(args.modes);
  options.images = parse_image_sweep(args.images);
  options.repeat = args.repeat;
  options.warmup = args.warmup;
  options.alone_runs = args.alone_runs;
  options.micro_batch = args.micro_batch;
  options.max_inflight = args.max_inflight;
  options.atol = args.atol;
  options.seed = args.seed;
  options.dims = parse_dims(args.dims);
  options.inputs = read_inputs(args.inputs);
  options.split.parts = args.parts > 0 ? args.parts : static_cast<int>(options.devices.size());
  options.split.balance = balance_from_name(args.balance);
  options.split.dims = options.dims;
  options.split.inputs = options.inputs;
  options.split.profile_runs = args.profile_runs;
  options.commit = ONNXPIPE_COMMIT;
  options.trace_path = args.trace_file;
  options.progress = progress.callback();
  options.split.progress = progress.callback();
  return options;
}

// Prints the rows as they are measured: csv and json carry every column; md shows the fixed ones once (above the
// table), the key ones in the table, and each mode at its largest N at the end.
class BenchRows {
 public:
  BenchRows(const detail::Bench& bench, Printer& printer, bool md)
      : columns_(bench_columns(bench)), printer_(printer), md_(md) {}

  void add(const detail::Measurement& m) {
    const Row row = row_of(columns_, m);
    if (!started_) {
      if (md_) print_setup(row);
      printer_.begin_table(md_ ? "bench" : "", fields_of(columns_));
      started_ = true;
    }
    printer_.row(row);
    const std::string mode = pipeline_mode_name(m.mode);
    if (!last_.count(mode) || last_[mode].images <= m.images) last_[mode] = m;
  }

  void finish(const detail::BenchSummary& summary) {
    if (started_) printer_.end_table();
    if (md_ && !last_.empty()) print_key_figures(summary);
    printer_.finish();
  }

 private:
  void print_setup(const Row& row) {
    std::vector<Field> fields;
    Row fixed;
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (!columns_[i].fixed) continue;
      fields.push_back({columns_[i].field.name, columns_[i].field.type, columns_[i].field.decimals, true});
      fixed.push_back(row[i]);
    }
    printer_.record("setup", fields, fixed);
  }

  void print_key_figures(const detail::BenchSummary& summary) {
    std::vector<Field> fields;
    Row row;
    for (const auto& [mode, m] : last_) {
      fields.push_back({mode + "_images", FieldType::INT});
      row.push_back(m.images);
      fields.push_back({mode + "_throughput", FieldType::FLOAT, 1});
      row.push_back(m.throughput);
      fields.push_back({mode + "_bound_share", FieldType::FLOAT, 2});
      row.push_back(m.bound_throughput > 0 ? Cell(m.throughput / m.bound_throughput) : Cell());
      fields.push_back({mode + "_speedup", FieldType::FLOAT, 2});
      row.push_back(m.speedup >= 0 ? Cell(m.speedup) : Cell());
    }
    fields.push_back({"max_abs_diff", FieldType::FLOAT});
    row.push_back(summary.max_abs_diff);
    fields.push_back({"outputs_agree", FieldType::BOOL});
    row.push_back(summary.verified());
    printer_.record("key figures", fields, row);
  }

  const std::vector<BenchColumn> columns_;
  Printer& printer_;
  const bool md_;
  bool started_ = false;
  std::map<std::string, detail::Measurement> last_;  // per mode, at the largest N so far
};

// Rank 0 (or the only process) measures and prints; the other ranks serve pipeline mode's stages (a summary of
// nothing).
detail::BenchSummary bench_on_rank(CliContext& context, const BenchArgs& args, Progress& progress,
                                   const detail::BenchOptions& options, const std::optional<RankSession>& session) {
  if (session && session->rank() != 0) {
    detail::Bench(args.source, options).serve();
    return {};
  }
  if (session) context.log("bench: " + describe_job(*session));
  context.log("bench: " + args.source + " on " + args.devices + " (" + args.modes + ", N " + args.images + ", " +
              std::to_string(args.repeat) + " repetitions)");
  detail::Bench bench(args.source, options);
  if (args.parts > 0 && bench.plan().parts() != args.parts) {
    throw Error(ErrorCode::USAGE, "--parts " + std::to_string(args.parts) + ": the plan " + args.source + " has " +
                                      std::to_string(bench.plan().parts()) + " pieces");
  }
  progress.clear();
  // The pipeline and replicas modes use every device at once.
  std::vector<DeviceSpec> devices;
  for (const std::string& device : bench.options().devices) devices.push_back(parse_device(device));
  const std::string contention = contention_warning(devices);
  if (!contention.empty()) context.log("warning: " + contention);
  context.debug("bench: plan " + bench.plan_dir() + " (sha256 " + bench.plan_hash() + ")");

  auto printer = context.printer();
  BenchRows rows(bench, *printer, context.format == Format::MD);
  const detail::BenchSummary summary = bench.run([&](const detail::Measurement& m) {
    progress.clear();
    rows.add(m);
  });
  rows.finish(summary);
  if (!args.trace_file.empty()) context.log("bench: trace of one run written to " + args.trace_file);
  return summary;
}

void run_bench(CliContext& context, const BenchArgs& args) {
  auto progress = context.progress();
  detail::BenchOptions options = bench_options(args, *progress);
  // Under mpirun: pipeline mode with its stages on the ranks; rank 0 measures and prints, the others serve.
  std::optional<RankSession> session;
  options.ranks = join_ranks(args.ranks, args.source, session, context);
  const detail::BenchSummary summary = bench_on_rank(context, args, *progress, options, session);
  // Every rank is done: the job ends normally (a throw with the session open would abort it), and a mismatch then
  // exits with its own status, as in one process.
  const bool client = !session || session->rank() == 0;
  session.reset();
  if (!client) return;
  if (!summary.verified()) {
    std::string list;
    for (const std::string& m : summary.mismatches) list += (list.empty() ? "" : "; ") + m;
    throw Error(ErrorCode::VERIFY_MISMATCH,
                "bench: the modes returned different outputs (atol " + format_number(args.atol) + "): " + list);
  }
  context.log("bench: every mode returned the same outputs for every N (max |diff| " +
              format_number(summary.max_abs_diff) + ", atol " + format_number(args.atol) + ")");
}

}  // namespace

void add_bench_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* command = app.add_subcommand(
      "bench",
      "The seed's experiment: N images through sequence, pipeline and replicas, repeated; one row per (mode, N) with "
      "the seed's columns, throughput against its bound, latency, busy and bubble fractions");
  command->add_option("SOURCE", args->source, "a .onnx model (split on the fly) or a plan directory")->required();
  command->add_option("-n,--parts", args->parts, "pieces to split a model into (default: one per device)")
      ->check(at_least(1));
  add_devices_option(*command, args->devices, "one per stage (sequence runs on the first, replicas on each)")
      ->required();
  add_balance_option(*command, args->balance,
                     "splitting a model: bytes, flops, time (measured on the stage device kind), auto")
      ->capture_default_str();
  command
      ->add_option("--images", args->images,
                   "image counts N: A:B:STEP (Python's range, stop excluded), A:B, N, or a comma list of those")
      ->capture_default_str();
  command->add_option("--repeat", args->repeat, "measured runs per (mode, N), averaged")
      ->check(at_least(1))
      ->capture_default_str();
  command
      ->add_option("--warmup", args->warmup,
                   "seconds of unmeasured runs per mode before its sweep (and per session before timing it alone); "
                   "one run at least")
      ->check(at_least(0))
      ->capture_default_str();
  command
      ->add_option("--alone-runs", args->alone_runs,
                   "requests timed through each session by itself, nothing else running (bound_throughput)")
      ->check(at_least(1))
      ->capture_default_str();
  command
      ->add_option("--modes", args->modes,
                   "comma list of sequence, pipeline, replicas; the first is the "
                   "reference the others' outputs are compared with")
      ->capture_default_str();
  command
      ->add_option("--micro-batch", args->micro_batch,
                   "send the N images as one batch cut into micro-batches of this many rows (0: one request per "
                   "image)")
      ->check(at_least(0))
      ->capture_default_str();
  command->add_option("--max-inflight", args->max_inflight, "requests in flight at most")
      ->check(at_least(1))
      ->capture_default_str();
  command->add_option("--atol", args->atol, "outputs of the modes must agree within this")->capture_default_str();
  command->add_option("--seed", args->seed, "seed of the random images")->capture_default_str();
  command->add_option("--profile-runs", args->profile_runs, "runs measured for --balance time")
      ->check(at_least(1))
      ->capture_default_str();
  add_dims_option(*command, args->dims);
  add_inputs_option(*command, args->inputs);
  command->add_option("--trace", args->trace_file,
                      "write a Chrome/Perfetto trace of one run (pipeline mode, largest N, last repetition)");
  add_rank_options(*command, args->ranks);
  command->callback([&context, args] { run_bench(context, *args); });
}

}  // namespace onnxpipe::cli
