// onnxpipe split MODEL -n N -o DIR: writes the pieces and plan.json, and shows how balanced the split should be.
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>

#include "commands.h"
#include "onnxpipe/split.h"
#include "options.h"

namespace onnxpipe::cli {

namespace {

struct SplitArgs {
  std::string model;
  int parts = 0;
  std::string balance = balance_name(SplitOptions().balance);
  std::string cuts;
  std::vector<std::string> dims;
  std::vector<std::string> inputs;
  std::string output_dir;
  bool force = false;
  int profile_runs = SplitOptions().profile_runs;
  std::string device = SplitOptions().device;
  std::string costs_file;
  std::string weights = weight_storage_name(SplitOptions().weights);
  std::string devices;  // with capacities: the split whose pieces fit them, as plan finds it
  PlacementArgs placement;
};

// Sum of the values' bytes; null when one of them is not known.
Cell total_bytes(const std::vector<ValueDesc>& values) {
  int64_t total = 0;
  for (const ValueDesc& value : values) {
    if (value.bytes < 0) return Cell();
    total += value.bytes;
  }
  return total;
}

std::string names(const std::vector<ValueDesc>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + values[i].name;
  return text;
}

Cell ratio(double numerator, double denominator) { return denominator > 0 ? Cell(numerator / denominator) : Cell(); }

void run_split(const CliContext& context, const SplitArgs& args) {
  SplitOptions options;
  options.parts = args.parts;
  if (!args.devices.empty()) {
    options.placement = placement_options(args.devices, args.placement, args.parts);
    options.parts = static_cast<int>(options.placement.devices.size());
  } else if (args.parts < 1) {
    throw Error(ErrorCode::USAGE, "give the number of pieces with -n, or the devices with --devices");
  }
  options.balance = balance_from_name(args.balance);
  if (!args.cuts.empty()) options.cuts = split_list(args.cuts, "--cut");
  options.dims = parse_dims(args.dims);
  options.inputs = read_inputs(args.inputs);
  options.output_dir = args.output_dir;
  options.force = args.force;
  options.profile_runs = args.profile_runs;
  options.device = args.device;
  options.costs_file = args.costs_file;
  options.weights = weight_storage_from_name(args.weights);
  auto progress = context.progress();
  options.progress = progress->callback();

  auto start = std::chrono::steady_clock::now();
  Plan plan = split_model(args.model, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress->clear();
  char line[256];
  std::snprintf(line, sizeof line, "split: %d pieces in %s (%.2f s)", plan.parts(), args.output_dir.c_str(), seconds);
  context.log(line);
  context.debug("split: balanced by " + plan.balance + " (" + plan.cost_unit + "), source sha256 " +
                plan.source_sha256);

  double total_cost = 0;
  for (const PieceDesc& piece : plan.pieces) total_cost += piece.cost;

  auto printer = context.printer();
  std::vector<Row> pieces;
  for (const PieceDesc& piece : plan.pieces) {
    pieces.push_back({piece.index, piece.file, piece.node_count, megabytes(piece.weight_bytes),
                      megabytes(piece.duplicated_bytes), piece.cost,
                      total_cost > 0 ? Cell(100 * piece.cost / total_cost) : Cell(), total_bytes(piece.inputs),
                      total_bytes(piece.outputs), names(piece.inputs), names(piece.outputs)});
  }
  printer->table("pieces",
                 {{"piece", FieldType::INT},
                  {"file", FieldType::STRING},
                  {"nodes", FieldType::INT},
                  {"weight_mb", FieldType::FLOAT, 2},
                  {"dup_mb", FieldType::FLOAT, 2},
                  {"cost", FieldType::FLOAT, -1, false},
                  {"cost_share_pct", FieldType::FLOAT, 1},
                  {"in_bytes", FieldType::INT},
                  {"out_bytes", FieldType::INT},
                  {"inputs", FieldType::STRING, -1, false},
                  {"outputs", FieldType::STRING, -1, false}},
                 pieces);

  // No cut-only split goes under the heaviest node, so the bound is the larger of it and the ideal share.
  double bound = std::max(plan.ideal_cost, plan.heaviest_node_cost);
  printer->record("prediction",
                  {{"parts", FieldType::INT},
                   {"balance", FieldType::STRING},
                   {"cost_unit", FieldType::STRING},
                   {"max_cost", FieldType::FLOAT},
                   {"ideal_cost", FieldType::FLOAT},
                   {"heaviest_node_cost", FieldType::FLOAT},
                   {"max_over_ideal", FieldType::FLOAT, 3},
                   {"lower_bound", FieldType::FLOAT},
                   {"max_over_bound", FieldType::FLOAT, 3},
                   {"output_dir", FieldType::STRING},
                   {"split_s", FieldType::FLOAT, 2}},
                  {plan.parts(), plan.balance, plan.cost_unit, plan.predicted_max_cost, plan.ideal_cost,
                   plan.heaviest_node_cost, ratio(plan.predicted_max_cost, plan.ideal_cost), bound,
                   ratio(plan.predicted_max_cost, bound), args.output_dir, seconds});
  printer->finish();
}

}  // namespace

void add_split_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<SplitArgs>();
  CLI::App* command = app.add_subcommand("split",
                                         "Split a model into N consecutive pieces balanced by cost; writes "
                                         "DIR/piece_K.onnx and DIR/plan.json");
  command->add_option("MODEL", args->model, "the .onnx file")->required();
  command->add_option("-n,--parts", args->parts, "number of pieces (the number of --devices when those are given)")
      ->check(at_least(1));
  command->add_option("-o,--output", args->output_dir, "output directory")->required();
  add_balance_option(*command, args->balance,
                     "cost to balance: bytes (weights), flops, time (measured with ONNX Runtime), auto (time when "
                     "the model runs on the device, else flops)")
      ->capture_default_str();
  command->add_option("--cut", args->cuts, "T1,T2,...: cut right after the producers of these tensors, in order");
  add_dims_option(*command, args->dims);
  add_inputs_option(*command, args->inputs);
  command->add_flag("--force", args->force, "replace an existing output directory");
  command->add_option("--profile-runs", args->profile_runs, "runs measured for --balance time (one more is dropped)")
      ->check(at_least(1))
      ->capture_default_str();
  command->add_option("--device", args->device, "where --balance time measures: cpu, cpu:T, cuda:K")
      ->capture_default_str();
  command->add_option("--costs", args->costs_file, "reuse the node costs an earlier split saved (DIR/costs.json)");
  command
      ->add_option("--weights", args->weights,
                   "external data of the source: link (hard-link its data files into DIR, pieces point into them: "
                   "no copy; same filesystem), copy (each piece its own .data), auto (link when possible)")
      ->check(CLI::IsMember({"auto", "link", "copy"}))
      ->capture_default_str();
  add_devices_option(*command, args->devices,
                     "one per piece, each optionally =CAP: the fastest split whose pieces fit them (as plan)");
  add_placement_options(*command, args->placement);
  command->callback([&context, args] { run_split(context, *args); });
}

}  // namespace onnxpipe::cli
