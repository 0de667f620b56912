// Split benchmark (prints figures, asserts nothing): for the seed's models, split wall time and peak RSS with the
// node-time measurement excluded, and the balance ratio = measured slowest piece / lower bound, where
// lower bound = max(sum of piece times / N, time of the heaviest single node).
//
//   split_bench [--models DIR] [--runs R] [--model NAME [--parts N]]
// --model: only DIR/NAME.onnx in N pieces (default 2), e.g. the opt-in gpt2_large (export_models.py --only gpt2_large).
// Targets (issue 2): GPT-2 split <= 1 s, peak RSS <= 1.5x the file, ratio <= 1.10.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "measure.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace fs = std::filesystem;
using namespace onnxpipe;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kDevice = "cpu:1";  // one core per stage, as the CPU pipeline runs them

std::map<std::string, int64_t> dims_for(const std::string& model) {
  return model.rfind("gpt2", 0) == 0 ? std::map<std::string, int64_t>{{"seq", 8}} : std::map<std::string, int64_t>{};
}

// The child process: the split alone, reusing measured node costs, so its wall time and peak RSS are the split's.
int child_split(char** argv) {
  SplitOptions options;
  options.parts = std::atoi(argv[3]);
  options.costs_file = argv[4];
  options.output_dir = argv[5];
  options.force = true;
  options.dims = dims_for(argv[6]);
  if (std::getenv("ONNXPIPE_BENCH_PHASES")) {  // where the split's time goes, on stderr
    const auto start = Clock::now();
    options.progress = [start](const std::string& what, int64_t done, int64_t total) {
      std::fprintf(stderr, "  %8.3f s  %s %lld/%lld\n", std::chrono::duration<double>(Clock::now() - start).count(),
                   what.c_str(), static_cast<long long>(done), static_cast<long long>(total));
    };
  }
  const auto start = Clock::now();
  split_model(argv[2], options);
  // For the parent: the split's own wall time (without process start and exit) and this process's peak RSS. Not
  // ru_maxrss from wait4: after posix_spawn it starts from the parent's peak.
  std::ifstream status("/proc/self/status");
  std::string line;
  double peak_kb = 0;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) peak_kb = std::stod(line.substr(6));
  std::ofstream(std::string(argv[5]) + ".seconds")
      << std::chrono::duration<double>(Clock::now() - start).count() << " " << peak_kb / 1024.0;
  return 0;
}

struct ChildResult {
  double seconds = 0;          // split_model alone
  double process_seconds = 0;  // the whole child process
  double peak_rss_mb = 0;
};

ChildResult run_child(const std::string& model_path, int parts, const std::string& costs, const std::string& out,
                      const std::string& name) {
  std::vector<std::string> args = {"/proc/self/exe", "--child", model_path, std::to_string(parts), costs, out, name};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  auto start = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
    throw Error(ErrorCode::IO, "cannot start the split child");
  int status = 0;
  waitpid(pid, &status, 0);
  ChildResult result;
  result.process_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error(ErrorCode::RUNTIME, "split child failed");
  std::ifstream(out + ".seconds") >> result.seconds >> result.peak_rss_mb;
  fs::remove(out + ".seconds");
  return result;
}

// Median milliseconds of each piece on kDevice, fed with the values the pieces before it made.
std::vector<double> piece_ms(const fs::path& dir, const std::map<std::string, Tensor>& inputs, int runs) {
  const Plan plan = Plan::load(dir.string());
  detail::SessionConfig config;
  config.device = kDevice;
  std::map<std::string, detail::Value> pool;
  for (const auto& [name, tensor] : inputs) pool.emplace(name, detail::Value::from_tensor(tensor));
  std::vector<double> result = detail::run_piece_chain(dir.string(), plan.pieces, config, pool, runs);
  for (double& t : result) t /= 1000;
  return result;
}

double heaviest_node_share(const fs::path& costs_file) {
  std::ifstream in(costs_file);
  auto nodes = nlohmann::json::parse(in).at("nodes").get<std::map<std::string, double>>();
  double total = 0, heaviest = 0;
  for (const auto& [name, cost] : nodes) {
    total += cost;
    heaviest = std::max(heaviest, cost);
  }
  return total > 0 ? heaviest / total : 0;
}

