#include "divergence.h"

#include <cstdio>
#include <filesystem>
#include <set>

#include "error_stats.h"
#include "measure.h"

namespace onnxpipe::detail {
namespace {

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", value);
  return text;
}

bool low_precision(DType dtype) { return dtype == DType::FLOAT16 || dtype == DType::BFLOAT16; }

// A value of the pieces' run against the whole model's: its stats when it differs under the tolerance, else none.
std::optional<ErrorStats> differs(const Value& value, const Tensor& reference, const Tolerance& tolerance,
                                  ErrorStat stat) {
  if (value.dtype() == DType::UNDEFINED) return std::nullopt;  // a sequence: ORT cannot hand it over as a tensor
  const Tensor tensor = value.to_tensor();
  const ErrorStats stats = error_stats(tensor, reference);
  const Difference diff = compare(tensor, reference, tolerance.rtol, tolerance.atol);
  if (stat_passes(stat, stats, diff, tolerance.rtol, tolerance.atol)) return std::nullopt;
  return stats;
}

}  // namespace

DType lowest_precision(DType a, DType b) {
  if (a == DType::BFLOAT16 || b == DType::BFLOAT16) return DType::BFLOAT16;
  if (a == DType::FLOAT16 || b == DType::FLOAT16) return DType::FLOAT16;
  return DType::FLOAT;
}

std::optional<Divergence> locate_divergence(const Model& model, const Plan& plan,
                                            const std::map<std::string, Value>& inputs,
                                            const std::map<std::string, Value>& pool, const Tolerance& tolerance,
                                            ErrorStat stat) {
  std::set<std::string> outputs;
  for (const ValueDesc& output : model.graph().outputs) outputs.insert(output.name);
  std::vector<std::string> exposed;
  for (const CrossingValue& value : plan.values)
    if (!outputs.count(value.name) && !inputs.count(value.name)) exposed.push_back(value.name);
  SessionConfig config;
  config.device = "cpu";
  config.external_data_dir = std::filesystem::path(model.graph().path).parent_path().string();
  if (config.external_data_dir.empty()) config.external_data_dir = ".";
  const Session whole = Session::from_bytes(model.serialize(exposed), config);
  std::vector<std::string> wanted;
  for (const ValueDesc& output : whole.outputs())
    if (output.dtype != DType::UNDEFINED) wanted.push_back(output.name);
  std::map<std::string, Tensor> reference;
  for (const auto& [name, value] : run_on(whole, inputs, wanted)) reference.emplace(name, value.to_tensor());

  for (const PieceDesc& piece : plan.pieces) {
    DType precision = DType::FLOAT;
    for (const ValueDesc& input : piece.inputs) {
      if (inputs.count(input.name)) continue;
      const auto made = pool.find(input.name);
      const auto expected = reference.find(input.name);
      if (made == pool.end() || expected == reference.end()) continue;
      precision = lowest_precision(precision, expected->second.dtype);
      if (const auto stats = differs(made->second, expected->second, tolerance, stat)) {
        Divergence found{piece.index, input.name, true, stats->max_abs, "", false, ""};
        found.message = "piece " + std::to_string(piece.index) + " input " + input.name + " already differs (max abs " +
                        number(stats->max_abs) + ")";
        if (low_precision(expected->second.dtype)) {
          found.precision = dtype_name(expected->second.dtype);
          found.rounding = true;
          found.message += ": rounding at cut " + std::to_string(piece.index) + " (" + found.precision + ")";
        }
        return found;
      }
    }
    for (const ValueDesc& output : piece.outputs) {
      const auto made = pool.find(output.name);
      const auto expected = reference.find(output.name);
      if (made == pool.end() || expected == reference.end()) continue;
      const auto stats = differs(made->second, expected->second, tolerance, stat);
      if (!stats) continue;
      Divergence found{piece.index, output.name, false, stats->max_abs, "", false, ""};
      found.message = "piece " + std::to_string(piece.index) + " output " + output.name + " differs (max abs " +
                      number(stats->max_abs) + ") while its inputs match: ";
      // The whole model keeps a crossing value in fp32 on CPU where the cut stores it in its declared dtype: a
      // piece reading rounded inputs drifts by that rounding, within that precision's tolerance.
      const Tolerance rounded = default_tolerance(precision);
      if (low_precision(precision) &&
          compare(made->second.to_tensor(), expected->second, rounded.rtol, rounded.atol).pass()) {
        found.precision = dtype_name(precision);
        found.rounding = true;
        found.message += "rounding at cut " + std::to_string(piece.index) + " (" + found.precision + "), within " +
                         found.precision + " tolerances";
      } else {
        found.message += "the piece computes differently";
      }
      return found;
    }
  }
  return std::nullopt;
}

}  // namespace onnxpipe::detail
