// Proof that pieces reproduce their model: the same inputs through both, every output compared in the tolerances
// of the precision the graph computes in.
#include "onnxpipe/verify.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <set>

#include "cancel.h"
#include "divergence.h"
#include "error_stats.h"
#include "measure.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "runtime.h"

namespace fs = std::filesystem;

namespace onnxpipe {
namespace {

std::vector<int64_t> concrete_shape(const ValueDesc& desc, const std::map<std::string, int64_t>& dims) {
  std::vector<int64_t> shape;
  for (const auto& dim : desc.dims) {
    if (dim.value >= 0) {
      shape.push_back(dim.value);
    } else {
      auto it = dim.param.empty() ? dims.end() : dims.find(dim.param);
      shape.push_back(it != dims.end() ? it->second : 1);
    }
  }
  return shape;
}

uint16_t float_to_half(float value) {  // values in [0,1): no overflow, subnormals flushed
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  int32_t exponent = int32_t((bits >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return 0;
  return uint16_t((exponent << 10) | ((bits >> 13) & 0x3ff));
}

// An input the caller must give a value for: `why` it cannot be made up (" has no declared shape").
Error needs_value(const std::string& input, const std::string& why) {
  const std::string reason = "input '" + input + "'" + why;
  return Error(ErrorCode::USAGE, reason + ": give a value for it", ArgumentContext{"inputs", input, reason, true});
}

Tensor random_tensor(const ValueDesc& desc, const VerifyOptions& options, std::mt19937_64& rng) {
  Tensor tensor = make_tensor(desc.dtype, concrete_shape(desc, options.dims));
  const int64_t count = tensor.element_count();
  std::uniform_real_distribution<double> real(0.0, 1.0);
  std::uniform_int_distribution<int64_t> integer(options.int_low, options.int_high - 1);
  auto fill = [&](auto* data, auto draw) {
    for (int64_t i = 0; i < count; ++i) data[i] = draw();
  };
  switch (desc.dtype) {
    case DType::FLOAT:
      fill(tensor.as<float>(), [&] { return float(real(rng)); });
      break;
    case DType::DOUBLE:
      fill(tensor.as<double>(), [&] { return real(rng); });
      break;
    case DType::FLOAT16:
      fill(tensor.as<uint16_t>(), [&] { return float_to_half(float(real(rng))); });
      break;
    case DType::BFLOAT16:
      fill(tensor.as<uint16_t>(), [&] {
        float value = float(real(rng));
        uint32_t bits;
        std::memcpy(&bits, &value, 4);
        return uint16_t(bits >> 16);
      });
      break;
    case DType::INT8:
      fill(tensor.as<int8_t>(), [&] { return int8_t(integer(rng)); });
      break;
    case DType::UINT8:
      fill(tensor.as<uint8_t>(), [&] { return uint8_t(integer(rng)); });
      break;
    case DType::INT16:
      fill(tensor.as<int16_t>(), [&] { return int16_t(integer(rng)); });
      break;
    case DType::UINT16:
      fill(tensor.as<uint16_t>(), [&] { return uint16_t(integer(rng)); });
      break;
    case DType::INT32:
      fill(tensor.as<int32_t>(), [&] { return int32_t(integer(rng)); });
      break;
    case DType::UINT32:
      fill(tensor.as<uint32_t>(), [&] { return uint32_t(integer(rng)); });
      break;
    case DType::INT64:
      fill(tensor.as<int64_t>(), [&] { return integer(rng); });
      break;
    case DType::UINT64:
      fill(tensor.as<uint64_t>(), [&] { return uint64_t(integer(rng)); });
      break;
    case DType::BOOL:
      fill(tensor.as<uint8_t>(), [&] { return uint8_t(rng() & 1); });
      break;
    case DType::STRING:
      tensor.strings.resize(size_t(count));
      for (auto& text : tensor.strings) text = std::to_string(integer(rng));
      break;
    default:
      throw needs_value(desc.name, ": cannot make random " + dtype_name(desc.dtype) + " values");
  }
  return tensor;
}

}  // namespace

std::map<std::string, Tensor> make_inputs(const std::vector<ValueDesc>& inputs, const VerifyOptions& options) {
  if (options.int_low >= options.int_high)
    throw Error(ErrorCode::USAGE, "integer range is empty: [" + std::to_string(options.int_low) + ", " +
                                      std::to_string(options.int_high) + ")");
  check_dim_names(inputs, options.dims);
  std::map<std::string, Tensor> result;
  auto check_known = [&inputs](const std::string& name) {
    if (std::any_of(inputs.begin(), inputs.end(), [&](const ValueDesc& d) { return d.name == name; })) return;
    const std::string reason = "the model has no such input";
    throw Error(ErrorCode::USAGE, "given input '" + name + "': " + reason, ArgumentContext{"inputs", name, reason});
  };
  for (const auto& [name, tensor] : options.inputs) {
    check_known(name);
    result[name] = tensor;
  }
  for (const auto& entry : options.sequences) check_known(entry.first);
  std::mt19937_64 rng(options.seed);
  for (const auto& input : inputs) {
    if (result.count(input.name) || options.sequences.count(input.name)) continue;
    if (!input.has_shape) throw needs_value(input.name, " has no declared shape");
    result[input.name] = random_tensor(input, options, rng);
  }
  return result;
}

std::map<std::string, Tensor> read_tensor_dir(const std::string& dir, const std::vector<ValueDesc>& values,
                                              const std::string& prefix,
                                              std::map<std::string, TensorSequence>* sequences) {
  if (!fs::is_directory(dir)) throw Error(ErrorCode::USAGE, dir + ": not a directory");
  std::map<std::string, Tensor> tensors;
  size_t read = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const fs::path npy = fs::path(dir) / (values[i].name + ".npy");
    const fs::path pb = fs::path(dir) / (prefix + std::to_string(i) + ".pb");
    if (fs::exists(npy)) {
      tensors[values[i].name] = read_npy(npy.string());
    } else if (fs::exists(pb) && sequences && values[i].dtype == DType::UNDEFINED) {
      (*sequences)[values[i].name] = read_sequence_pb(pb.string());
    } else if (fs::exists(pb)) {
      tensors[values[i].name] = read_tensor_pb(pb.string());
    } else {
      continue;
    }
    ++read;
  }
  if (read == 0)
    throw Error(ErrorCode::USAGE, dir + ": no " + prefix + "N.pb or NAME.npy file for any of the " +
                                      std::to_string(values.size()) + " values");
  return tensors;
}

bool VerifyReport::pass() const {
  return std::all_of(outputs.begin(), outputs.end(), [](const OutputCheck& c) { return c.pass; });
}

std::map<std::string, Tensor> run_pieces(const std::string& plan_dir, const std::map<std::string, Tensor>& inputs) {
  return run_pieces(Plan::load(plan_dir), plan_dir, inputs);
}

namespace {

// The model's input values as ORT takes them: tensors wrapped, sequences copied into ORT.
std::map<std::string, detail::Value> feeds(const std::map<std::string, Tensor>& inputs,
                                           const std::map<std::string, TensorSequence>& sequences) {
  std::map<std::string, detail::Value> values;
  for (const auto& [name, tensor] : inputs) values.emplace(name, detail::Value::from_tensor(tensor));
  for (const auto& [name, sequence] : sequences) {
    try {
      values.emplace(name, detail::Value::from_sequence(sequence));
    } catch (const Error& e) {
      throw e.with_context("input '" + name + "'");
    }
  }
  return values;
}

// Runs the pieces on `feeds`: the pool then holds the model inputs and every value a piece made. `cancelled` is asked
// before each piece.
std::map<std::string, detail::Value> piece_pool(const Plan& plan, const std::string& plan_dir,
                                                std::map<std::string, detail::Value> pool,
                                                const std::function<bool()>& cancelled = nullptr) {
  detail::SessionConfig config;
  config.device = "cpu";
  for (const PieceDesc& piece : plan.pieces) {
    detail::check_cancelled(cancelled, "verify");
    detail::run_piece_chain(plan_dir, {piece}, config, pool);
  }
  return pool;
}

const detail::Value& model_output(const std::map<std::string, detail::Value>& pool, const std::string& name) {
  auto it = pool.find(name);
  if (it == pool.end()) throw Error(ErrorCode::VERIFY_MISMATCH, "output '" + name + "' is made by no piece");
  return it->second;
}

// An output as compared: a tensor, or a sequence's tensors end to end as one 1-D tensor, with the shapes of its
// tensors (which must match too).
struct Comparable {
  Tensor tensor;
  std::optional<std::vector<std::vector<int64_t>>> shapes;
};

Comparable comparable(Tensor tensor) { return Comparable{std::move(tensor), std::nullopt}; }

Comparable comparable(const TensorSequence& sequence) {
  Comparable result;
  result.tensor.dtype = sequence.dtype;
  result.shapes.emplace();
  int64_t count = 0;
  for (const Tensor& item : sequence.tensors) {
    result.shapes->push_back(item.shape);
    count += item.element_count();
    result.tensor.data.insert(result.tensor.data.end(), item.data.begin(), item.data.end());
    result.tensor.strings.insert(result.tensor.strings.end(), item.strings.begin(), item.strings.end());
  }
  result.tensor.shape = {count};
  return result;
}

Comparable comparable(const detail::Value& value) {
  return value.is_sequence() ? comparable(value.to_sequence()) : comparable(value.to_tensor());
}

// Error(INVALID_DATA) for a value read as a sequence that the model declares as an optional or a map: their files
// parse alike (an OptionalProto of a tensor is a SequenceProto of one), only the declaration tells them apart.
void check_sequences(const std::set<std::string>& declared, const VerifyOptions& given) {
  auto check = [&declared](const std::map<std::string, TensorSequence>& values, const std::string& what) {
    for (const auto& entry : values)
      if (!declared.count(entry.first))
        throw Error(ErrorCode::INVALID_DATA, what + " '" + entry.first +
                                                 "' is given as a sequence but is not one (an optional or a map?): "
                                                 "onnxpipe takes tensors and sequences of tensors");
  };
  check(given.sequences, "input");
  check(given.expected_sequences, "output");
}

// The defaults of the lowest precision among the graph's float weights and the plan's crossing values, unless given.
Tolerance choose_tolerance(const detail::GraphDesc& graph, const Plan& plan, const VerifyOptions& options) {
  DType lowest = DType::FLOAT;
  std::vector<std::string> weights, values;
  auto note = [&lowest](DType dtype, const std::string& name, std::vector<std::string>& names) {
    if (dtype != DType::FLOAT16 && dtype != DType::BFLOAT16) return;
    lowest = detail::lowest_precision(lowest, dtype);
    names.push_back(name + " (" + dtype_name(dtype) + ")");
  };
  for (const auto& [name, weight] : graph.weights) note(weight.dtype, name, weights);
  std::set<std::string> seen;
  for (const PieceDesc& piece : plan.pieces)
    for (const ValueDesc& value : piece.outputs)
      if (seen.insert(value.name).second) note(value.dtype, value.name, values);
  Tolerance tolerance = detail::default_tolerance(lowest);
  auto first = [](const std::vector<std::string>& names, const std::string& what) {
    if (names.empty()) return std::string();
    return std::to_string(names.size()) + " " + what + " such as " + names.front();
  };
  if (lowest == DType::FLOAT) {
    tolerance.why = "float32 defaults: no float16 or bfloat16 weight or crossing value";
  } else {
    std::string found = first(weights, "weights");
    const std::string crossing = first(values, "crossing values");
    found += (!found.empty() && !crossing.empty() ? ", " : "") + crossing;
    tolerance.why = tolerance.why + " defaults: " + found;
  }
  if (options.rtol) tolerance.rtol = *options.rtol;
  if (options.atol) tolerance.atol = *options.atol;
  if (options.rtol && options.atol)
    tolerance.why = "given";
  else if (options.rtol || options.atol)
    tolerance.why = std::string(options.rtol ? "rtol" : "atol") + " given; " + tolerance.why;
  return tolerance;
}

}  // namespace

std::map<std::string, Tensor> run_pieces(const Plan& plan, const std::string& plan_dir,
                                         const std::map<std::string, Tensor>& inputs) {
  const std::map<std::string, detail::Value> pool = piece_pool(plan, plan_dir, feeds(inputs, {}));
  std::map<std::string, Tensor> outputs;
  for (const auto& output : plan.model_outputs) outputs[output.name] = model_output(pool, output.name).to_tensor();
  return outputs;
}

VerifyReport verify_split(const std::string& model_path, const std::string& plan_dir, const VerifyOptions& options) {
  const auto check_cancelled = [&options] { detail::check_cancelled(options.cancelled, "verify"); };
  const Plan plan = Plan::load(plan_dir);
  const detail::Model model = detail::Model::load(model_path);
  check_cancelled();
  if (detail::sha256_model(model.graph()) != plan.source_sha256)
    throw Error(ErrorCode::USAGE, plan_dir + " was split from " + plan.source_path + " (sha256 " +
                                      plan.source_sha256.substr(0, 12) + "...), not from " + model_path);
  VerifyOptions given = options;
  if (!options.inputs_dir.empty()) {
    std::map<std::string, TensorSequence> sequences;
    given.inputs.merge(read_tensor_dir(options.inputs_dir, plan.model_inputs, "input_", &sequences));
    given.sequences.merge(sequences);
  }
  if (!options.expected_dir.empty()) {
    std::map<std::string, TensorSequence> sequences;
    given.expected.merge(read_tensor_dir(options.expected_dir, plan.model_outputs, "output_", &sequences));
    given.expected_sequences.merge(sequences);
  }
  std::map<std::string, Comparable> expected;
  for (const auto& [name, tensor] : given.expected) expected.emplace(name, comparable(tensor));
  for (const auto& [name, sequence] : given.expected_sequences) expected.emplace(name, comparable(sequence));
  for (const auto& entry : expected) {
    const std::string& name = entry.first;
    const auto& outputs = plan.model_outputs;
    if (std::none_of(outputs.begin(), outputs.end(), [&](const ValueDesc& d) { return d.name == name; })) {
      const std::string reason = "the model has no such output";
      throw Error(ErrorCode::USAGE, "expected output '" + name + "': " + reason,
                  ArgumentContext{"expected", name, reason});
    }
  }
  VerifyReport report;
  report.tolerance = choose_tolerance(model.graph(), plan, options);
  report.check_stat = options.check_stat;
  detail::SessionConfig config;
  config.device = "cpu";
  std::map<std::string, Tensor> inputs;
  std::vector<ValueDesc> outputs;
  check_cancelled();
  {  // the whole model's session is gone before the pieces load: peak memory is one copy of the weights
    const detail::Session full(model_path, config);
    check_cancelled();
    inputs = make_inputs(full.inputs(), given);  // names first: an unknown one is a USAGE error
    check_sequences(full.sequence_values(), given);
    outputs = full.outputs();
    if (expected.empty()) {
      for (const auto& [name, value] : detail::run_on(full, feeds(inputs, given.sequences)))
        expected.emplace(name, comparable(value));
    } else {
      report.reference = "expected";
      outputs.erase(std::remove_if(outputs.begin(), outputs.end(),
                                   [&](const ValueDesc& output) { return !expected.count(output.name); }),
                    outputs.end());
    }
  }
  const std::map<std::string, detail::Value> pool =
      piece_pool(plan, plan_dir, feeds(inputs, given.sequences), options.cancelled);

  std::map<std::string, const ValueDesc*> declared;
  for (const ValueDesc& output : plan.model_outputs) declared[output.name] = &output;
  const Tolerance& tolerance = report.tolerance;
  for (const auto& output : outputs) {
    check_cancelled();
    const Comparable made = comparable(model_output(pool, output.name));
    const Comparable& reference = expected.at(output.name);
    OutputCheck check;
    check.name = output.name;
    check.diff = compare(made.tensor, reference.tensor, tolerance.rtol, tolerance.atol);
    check.stats = detail::error_stats(made.tensor, reference.tensor);
    check.pass = detail::stat_passes(options.check_stat, check.stats, check.diff, tolerance.rtol, tolerance.atol);
    if (made.shapes) check.sequence_of = made.tensor.dtype;
    if (made.shapes != reference.shapes) {  // a sequence of other length or element shapes
      check.diff.shape_mismatch = true;
      check.diff.bitwise_equal = false;
      check.diff.mismatches = std::max(made.tensor.element_count(), reference.tensor.element_count());
      check.pass = false;
    }
    if (const auto found = declared.find(output.name); found != declared.end()) check.declared = *found->second;
    report.outputs.push_back(std::move(check));
  }
  if (!report.pass() && options.locate_divergence && plan.pieces.size() > 1) {
    check_cancelled();
    report.divergence =
        detail::locate_divergence(model, plan, feeds(inputs, given.sequences), pool, tolerance, options.check_stat);
  }
  return report;
}

}  // namespace onnxpipe
