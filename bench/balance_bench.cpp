// Balance repeatability benchmark (prints figures, asserts nothing): five `--balance time` splits in a row per model,
// each made afresh (node times measured again), printing the cuts, the prediction with its noise, and the balance
// as measured independently: each piece run alone on one pinned core (fresh sessions, after the split), its time the
// best of 3 rounds that run the pieces one after the other (so a machine that changes speed between windows slows
// every piece of a round alike), and max piece / mean piece of those, in wall time (the issue's measure) and in the
// thread's CPU time (which the other processes on that core do not inflate). The load average is printed with every
// row: the machine is shared.
//
//   balance_bench [--models DIR] [--splits 5] [--core 0] [--model NAME --parts N]
// Target (issue 8): the same cuts in all splits and max / mean <= 1.10 each time, on resnet18 n=2, mobilenet_v2 n=4,
// GPT-2 n=3 (seq 8).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "analysis.h"
#include "balance.h"
#include "measure.h"
#include "onnxpipe/device.h"
#include "onnxpipe/error.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

constexpr int kRounds = 3, kRunsPerRound = 3;

std::string load_average() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return "?";
  char text[64];
  std::snprintf(text, sizeof text, "%.2f %.2f %.2f", load[0], load[1], load[2]);
  return text;
}

// Milliseconds of each piece of `dir` alone on `device` (detail::time_pieces: kRounds rounds over the pieces in order,
// each piece run at least kRunsPerRound times a round and for 30 ms, the median of a round, the best round per
// piece), wall or CPU time.
std::vector<double> piece_ms(const fs::path& dir, const Plan& plan, const std::map<std::string, int64_t>& dims,
                             const std::string& device, bool cpu_time) {
  detail::SessionConfig config;
  config.device = device;
  VerifyOptions random;
  random.dims = dims;
  std::vector<double> ms = detail::time_pieces(
      dir.string(), plan.pieces, config, make_inputs(plan.model_inputs, random), kRounds, kRunsPerRound, cpu_time);
  for (double& t : ms) t /= 1000;
  return ms;
}

double max_over_mean(const std::vector<double>& ms) {
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  return *std::max_element(ms.begin(), ms.end()) / mean;
}

std::string cuts_of(const Plan& plan) {
  std::string text;
  int64_t position = 0;
  for (size_t k = 0; k + 1 < plan.pieces.size(); ++k) {
    position += plan.pieces[k].node_count;
    text += (text.empty() ? "" : ",") + std::to_string(position);
  }
  return text;
}

std::string joined(const std::vector<double>& values) {
  std::string text;
  char cell[32];
  for (double v : values) {
    std::snprintf(cell, sizeof cell, "%.2f", v);
    text += (text.empty() ? "" : " / ") + std::string(cell);
  }
  return text;
}