// The balance ratio of the pieces in `dir`: measured slowest piece / lower bound; `pieces` gets their times.
double balance_ratio(const fs::path& dir, const std::string& model, int parts, int runs, std::string* pieces) {
  VerifyOptions inputs;
  inputs.dims = dims_for(model);
  const Plan plan = Plan::load(dir.string());
  const std::vector<double> times = piece_ms(dir, make_inputs(plan.model_inputs, inputs), runs);
  const double sum = std::accumulate(times.begin(), times.end(), 0.0);
  const double slowest = *std::max_element(times.begin(), times.end());
  // The heaviest node's share of the profiled total, applied to the measured total (pieces run optimised).
  const double heaviest = heaviest_node_share(dir / "costs.json") * sum;
  pieces->clear();
  for (double t : times) *pieces += (pieces->empty() ? "" : " / ") + std::to_string(t).substr(0, 5);
  return slowest / std::max(sum / parts, heaviest);
}

// The model's size on disk: the .onnx file plus the weights it keeps in external data files.
double model_mb(const fs::path& model) {
  double bytes = static_cast<double>(fs::file_size(model));
  const detail::Model loaded = detail::Model::load(model.string());  // outlives the loop over its weights
  for (const auto& [name, weight] : loaded.graph().weights)
    if (weight.external) bytes += static_cast<double>(weight.bytes);
  return bytes / 1048576.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 7 && std::string(argv[1]) == "--child") return child_split(argv);
  fs::path models = std::getenv("ONNXPIPE_MODELS") ? std::getenv("ONNXPIPE_MODELS") : "models";
  int runs = 20;
  std::string only_model;
  int only_parts = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--models") models = argv[i + 1];
    if (std::string(argv[i]) == "--runs") runs = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--model") only_model = argv[i + 1];
    if (std::string(argv[i]) == "--parts") only_parts = std::atoi(argv[i + 1]);
  }
  if (only_parts < 1) {
    std::fprintf(stderr, "split_bench: --parts must be >= 1\n");
    return 2;
  }
  struct Case {
    std::string model;
    int parts;
  };
  std::vector<Case> cases = {{"resnet18", 2}, {"mobilenet_v2", 4}, {"gpt2", 3}, {"gpt2", 4}};
  if (!only_model.empty()) cases = {{only_model, only_parts}};
  const fs::path work = fs::temp_directory_path() / ("onnxpipe_split_bench_" + std::to_string(::getpid()));
  std::printf(
      "| model | n | file MB | split s | process s | peak RSS MB | RSS / file | piece ms | max / lower bound |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& c : cases) {
    const fs::path model = models / (c.model + ".onnx");
    if (!fs::exists(model)) {
      std::fprintf(stderr, "%s is absent (make models): skipped\n", model.c_str());
      continue;
    }
    try {
      // 1. Measure node times once (balance time, one core); this split's costs.json is reused below.
      SplitOptions measured;
      measured.parts = c.parts;
      measured.balance = Balance::TIME;
      measured.device = kDevice;
      measured.dims = dims_for(c.model);
      measured.output_dir = (work / "measured").string();
      measured.force = true;
      split_model(model.string(), measured);
      // 2. The split alone in a fresh process: wall time and peak RSS.
      const fs::path out = work / "split";
      ChildResult child =
          run_child(model.string(), c.parts, (work / "measured" / "costs.json").string(), out.string(), c.model);
      // 3. Each piece timed on its own, chained inputs.
      std::string piece_list;
      const double ratio = balance_ratio(out, c.model, c.parts, runs, &piece_list);
      const double file_mb = model_mb(model);
      std::printf("| %s | %d | %.1f | %.3f | %.3f | %.0f | %.2f | %s | %.3f |\n", c.model.c_str(), c.parts, file_mb,
                  child.seconds, child.process_seconds, child.peak_rss_mb, child.peak_rss_mb / file_mb,
                  piece_list.c_str(), ratio);
      std::fflush(stdout);
    } catch (const Error& error) {
      std::fprintf(stderr, "%s n=%d: error: %s\n", c.model.c_str(), c.parts, error.what());
    }
  }
  fs::remove_all(work);
  std::printf("\ntargets: GPT-2 split <= 1 s, peak RSS <= 1.5x file, max / lower bound <= 1.10\n");
  return 0;
}
