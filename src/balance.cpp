#include "balance.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "log.h"
#include "measure.h"
#include "onnxpipe/verify.h"
#include "placement.h"
#include "robust_times.h"

namespace onnxpipe::detail {
namespace {

void report(const ProgressFn& progress, const std::string& what, int64_t done, int64_t total) {
  if (progress) progress(what, done, total);
}

}  // namespace

void measure_round(const Model& model, const Graph& graph, const std::map<std::string, int64_t>& dims,
                   const SplitOptions& options, Costs& costs) {
  const int round = static_cast<int>(costs.rounds.size());
  report(options.progress, "measuring node times", round, round + 1);
  RunTimes runs;
  for (const auto& run : measure_node_runs(model, dims, options.inputs, costs.device, options.profile_runs))
    runs.push_back(time_costs(graph, run));
  costs.rounds.push_back(std::move(runs));
  costs.node = robust_node_costs(costs.rounds);
  for (size_t position = 0; position < costs.scale.size(); ++position) costs.node[position] *= costs.scale[position];
  report(options.progress, "measuring node times", round + 1, round + 1);
}

Partition balanced_partition(Analysis& analysis, PartitionProblem& problem, const SplitOptions& options) {
  auto solve = [&](double tolerance) {
    problem.tie_tolerance = tolerance;
    return options.placement.devices.empty() ? partition_min_max(problem)
                                             : place_partition(analysis, problem, options.placement);
  };
  Costs& costs = analysis.costs;
  if (costs.rounds.empty()) return solve(PartitionProblem().tie_tolerance);
  for (;;) {
    const Partition exact = solve(PartitionProblem().tie_tolerance);
    costs.noise = round_noise(costs.rounds, exact.starts);
    const auto solved = [&](double tolerance) {
      const Partition partition = solve(tolerance);
      return Solved{partition.starts, partition.max_cost};
    };
    if (costs.rounds.size() >= static_cast<size_t>(kMaxRounds) || !cut_is_close(solved, exact.max_cost, costs.noise))
      break;
    log(LogLevel::DEBUG, "the cut is within the noise of the node times (" + std::to_string(costs.noise * 100) +
                             "%): one more round of runs");
    measure_round(analysis.model, analysis.graph, analysis.dims, options, costs);
    problem.node_cost = costs.node;
  }
  costs.tie_band = tie_tolerance(costs.noise);
  return solve(costs.tie_band);
}

Partition timed_partition(Analysis& analysis, PartitionProblem& problem, const SplitOptions& options,
                          const std::string& dir, Partition first, std::vector<PieceDesc>& pieces,
                          const std::function<std::vector<PieceDesc>(const Partition&)>& write) {
  Partition partition = std::move(first);
  SessionConfig config;
  config.device = analysis.costs.device;
  const bool one_thread = parse_device(config.device).thread_count() == 1;
  VerifyOptions random;
  random.dims = analysis.dims;
  random.inputs = options.inputs;
  const std::map<std::string, Tensor> inputs = make_inputs(analysis.graph.desc().inputs, random);
  // Of the partitions timed, the one whose slowest piece is the least over its mean wins (each one's times come
  // from one window, so the ratio holds where the times themselves move): passes that swap between two cuts end
  // on the better one.
  Partition best = partition;
  std::vector<int> written = partition.starts;  // the cuts of the pieces in staging
  double best_ratio = std::numeric_limits<double>::infinity();
  for (int pass = 0; pass < kPiecePasses; ++pass) {
    report(options.progress, "timing pieces", pass, kPiecePasses);
    const std::vector<double> measured = time_pieces(dir, pieces, config, inputs, kPieceRounds, kPieceRuns, one_thread);
    const double ratio = *std::max_element(measured.begin(), measured.end()) * static_cast<double>(measured.size()) /
                         std::accumulate(measured.begin(), measured.end(), 0.0);
    Costs& costs = analysis.costs;
    const std::vector<double> scale = piece_scale(costs.node, partition.starts, measured);
    if (costs.scale.empty()) costs.scale.assign(scale.size(), 1.0);
    for (size_t position = 0; position < scale.size(); ++position) {
      costs.scale[position] *= scale[position];
      costs.node[position] *= scale[position];
    }
    problem.node_cost = costs.node;
    Partition next = balanced_partition(analysis, problem, options);
    // The cut timed stays while the corrected costs keep it within the widest tie band of their optimum: a re-cut on
    // every noisy piece time picks among near-equal cuts by noise (GPT-2 n=3 and mobilenet_v2 n=4 flipped so).
    PartitionProblem exact = problem;
    exact.tie_tolerance = PartitionProblem().tie_tolerance;
    const Partition kept = costed_partition(problem, partition.starts);
    if (kept.max_cost <= partition_min_max(exact).max_cost * (1 + kMaxTieTolerance)) next = kept;
    if (ratio < best_ratio) {
      best_ratio = ratio;
      best = next.starts == partition.starts ? next : partition;
    }
    if (next.starts == partition.starts) break;
    partition = std::move(next);
    if (pass + 1 < kPiecePasses) {
      pieces = write(partition);
      written = partition.starts;
    }
  }
  if (best.starts != written) pieces = write(best);
  report(options.progress, "timing pieces", kPiecePasses, kPiecePasses);
  return best;
}

}  // namespace onnxpipe::detail