// --nodes K: K node-time measurements as a split makes them, each afresh: the cuts each gives (the exact optimum and
// the tie band's choice) and the nodes whose costs swing most between them, in us (what moves cuts).
void node_swing(const fs::path& model, int parts, const std::map<std::string, int64_t>& dims, const std::string& device,
                int measurements) {
  SplitOptions options;
  options.parts = parts;
  options.balance = Balance::TIME;
  options.device = device;
  options.dims = dims;
  std::vector<std::vector<double>> costs;
  std::vector<std::string> names, ops;
  for (int m = 0; m < measurements; ++m) {
    auto analysis = detail::analyse(model.string(), Balance::TIME, options);
    detail::PartitionProblem problem;
    problem.node_cost = analysis->costs.node;
    problem.transfer_cost = analysis->transfer_cost;
    problem.crossing_bytes = analysis->crossing_bytes;
    problem.parts = parts;
    const detail::Partition exact = detail::partition_min_max(problem);
    const detail::Partition chosen = detail::balanced_partition(*analysis, problem, options);
    auto text = [](const detail::Partition& p) {
      std::string t;
      for (size_t k = 1; k + 1 < p.starts.size(); ++k) t += (t.empty() ? "" : ",") + std::to_string(p.starts[k]);
      return t + " (" + joined(p.piece_cost) + " us, bytes " + std::to_string(p.cut_bytes) + ")";
    };
    std::printf("measurement %d: rounds %zu noise %.2f%%  exact %s  chosen %s  load %s\n", m + 1,
                analysis->costs.rounds.size(), 100 * analysis->costs.noise, text(exact).c_str(), text(chosen).c_str(),
                load_average().c_str());
    std::fflush(stdout);
    const std::vector<double>& node = analysis->costs.node;
    const double total = std::accumulate(node.begin(), node.end(), 0.0);
    costs.emplace_back();
    for (double c : node) costs.back().push_back(c / total);
    if (names.empty())
      for (int position : analysis->graph.order()) {
        names.push_back(analysis->graph.desc().nodes[position].name);
        ops.push_back(analysis->graph.desc().nodes[position].op_type);
      }
  }
  struct Swing {
    size_t position;
    double low, high, mid;
  };
  std::vector<Swing> swings;
  for (size_t position = 0; position < names.size(); ++position) {
    std::vector<double> values;
    for (const auto& c : costs) values.push_back(c[position]);
    std::sort(values.begin(), values.end());
    swings.push_back({position, values.front(), values.back(), values[values.size() / 2]});
  }
  std::sort(swings.begin(), swings.end(),
            [](const Swing& a, const Swing& b) { return a.high - a.low > b.high - b.low; });
  std::printf("nodes whose share swings most (%% of the total: low / median / high over the measurements)\n");
  for (size_t i = 0; i < std::min<size_t>(15, swings.size()); ++i) {
    const Swing& s = swings[i];
    std::printf("  %4zu %-10s %-48s %6.2f / %6.2f / %6.2f  (%+.0f%%)\n", s.position, ops[s.position].c_str(),
                names[s.position].c_str(), 100 * s.low, 100 * s.mid, 100 * s.high,
                100 * (s.high - s.low) / std::max(s.mid, 1e-12));
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path models = std::getenv("ONNXPIPE_MODELS") ? std::getenv("ONNXPIPE_MODELS") : "models";
  int splits = 5, core = 0;
  std::string only_model;
  int only_parts = 2, nodes = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--models") models = argv[i + 1];
    if (flag == "--splits") splits = std::atoi(argv[i + 1]);
    if (flag == "--core") core = std::atoi(argv[i + 1]);
    if (flag == "--model") only_model = argv[i + 1];
    if (flag == "--parts") only_parts = std::atoi(argv[i + 1]);
    if (flag == "--nodes") nodes = std::atoi(argv[i + 1]);
  }
  struct Case {
    std::string model;
    int parts;
  };
  std::vector<Case> cases = {{"resnet18", 2}, {"mobilenet_v2", 4}, {"gpt2", 3}};
  if (!only_model.empty()) cases = {{only_model, only_parts}};
  const std::string device = "cpu:1@" + std::to_string(core);
  try {
    pin_current_thread(parse_device(device));  // the profiled runs and the piece runs, on that one core
  } catch (const Error& error) {
    std::fprintf(stderr, "balance_bench: %s\n", error.what());
    return 1;
  }
  if (nodes > 0) {
    for (const Case& c : cases) {
      std::printf("%s n=%d, %d measurements on %s\n", c.model.c_str(), c.parts, nodes, device.c_str());
      const std::map<std::string, int64_t> dims =
          c.model.rfind("gpt2", 0) == 0 ? std::map<std::string, int64_t>{{"seq", 8}} : std::map<std::string, int64_t>{};
      node_swing(models / (c.model + ".onnx"), c.parts, dims, device, nodes);
    }
    return 0;
  }
  const fs::path work = fs::temp_directory_path() / ("onnxpipe_balance_bench_" + std::to_string(::getpid()));
  std::printf("device %s, %d rounds x >= %d runs (>= 30 ms) per piece (best round), load average at start %s\n\n",
              device.c_str(), kRounds, kRunsPerRound, load_average().c_str());
  std::printf(
      "| model | n | split | cuts | runs | predicted max / mean | noise | piece ms (wall) | max / mean (wall) | "
      "piece ms (CPU) | max / mean (CPU) | load avg |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    const fs::path model = models / (c.model + ".onnx");
    if (!fs::exists(model)) {
      std::fprintf(stderr, "%s is absent (make models): skipped\n", model.c_str());
      continue;
    }
    std::set<std::string> cuts_seen;
    double worst = 0, worst_cpu = 0;
    for (int split = 1; split <= splits; ++split) {
      try {
        SplitOptions options;
        options.parts = c.parts;
        options.balance = Balance::TIME;
        options.device = device;
        if (c.model.rfind("gpt2", 0) == 0) options.dims = {{"seq", 8}};
        options.output_dir = (work / c.model).string();
        options.force = true;
        const Plan plan = split_model(model.string(), options);
        std::ifstream costs_file(work / c.model / "costs.json");
        const nlohmann::json costs = nlohmann::json::parse(costs_file);
        const std::vector<double> wall = piece_ms(work / c.model, plan, options.dims, device, false);
        const std::vector<double> cpu = piece_ms(work / c.model, plan, options.dims, device, true);
        const double ratio = max_over_mean(wall);
        worst = std::max(worst, ratio);
        worst_cpu = std::max(worst_cpu, max_over_mean(cpu));
        cuts_seen.insert(cuts_of(plan));
        std::printf("| %s | %d | %d | %s | %d | %.3f | %.1f%% | %s | %.3f | %s | %.3f | %s |\n", c.model.c_str(),
                    c.parts, split, cuts_of(plan).c_str(), costs.value("runs", 0),
                    plan.predicted_max_cost / plan.ideal_cost, 100 * costs.value("noise", 0.0), joined(wall).c_str(),
                    ratio, joined(cpu).c_str(), max_over_mean(cpu), load_average().c_str());
        std::fflush(stdout);
      } catch (const Error& error) {
        std::fprintf(stderr, "%s n=%d split %d: error: %s\n", c.model.c_str(), c.parts, split, error.what());
      }
    }
    std::printf("| %s | %d | all | %zu distinct | | | | | worst %.3f | | worst %.3f | |\n", c.model.c_str(), c.parts,
                cuts_seen.size(), worst, worst_cpu);
    std::fflush(stdout);
  }
  fs::remove_all(work);
  std::printf("\ntarget: one distinct cut set per model, measured max / mean <= 1.10 in every split\n");
  return 0;
}
