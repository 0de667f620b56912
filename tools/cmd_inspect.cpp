// onnxpipe inspect MODEL: what a model holds and where it can be cut.
#include <algorithm>
#include <memory>

#include "commands.h"
#include "onnxpipe/split.h"
#include "options.h"

namespace onnxpipe::cli {

namespace {

struct InspectArgs {
  std::string model;
  std::vector<std::string> dims;
  std::string balance = balance_name(InspectOptions().balance);
  int candidates = InspectOptions().candidates;
};

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i ? separator : "") + items[i];
  return text;
}

void run_inspect(const CliContext& context, const InspectArgs& args) {
  InspectOptions options;
  options.dims = parse_dims(args.dims);
  options.balance = balance_from_name(args.balance);
  options.candidates = args.candidates;
  const ModelSummary summary = inspect_model(args.model, options);

  std::vector<std::string> opsets;
  for (const auto& [domain, version] : summary.opsets) {
    opsets.push_back((domain.empty() ? "ai.onnx" : domain) + " " + std::to_string(version));
  }

  auto printer = context.printer();
  printer->record("model",
                  {{"path", FieldType::STRING},
                   {"file_mb", FieldType::FLOAT, 2},
                   {"ir_version", FieldType::INT},
                   {"producer", FieldType::STRING},
                   {"opsets", FieldType::STRING},
                   {"nodes", FieldType::INT},
                   {"weights", FieldType::INT},
                   {"weight_mb", FieldType::FLOAT, 2},
                   {"external_data", FieldType::BOOL},
                   {"functions", FieldType::INT},
                   {"boundaries", FieldType::INT},
                   {"balance", FieldType::STRING}},
                  {summary.path, megabytes(summary.file_bytes), summary.ir_version, summary.producer,
                   join(opsets, ", "), summary.node_count, summary.weight_count, megabytes(summary.weight_bytes),
                   summary.external_data, summary.function_count, summary.boundary_count, summary.balance});

  std::vector<Row> values;
  for (const auto* list : {&summary.inputs, &summary.outputs}) {
    for (const ValueDesc& value : *list) {
      values.push_back({list == &summary.inputs ? "input" : "output", value.name, dtype_name(value.dtype),
                        value.dims_text(", "), value.bytes >= 0 ? Cell(value.bytes) : Cell()});
    }
  }
  printer->table("values",
                 {{"kind", FieldType::STRING},
                  {"name", FieldType::STRING},
                  {"dtype", FieldType::STRING},
                  {"shape", FieldType::STRING},
                  {"bytes", FieldType::INT}},
                 values);

  std::vector<std::pair<std::string, int64_t>> op_counts(summary.op_counts.begin(), summary.op_counts.end());
  std::stable_sort(op_counts.begin(), op_counts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<Row> ops;
  for (const auto& [op, count] : op_counts) ops.push_back({op, count});
  printer->table("ops", {{"op", FieldType::STRING}, {"count", FieldType::INT}}, ops);

  // Each crossing tensor with the bytes the splitter counts for it: "name (N B)", or "name (~N B estimated)".
  std::vector<Row> cuts;
  for (const CutCandidate& cut : summary.best_cuts) {
    std::vector<std::string> tensors;
    for (size_t i = 0; i < cut.tensors.size(); ++i) {
      const bool estimated =
          std::find(cut.estimated.begin(), cut.estimated.end(), cut.tensors[i]) != cut.estimated.end();
      tensors.push_back(cut.tensors[i] + " (" + (estimated ? "~" : "") + std::to_string(cut.tensor_bytes[i]) + " B" +
                        (estimated ? " estimated)" : ")"));
    }
    cuts.push_back(
        {cut.boundary, cut.after_node, 100 * cut.cost_before_share, cut.crossing_bytes, join(tensors, ", ")});
  }
  printer->table("cut_candidates",
                 {{"boundary", FieldType::INT},
                  {"after_node", FieldType::STRING},
                  {"cost_before_pct", FieldType::FLOAT, 1},
                  {"crossing_bytes", FieldType::INT},
                  {"tensors", FieldType::STRING}},
                 cuts);
  printer->finish();
}

}  // namespace

void add_inspect_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* command = app.add_subcommand("inspect",
                                         "Show a model's nodes, opsets, weights, inputs/outputs and the "
                                         "best places to cut it");
  command->add_option("MODEL", args->model, "the .onnx file")->required();
  add_dims_option(*command, args->dims);
  add_balance_option(*command, args->balance, "cost used to place the candidates: bytes, flops, time or auto")
      ->capture_default_str();
  command->add_option("--candidates", args->candidates, "how many cut candidates to show")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->callback([&context, args] { run_inspect(context, *args); });
}

}  // namespace onnxpipe::cli
