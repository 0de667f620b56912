// onnxpipe verify MODEL DIR: runs the model and the chained pieces on the same inputs and compares every output.
#include <cstdio>
#include <memory>
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
  double rtol = VerifyOptions().rtol;
  double atol = VerifyOptions().atol;
  std::string int_range = std::to_string(VerifyOptions().int_low) + "," + std::to_string(VerifyOptions().int_high);
  uint64_t seed = VerifyOptions().seed;
};

void run_verify(const CliContext& context, const VerifyArgs& args) {
  VerifyOptions options;
  options.inputs = read_inputs(args.inputs);
  options.dims = parse_dims(args.dims);
  options.rtol = args.rtol;
  options.atol = args.atol;
  std::tie(options.int_low, options.int_high) = parse_int_range(args.int_range, "--int-range");
  options.seed = args.seed;

  context.debug("verify: " + std::to_string(options.inputs.size()) + " inputs given, the others random (seed " +
                std::to_string(options.seed) + ", integers in [" + std::to_string(options.int_low) + ", " +
                std::to_string(options.int_high) + "))");
  VerifyReport report = verify_split(args.model, args.plan_dir, options);

  auto printer = context.printer();
  std::vector<Row> rows;
  int failed = 0;
  for (const OutputCheck& check : report.outputs) {
    const std::optional<ValueDesc>& declared = check.declared;
    rows.push_back({check.name, declared ? Cell(dtype_name(declared->dtype)) : Cell(),
                    declared ? Cell(declared->dims_text(", ")) : Cell(), check.diff.max_abs, check.diff.max_rel,
                    check.diff.mismatches, check.diff.shape_mismatch, check.diff.bitwise_equal, check.diff.pass()});
    if (!check.diff.pass()) ++failed;
  }
  printer->table("",
                 {{"output", FieldType::STRING},
                  {"dtype", FieldType::STRING},
                  {"shape", FieldType::STRING},
                  {"max_abs", FieldType::FLOAT},
                  {"max_rel", FieldType::FLOAT},
                  {"mismatches", FieldType::INT},
                  {"shape_mismatch", FieldType::BOOL, -1, false},
                  {"bitwise", FieldType::BOOL},
                  {"pass", FieldType::BOOL}},
                 rows);
  printer->finish();

  char tolerance[96];
  std::snprintf(tolerance, sizeof tolerance, "rtol %g, atol %g", options.rtol, options.atol);
  int total = static_cast<int>(report.outputs.size());
  if (failed > 0) {
    throw Error(ErrorCode::VERIFY_MISMATCH, "verify: " + std::to_string(failed) + " of " + std::to_string(total) +
                                                " outputs differ beyond " + tolerance);
  }
  context.log("verify: all " + std::to_string(total) + " outputs match (" + tolerance + ")");
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
  command->add_option("--rtol", args->rtol, "relative tolerance")->check(at_least(0))->capture_default_str();
  command->add_option("--atol", args->atol, "absolute tolerance")->check(at_least(0))->capture_default_str();
  command->add_option("--int-range", args->int_range, "LO,HI: random integer inputs in [LO, HI)")
      ->capture_default_str();
  command->add_option("--seed", args->seed, "seed of the random inputs")->capture_default_str();
  command->callback([&context, args] { run_verify(context, *args); });
}

}  // namespace onnxpipe::cli
