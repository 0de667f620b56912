#include "robust_times.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "stats.h"

namespace onnxpipe::detail {
namespace {

// 1.4826: MAD to sigma for normal data.
constexpr double kMadToSigma = 1.4826;

// Preemption and interrupts only ever add time: a node's low quantile over a round's runs is its time unhindered.
constexpr double kLowQuantile = 0.2;

double sum(const std::vector<double>& values) { return std::accumulate(values.begin(), values.end(), 0.0); }

}  // namespace

double robust_sigma(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double center = median(values);
  std::vector<double> deviations;
  for (double v : values) deviations.push_back(std::abs(v - center));
  return kMadToSigma * median(std::move(deviations));
}

std::vector<double> round_node_costs(const RunTimes& runs) {
  if (runs.empty()) return {};
  std::vector<double> costs(runs.front().size(), 0.0);
  for (size_t position = 0; position < costs.size(); ++position) {
    std::vector<double> times;
    for (const auto& run : runs) times.push_back(run[position]);
    costs[position] = percentile(std::move(times), kLowQuantile);
  }
  return costs;
}

std::vector<double> robust_node_costs(const std::vector<RunTimes>& rounds) {
  std::vector<std::vector<double>> costs;
  std::vector<double> totals;
  for (const RunTimes& round : rounds) {
    if (round.empty()) continue;
    costs.push_back(round_node_costs(round));
    totals.push_back(sum(costs.back()));
  }
  if (costs.empty()) return {};
  const double total = median(totals);
  std::vector<double> result(costs.front().size(), 0.0);
  for (size_t position = 0; position < result.size(); ++position) {
    std::vector<double> shares;
    for (size_t r = 0; r < costs.size(); ++r) shares.push_back(totals[r] > 0 ? costs[r][position] / totals[r] : 0.0);
    result[position] = median(std::move(shares)) * total;
  }
  return result;
}

RunTimes pooled(const std::vector<RunTimes>& rounds) {
  RunTimes runs;
  for (const RunTimes& round : rounds) runs.insert(runs.end(), round.begin(), round.end());
  return runs;
}

double round_noise(const std::vector<RunTimes>& rounds, const std::vector<int>& starts) {
  if (rounds.size() < 2 || starts.size() < 2) return 0;
  std::vector<std::vector<double>> shares(starts.size() - 1);  // per piece, per round
  for (const RunTimes& round : rounds) {
    const std::vector<double> costs = round_node_costs(round);
    const double total = sum(costs);
    for (size_t k = 0; k + 1 < starts.size(); ++k) {
      const double piece = std::accumulate(costs.begin() + starts[k], costs.begin() + starts[k + 1], 0.0);
      shares[k].push_back(total > 0 ? piece / total : 0.0);
    }
  }
  double worst = 0;
  const double count = static_cast<double>(rounds.size());
  for (const auto& piece : shares) {
    const double mean = sum(piece) / count;
    if (mean <= 0) continue;
    double squares = 0;
    for (double share : piece) squares += (share - mean) * (share - mean);
    worst = std::max(worst, std::sqrt(squares / (count - 1)) / std::sqrt(count) / mean);
  }
  return worst;
}

std::vector<double> piece_scale(const std::vector<double>& costs, const std::vector<int>& starts,
                                const std::vector<double>& measured) {
  std::vector<double> scale(costs.size(), 1.0);
  for (size_t k = 0; k + 1 < starts.size() && k < measured.size(); ++k) {
    const double predicted = std::accumulate(costs.begin() + starts[k], costs.begin() + starts[k + 1], 0.0);
    if (predicted <= 0 || !(measured[k] > 0)) continue;
    std::fill(scale.begin() + starts[k], scale.begin() + starts[k + 1], measured[k] / predicted);
  }
  return scale;
}

double tie_tolerance(double noise) { return std::clamp(2 * noise, kMinTieTolerance, kMaxTieTolerance); }

bool cut_is_close(const std::function<Solved(double tolerance)>& solve, double optimum, double noise) {
  const double tolerance = tie_tolerance(noise), margin = 2 * noise;
  const Solved chosen = solve(tolerance);
  if (chosen.max_cost > optimum * (1 + tolerance - margin)) return true;
  return solve(tolerance + margin).starts != chosen.starts;
}

}  // namespace onnxpipe::detail
