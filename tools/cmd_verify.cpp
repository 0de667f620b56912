// onnxpipe verify MODEL DIR: runs the model and the chained pieces on the same inputs and compares every output.
#include <cstdio>
#include <memory>
#include <optional>
#include <tuple>

#include "commands.h"
#include "onnxpipe/error.h"
#include "onnxpipe/verify.h"
#include "options.h"

namespace onnxpipe::cli {

namespace {

struct VerifyArgs {
  std::string model;
  std::string plan_dir;
  std::vector<std::string> inputs;
  std::vector<std::string> dims;
  std::optional<double> rtol;
  std::optional<double> atol;
  std::string check_stat = "elementwise";
  std::string inputs_from;
  std::string expected;
  std::string int_range = std::to_string(VerifyOptions().int_low) + "," + std::to_string(VerifyOptions().int_high);
  uint64_t seed = VerifyOptions().seed;
};

void run_verify(const CliContext& context, const VerifyArgs& args) {
  VerifyOptions options;
  options.dims = parse_dims(args.dims);
  options.rtol = args.rtol;
  options.atol = args.atol;
  options.check_stat = error_stat_from_name(args.check_stat);
  options.inputs_dir = args.inputs_from;
  options.expected_dir = args.expected;
  options.inputs = read_inputs(args.inputs, &options.sequences);
  std::tie(options.int_low, options.int_high) = parse_int_range(args.int_range, "--int-range");
  options.seed = args.seed;

  context.debug("verify: " + std::to_string(options.inputs.size()) + " inputs given, the others random (seed " +
                std::to_string(options.seed) + ", integers in [" + std::to_string(options.int_low) + ", " +
                std::to_string(options.int_high) + "))");
  VerifyReport report = verify_split(args.model, args.plan_dir, options);

  char tolerance[96];
  std::snprintf(tolerance, sizeof tolerance, "rtol %g, atol %g", report.tolerance.rtol, report.tolerance.atol);
  const std::string stat = error_stat_name(report.check_stat);
  context.log("verify: " + std::string(tolerance) + " (" + report.tolerance.why + "), " + stat +
              " error checked against the " + (report.reference == "model" ? "whole model" : "given expected outputs"));
  const std::string divergence = report.divergence ? report.divergence->message : std::string();

  auto printer = context.printer();
  std::vector<Row> rows;
  int failed = 0;
  for (const OutputCheck& check : report.outputs) {
    const std::optional<ValueDesc>& declared = check.declared;
    const ErrorStats& e = check.stats;
    rows.push_back({check.name,
                    check.sequence_of != DType::UNDEFINED ? Cell("sequence of " + dtype_name(check.sequence_of))
                    : declared                            ? Cell(dtype_name(declared->dtype))
                                                          : Cell(),
                    declared ? Cell(declared->dims_text(", ")) : Cell(),
                    e.max_abs,
                    e.max_rel,
                    e.mean_abs,
                    e.median_abs,
                    e.p99_abs,
                    e.mean_rel,
                    e.median_rel,
                    e.max_ulp,
                    check.diff.mismatches,
                    check.diff.shape_mismatch,
                    check.diff.bitwise_equal,
                    report.tolerance.rtol,
                    report.tolerance.atol,
                    stat,
                    report.tolerance.why,
                    report.reference,
                    check.pass ? Cell() : Cell(divergence),
                    check.pass});
    if (!check.pass) ++failed;
  }
  printer->table("",
                 {{"output", FieldType::STRING},
                  {"dtype", FieldType::STRING},
                  {"shape", FieldType::STRING},
                  {"max_abs", FieldType::FLOAT},
                  {"max_rel", FieldType::FLOAT},
                  {"mean_abs", FieldType::FLOAT},
                  {"median_abs", FieldType::FLOAT, -1, false},
                  {"p99_abs", FieldType::FLOAT},
                  {"mean_rel", FieldType::FLOAT, -1, false},
                  {"median_rel", FieldType::FLOAT, -1, false},
                  {"max_ulp", FieldType::FLOAT},
                  {"mismatches", FieldType::INT},
                  {"shape_mismatch", FieldType::BOOL, -1, false},
                  {"bitwise", FieldType::BOOL},
                  {"rtol", FieldType::FLOAT, -1, false},
                  {"atol", FieldType::FLOAT, -1, false},
                  {"check_stat", FieldType::STRING, -1, false},
                  {"tolerance_why", FieldType::STRING, -1, false},
                  {"reference", FieldType::STRING, -1, false},
                  {"divergence", FieldType::STRING, -1, false},
                  {"pass", FieldType::BOOL}},
                 rows);
  printer->finish();

  int total = static_cast<int>(report.outputs.size());
  if (failed > 0) {
    if (!divergence.empty()) context.log("verify: " + divergence);
    throw Error(ErrorCode::VERIFY_MISMATCH, "verify: " + std::to_string(failed) + " of " + std::to_string(total) +
                                                " outputs differ beyond " + tolerance +
                                                (report.check_stat == ErrorStat::ELEMENTWISE ? "" : " (" + stat + ")"));
  }
  context.log("verify: all " + std::to_string(total) + " outputs match (" + tolerance + ", " + stat + ")");
}

}  // namespace

void add_verify_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* command = app.add_subcommand("verify",
                                         "Run the model and its pieces on the same inputs with ONNX Runtime "
                                         "on CPU and compare every output (exit 3 on a mismatch)");
  command->add_option("MODEL", args->model, "the .onnx file that was split")->required();
  command->add_option("DIR", args->plan_dir, "the directory split wrote (plan.json and pieces)")->required();
  add_inputs_option(*command, args->inputs);
  add_dims_option(*command, args->dims);
  command
      ->add_option("--rtol", args->rtol,
                   "relative tolerance (default: 1e-5 for fp32 graphs, 1e-3 with float16 weights or crossing "
                   "values, 1e-2 with bfloat16)")
      ->check(at_least(0));
  command->add_option("--atol", args->atol, "absolute tolerance (default: 1e-6 fp32, 1e-3 float16, 1e-2 bfloat16)")
      ->check(at_least(0));
  command
      ->add_option("--check-error-stat", args->check_stat,
                   "which error must be within tolerance: elementwise (every element), or the max, mean or median "
                   "(passes when that statistic of the abs or of the rel error is)")
      ->check(CLI::IsMember({"elementwise", "elemwise", "max", "mean", "median"}))
      ->capture_default_str();
  command->add_option("--inputs-from", args->inputs_from,
                      "DIR of input_K.pb (as the ONNX test data numbers them) or NAME.npy; --input overrides");
  command->add_option("--expected", args->expected,
                      "DIR of output_K.pb or NAME.npy: compare the pieces with these instead of the whole model");
  command->add_option("--int-range", args->int_range, "LO,HI: random integer inputs in [LO, HI)")
      ->capture_default_str();
  command->add_option("--seed", args->seed, "seed of the random inputs")->capture_default_str();
  command->callback([&context, args] { run_verify(context, *args); });
}

}  // namespace onnxpipe::cli
