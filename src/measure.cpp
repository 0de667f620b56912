#include "measure.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <limits>
#include <set>

#include "onnxpipe/error.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "stats.h"

namespace onnxpipe::detail {
namespace {

SessionConfig config_for(const Model& model, const std::string& device) {
  SessionConfig config;
  config.device = device;
  config.optimization_level = 0;
  config.external_data_dir = std::filesystem::path(model.graph().path).parent_path().string();
  if (config.external_data_dir.empty()) config.external_data_dir = ".";
  return config;
}

std::map<std::string, Tensor> random_inputs(const Model& model, const std::map<std::string, int64_t>& dims,
                                            const std::map<std::string, Tensor>& given) {
  VerifyOptions options;
  options.dims = dims;
  options.inputs = given;
  return make_inputs(model.graph().inputs, options);
}

constexpr double kMinRoundUs = 30000;
constexpr int kMaxRunsPerRound = 30;

double now_us(bool cpu_time) {
  if (!cpu_time)
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

std::vector<std::string> inputs_needing_values(const GraphDesc& graph, const std::map<std::string, Tensor>& given) {
  std::vector<std::string> names;
  for (const ValueDesc& input : graph.inputs)
    if (!input.has_shape && !given.count(input.name)) names.push_back(input.name);
  return names;
}

std::map<std::string, ValueDesc> run_value_types(const Model& model, const std::map<std::string, int64_t>& dims,
                                                 const std::map<std::string, Tensor>& given,
                                                 const std::vector<std::string>& names) {
  const GraphDesc& graph = model.graph();
  std::set<std::string> declared_outputs;
  for (const auto& output : graph.outputs) declared_outputs.insert(output.name);
  std::vector<std::string> extra;
  for (const auto& name : names)
    if (!declared_outputs.count(name)) extra.push_back(name);
  // Shapes do not depend on weight values (a data-dependent shape over zeroed weights may differ: these are sizes for
  // estimates only), so the run makes zeros in their place and never holds all the weights at once. Nor does it hold
  // the values: a first session, never run, tells their dtypes; the run exposes each tensor's shape (a Shape node
  // right after its producer), the tensor itself is freed after its last reader. Graph outputs are exposed whole.
  const SessionConfig config = config_for(model, "cpu");
  std::map<std::string, DType> dtypes;
  for (const auto& output : Session::from_bytes(model.serialize(extra, Model::Weights::ZEROS), config).outputs())
    if (output.dtype != DType::UNDEFINED && std::find(names.begin(), names.end(), output.name) != names.end())
      dtypes[output.name] = output.dtype;
  std::map<std::string, ValueDesc> types;
  if (dtypes.empty()) return types;
  std::vector<std::string> wanted, shaped;
  for (const auto& [name, dtype] : dtypes) {
    if (declared_outputs.count(name)) {
      wanted.push_back(name);
    } else {
      shaped.push_back(name);
      wanted.push_back(shape_output_name(name));
    }
  }
  Session session = Session::from_bytes(model.serialize({}, Model::Weights::ZEROS, shaped), config);
  std::map<std::string, std::string> shape_of;
  for (const auto& name : shaped) shape_of[shape_output_name(name)] = name;
  for (auto& [output, tensor] : session.run(random_inputs(model, dims, given), wanted)) {
    const auto it = shape_of.find(output);
    if (it == shape_of.end()) {
      types[output] = ValueDesc::of_shape(output, tensor.dtype, tensor.shape);
      continue;
    }
    const int64_t* dims_made = tensor.as<int64_t>();
    types[it->second] = ValueDesc::of_shape(it->second, dtypes.at(it->second),
                                            std::vector<int64_t>(dims_made, dims_made + tensor.element_count()));
  }
  return types;
}

std::vector<std::map<std::string, double>> measure_node_runs(const Model& model,
                                                             const std::map<std::string, int64_t>& dims,
                                                             const std::map<std::string, Tensor>& given,
                                                             const std::string& device, int runs) {
  if (runs < 1) throw Error(ErrorCode::USAGE, "profile runs must be >= 1, got " + std::to_string(runs));
  SessionConfig config = config_for(model, device);
  // Every optimisation on, as the pieces will run: a fused node keeps the name of the node it replaces (or is named
  // after its output), so the fused work lands there and the nodes fused away cost 0.
  config.optimization_level = 99;
  config.profiling = true;
  Session session = Session::from_bytes(model.serialize(), config);
  return session.profile_node_runs(random_inputs(model, dims, given), runs);
}

double measure_model_run(const Model& model, const std::map<std::string, int64_t>& dims,
                         const std::map<std::string, Tensor>& given, const std::string& device, int runs) {
  if (runs < 1) throw Error(ErrorCode::USAGE, "calibration runs must be >= 1, got " + std::to_string(runs));
  SessionConfig config = config_for(model, device);
  config.optimization_level = 99;
  Session session = Session::from_bytes(model.serialize(), config);
  const std::map<std::string, Tensor> inputs = random_inputs(model, dims, given);
  std::vector<double> times;
  for (int run = 0; run <= runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    session.run(inputs);
    if (run > 0)
      times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return median(std::move(times));
}

std::map<std::string, Value> run_on(const Session& session, const std::map<std::string, Value>& pool,
                                    std::vector<std::string> outputs) {
  std::vector<std::string> input_names;
  std::vector<const Value*> feeds;
  for (const ValueDesc& input : session.inputs()) {
    const auto it = pool.find(input.name);
    if (it == pool.end()) throw Error(ErrorCode::USAGE, "input '" + input.name + "' is missing");
    input_names.push_back(input.name);
    feeds.push_back(&it->second);
  }
  if (outputs.empty())
    for (const ValueDesc& output : session.outputs()) outputs.push_back(output.name);
  std::vector<Value> produced = session.run_values(input_names, feeds, outputs);
  std::map<std::string, Value> result;
  for (size_t i = 0; i < produced.size(); ++i) result.emplace(outputs[i], std::move(produced[i]));
  return result;
}

std::vector<double> run_piece_chain(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                    const SessionConfig& config, std::map<std::string, Value>& pool, int timed_runs) {
  std::vector<double> medians;
  for (const PieceDesc& piece : pieces) {
    try {
      const Session session((std::filesystem::path(dir) / piece.file).string(), config);
      std::vector<std::string> input_names, output_names;
      std::vector<const Value*> feeds;
      for (const ValueDesc& input : piece.inputs) {
        const auto it = pool.find(input.name);
        if (it == pool.end()) throw Error(ErrorCode::USAGE, "input '" + input.name + "' is missing");
        input_names.push_back(input.name);
        feeds.push_back(&it->second);
      }
      for (const ValueDesc& output : piece.outputs) output_names.push_back(output.name);
      std::vector<double> times;
      std::vector<Value> produced;
      for (int run = 0; run <= timed_runs; ++run) {
        const auto start = std::chrono::steady_clock::now();
        produced = session.run_values(input_names, feeds, output_names);
        if (run > 0)
          times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      }
      if (timed_runs > 0) medians.push_back(median(std::move(times)));
      for (size_t i = 0; i < produced.size(); ++i) pool[output_names[i]] = std::move(produced[i]);
    } catch (const Error& error) {
      throw error.with_context("piece " + std::to_string(piece.index) + " (" + piece.file + ")");
    }
  }
  return medians;
}

std::vector<double> time_pieces(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                const SessionConfig& config, const std::map<std::string, Tensor>& inputs, int rounds,
                                int runs, bool cpu_time) {
  std::map<std::string, Value> pool;
  for (const auto& [name, tensor] : inputs) pool.emplace(name, Value::from_tensor(tensor));
  run_piece_chain(dir, pieces, config, pool);
  struct Timed {
    Session session;
    std::vector<std::string> inputs, outputs;
    std::vector<const Value*> feeds;
  };
  std::vector<Timed> timed;
  for (const PieceDesc& piece : pieces) {
    Timed t{Session((std::filesystem::path(dir) / piece.file).string(), config), {}, {}, {}};
    for (const ValueDesc& input : piece.inputs) {
      t.inputs.push_back(input.name);
      t.feeds.push_back(&pool.at(input.name));
    }
    for (const ValueDesc& output : piece.outputs) t.outputs.push_back(output.name);
    timed.push_back(std::move(t));
  }
  std::vector<double> best(pieces.size(), std::numeric_limits<double>::infinity());
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < timed.size(); ++k) {
      std::vector<double> times;
      double spent = 0;
      // At least `runs`, and enough that a round lasts kMinRoundUs: a piece of 2 ms over 3 runs is a coin toss.
      for (int run = 0; run <= runs || (spent < kMinRoundUs && run <= kMaxRunsPerRound); ++run) {
        const double start = now_us(cpu_time);
        timed[k].session.run_values(timed[k].inputs, timed[k].feeds, timed[k].outputs);
        const double us = now_us(cpu_time) - start;
        if (run > 0) {
          times.push_back(us);
          spent += us;
        }
      }
      best[k] = std::min(best[k], median(std::move(times)));
    }
  }
  return best;
}

}  // namespace onnxpipe::detail
