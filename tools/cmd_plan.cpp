// onnxpipe plan MODEL --devices D1=CAP,D2=CAP,...: the partition that fits the devices' memory, per stage what it
// needs, and the throughput bound, before anything is written or loaded.
#include <memory>

#include "commands.h"
#include "onnxpipe/device.h"
#include "onnxpipe/placement.h"
#include "options.h"

namespace onnxpipe::cli {

namespace {

struct PlanArgs {
  std::string model;
  std::string devices;
  int parts = 0;
  std::string balance = balance_name(SplitOptions().balance);
  std::string cuts;
  std::vector<std::string> dims;
  PlacementArgs placement;
  std::string costs_file;
};

Cell mb_or_null(int64_t bytes) { return bytes < 0 ? Cell() : Cell(megabytes(bytes)); }

void run_plan(const CliContext& context, const PlanArgs& args) {
  const PlacementOptions placement = placement_options(args.devices, args.placement, args.parts);
  const int parts = static_cast<int>(placement.devices.size());
  SplitOptions split;
  split.parts = parts;
  split.balance = balance_from_name(args.balance);
  if (!args.cuts.empty()) split.cuts = split_list(args.cuts, "--cut");
  split.dims = parse_dims(args.dims);
  split.costs_file = args.costs_file;
  auto progress = context.progress();
  split.progress = progress->callback();
  const PlacementReport report = plan_placement(args.model, split, placement);
  progress->clear();

  auto printer = context.printer();
  std::vector<Row> rows;
  for (const StageMemory& stage : report.stages) {
    rows.push_back({stage.index, stage.device, stage.node_count, stage.first_node, stage.last_node, stage.cost,
                    megabytes(stage.weights), megabytes(stage.activations), mb_or_null(stage.activations_estimate),
                    megabytes(stage.in_flight), megabytes(stage.overhead), megabytes(stage.total),
                    mb_or_null(stage.capacity), mb_or_null(stage.headroom())});
  }
  printer->table("stages",
                 {{"stage", FieldType::INT},
                  {"device", FieldType::STRING},
                  {"nodes", FieldType::INT},
                  {"first_node", FieldType::STRING, -1, false},
                  {"last_node", FieldType::STRING, -1, false},
                  {"cost", FieldType::FLOAT},
                  {"weights_mb", FieldType::FLOAT, 1},
                  {"activations_mb", FieldType::FLOAT, 1},
                  {"activations_estimate_mb", FieldType::FLOAT, 1, false},
                  {"in_flight_mb", FieldType::FLOAT, 1},
                  {"overhead_mb", FieldType::FLOAT, 1},
                  {"total_mb", FieldType::FLOAT, 1},
                  {"cap_mb", FieldType::FLOAT, 1},
                  {"headroom_mb", FieldType::FLOAT, 1}},
                 rows);
  // Time costs are microseconds per item: the bottleneck bounds the pipeline at 1e6 / max_cost items per second.
  const bool timed = report.cost_unit == "us" && report.predicted_max_cost > 0;
  printer->record("prediction",
                  {{"parts", FieldType::INT},
                   {"balance", FieldType::STRING},
                   {"cost_unit", FieldType::STRING},
                   {"max_cost", FieldType::FLOAT},
                   {"bound_items_per_s", FieldType::FLOAT, 1},
                   {"host_available_mb", FieldType::FLOAT, 0}},
                  {parts, report.balance, report.cost_unit, report.predicted_max_cost,
                   timed ? Cell(1e6 / report.predicted_max_cost) : Cell(), mb_or_null(report.host_available)});
  printer->finish();
}

}  // namespace

void add_plan_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* command = app.add_subcommand("plan",
                                         "Find the split whose pieces fit the devices' memory (D=CAP) and show what "
                                         "each stage needs; writes nothing");
  command->add_option("MODEL", args->model, "the .onnx file")->required();
  add_devices_option(*command, args->devices, "one per piece, each optionally =CAP (cuda:0=40GiB,cpu:2@0-1=6GiB)")
      ->required();
  command->add_option("-n,--parts", args->parts, "number of pieces (the number of devices)")->check(at_least(1));
  add_balance_option(*command, args->balance, "cost to balance, as split's")->capture_default_str();
  command->add_option("--cut", args->cuts, "T1,T2,...: cut right after the producers of these tensors, in order");
  add_dims_option(*command, args->dims);
  add_placement_options(*command, args->placement);
  command->add_option("--costs", args->costs_file, "reuse the node costs an earlier split saved (DIR/costs.json)");
  command->callback([&context, args] { run_plan(context, *args); });
}

}  // namespace onnxpipe::cli
