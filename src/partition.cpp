#include "partition.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>
#include <set>
#include <string>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

// Per boundary 0..n: whether a piece may end there. Blocked ones may not unless forced; they all yield when fewer than
// parts - 1 inner boundaries would stay open (a split that rounds differently beats none).
std::vector<char> open_boundaries(const std::vector<char>& blocked, const std::vector<int>& forced, int n, int parts) {
  std::vector<char> open(static_cast<size_t>(n) + 1, 1);
  if (blocked.empty()) return open;
  int inner = 0;
  for (int b = 1; b < n; ++b) inner += (open[b] = !blocked[b]);
  for (int cut : forced) {
    inner += !open[cut];
    open[cut] = 1;
  }
  if (inner < parts - 1) std::fill(open.begin(), open.end(), 1);
  return open;
}

// The crossing bytes as the tie-breaks add them up (comparable_bytes), rounded once per solve.
std::vector<int64_t> comparable_crossing(const std::vector<int64_t>& crossing_bytes) {
  std::vector<int64_t> comparable(crossing_bytes.size());
  std::transform(crossing_bytes.begin(), crossing_bytes.end(), comparable.begin(), comparable_bytes);
  return comparable;
}

void validate(const PartitionProblem& problem) {
  const int n = static_cast<int>(problem.node_cost.size());
  if (!problem.blocked.empty() && problem.blocked.size() != problem.node_cost.size() + 1)
    throw Error(ErrorCode::INTERNAL, "partition: " + std::to_string(n) + " node costs need " + std::to_string(n + 1) +
                                         " blocked flags, got " + std::to_string(problem.blocked.size()));
  if (problem.transfer_cost.size() != problem.node_cost.size() + 1 ||
      problem.crossing_bytes.size() != problem.node_cost.size() + 1)
    throw Error(ErrorCode::INTERNAL, "partition: " + std::to_string(n) + " node costs need " + std::to_string(n + 1) +
                                         " transfer costs and crossing bytes, got " +
                                         std::to_string(problem.transfer_cost.size()) + " and " +
                                         std::to_string(problem.crossing_bytes.size()));
  auto check_costs = [](const std::vector<double>& costs, const char* what) {
    for (size_t i = 0; i < costs.size(); ++i)
      if (!std::isfinite(costs[i]) || costs[i] < 0)
        throw Error(ErrorCode::INTERNAL, std::string("partition: ") + what + " " + std::to_string(i) + " is " +
                                             std::to_string(costs[i]) + ", not a finite cost >= 0");
  };
  check_costs(problem.node_cost, "node cost");
  check_costs(problem.transfer_cost, "transfer cost");

  const int parts = problem.parts;
  if (parts < 1)
    throw Error(ErrorCode::USAGE, "cannot split into " + std::to_string(parts) + " pieces: at least 1 is needed");
  if (parts > n)
    throw Error(ErrorCode::USAGE, "cannot split " + std::to_string(n) + " nodes into " + std::to_string(parts) +
                                      " pieces: at most " + std::to_string(n));
  int previous = 0;
  for (int cut : problem.forced) {
    if (cut <= 0 || cut >= n)
      throw Error(ErrorCode::USAGE, "forced cut at boundary " + std::to_string(cut) + " is not strictly inside (0, " +
                                        std::to_string(n) + "): a cut must leave nodes on both sides");
    if (cut <= previous)
      throw Error(ErrorCode::USAGE, "forced cuts must be in ascending execution order: boundary " +
                                        std::to_string(cut) + " comes after " + std::to_string(previous));
    previous = cut;
  }
  if (problem.forced.size() + 1 > static_cast<size_t>(parts))
    throw Error(ErrorCode::USAGE, std::to_string(problem.forced.size()) + " forced cuts make " +
                                      std::to_string(problem.forced.size() + 1) + " pieces, but only " +
                                      std::to_string(parts) + " were asked for");
}

class Solver {
 public:
  explicit Solver(const PartitionProblem& problem)
      : problem_(problem),
        n_(static_cast<int>(problem.node_cost.size())),
        parts_(problem.parts),
        width_(n_ - parts_ + 1),
        prefix_(n_ + 1, 0),
        comparable_crossing_(comparable_crossing(problem.crossing_bytes)),
        next_forced_(n_, n_),
        open_(open_boundaries(problem.blocked, problem.forced, n_, parts_)) {
    for (int i = 0; i < n_; ++i) prefix_[i + 1] = prefix_[i] + problem.node_cost[i];
    int next = n_;
    size_t f = problem.forced.size();
    for (int a = n_ - 1; a >= 0; --a) {
      while (f > 0 && problem.forced[f - 1] > a) next = problem.forced[--f];
      next_forced_[a] = next;
    }
  }

  // The smallest bottleneck: bisection over the ordered non-negative doubles (their bit patterns ascend with them)
  // with an exact feasibility test, so the result is the bottleneck of an optimal partition, bit for bit.
  double optimal_bottleneck() const {
    double max_transfer = *std::max_element(problem_.transfer_cost.begin(), problem_.transfer_cost.end());
    double upper = prefix_[n_] + max_transfer;  // no piece can cost more (rounding is monotone)
    if (!std::isfinite(upper)) throw Error(ErrorCode::INTERNAL, "partition: total cost overflows");
    uint64_t lo = 0, hi = bits(upper);
    if (!feasible(upper)) throw Error(ErrorCode::INTERNAL, "partition: no partition meets the forced cuts");
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (feasible(from_bits(mid)))
        hi = mid;
      else
        lo = mid + 1;
    }
    return from_bits(hi);
  }

  // Among partitions whose pieces all cost <= threshold, one with the fewest crossing bytes over its inner cuts; of
  // those, the one whose cuts lie nearest the evenly spaced cost fractions (so that of cuts with equal bytes inside a
  // wide tie band the balanced one wins, not whichever the band's edge lets in first).
  Partition fewest_crossing_bytes(double threshold) const {
    std::vector<int> limit = limits(threshold);
    using Key = std::pair<int64_t, double>;  // crossing bytes, summed distance of the cuts from their fractions
    constexpr int64_t NONE = std::numeric_limits<int64_t>::max();
    // best[b - j]: the least key to cover [0, b) with j pieces; boundary b can end piece j only for b in
    // [j, n - parts + j] (every piece is non-empty).
    std::vector<Key> previous(width_, Key{NONE, 0.0}), best(width_);
    std::vector<std::vector<int>> parent(parts_ + 1, std::vector<int>(width_, -1));
    previous[0] = {0, 0.0};  // j = 0: only boundary 0
    for (int j = 1; j <= parts_; ++j) {
      // Sweep b upward; a piece [a, b) is allowed while b <= limit[a]. Min-heap of (key so far, a), with expired
      // starts dropped lazily (b only grows, so an expired start never comes back).
      using Entry = std::pair<Key, int>;
      std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> starts;
      const double fraction = prefix_[n_] * j / parts_;
      for (int b = j; b <= n_ - parts_ + j; ++b) {
        int a = b - 1;  // in layer j - 1's range, since b is in layer j's
        if (previous[a - (j - 1)].first != NONE) starts.emplace(previous[a - (j - 1)], a);
        while (!starts.empty() && limit[starts.top().second] < b) starts.pop();
        if (starts.empty() || !open_[b]) {
          best[b - j] = {NONE, 0.0};
          continue;
        }
        const Key& so_far = starts.top().first;
        if (b < n_)
          best[b - j] = {so_far.first + comparable_crossing_[b], so_far.second + std::abs(prefix_[b] - fraction)};
        else
          best[b - j] = so_far;
        parent[j][b - j] = starts.top().second;
      }
      std::swap(previous, best);
    }
    if (previous[width_ - 1].first == NONE)
      throw Error(ErrorCode::INTERNAL, "partition: the tie-break found no partition under the optimal bottleneck");

    std::vector<int> starts(parts_ + 1, n_);
    for (int j = parts_, b = n_; j >= 1; --j) {
      b = parent[j][b - j];
      starts[j - 1] = b;
    }
    return costed(std::move(starts));
  }

  // The partition at `starts` with its piece costs and crossing bytes.
  Partition costed(std::vector<int> starts) const {
    Partition partition;
    partition.starts = std::move(starts);
    for (size_t j = 0; j + 1 < partition.starts.size(); ++j) {
      const int a = partition.starts[j], b = partition.starts[j + 1];
      partition.piece_cost.push_back(cost(a, b));
      partition.max_cost = std::max(partition.max_cost, partition.piece_cost.back());
      if (j > 0) partition.cut_bytes += problem_.crossing_bytes[a];
    }
    return partition;
  }

 private:
  double cost(int a, int b) const { return (prefix_[b] - prefix_[a]) + problem_.transfer_cost[a]; }

  // limit[a]: the last boundary b a piece starting at a may end at, within threshold and before the next forced
  // cut; a itself when no piece fits. cost(a, b) ascends with b. Without its transfer, the compute-only reach
  // (prefix[b] - prefix[a] <= threshold) ascends with a, so two pointers find it in O(n); the transfer only pulls the
  // limit back a little from there, which a galloping search finds in O(log distance).
  std::vector<int> limits(double threshold) const {
    std::vector<int> limit(n_);
    int reach = 0;
    for (int a = 0; a < n_; ++a) {
      reach = std::max(reach, a);
      while (reach < n_ && prefix_[reach + 1] - prefix_[a] <= threshold) ++reach;
      int hi = std::min(reach, next_forced_[a]);  // everything after hi does not fit
      int lo = a;                                 // lo fits, or is a
      for (int step = 1; hi > lo; step *= 2) {
        int probe = std::max(lo, hi - (step - 1));  // hi, hi - 1, hi - 3, hi - 7, ...
        if (probe == a || cost(a, probe) <= threshold) {
          lo = probe;
          break;
        }
        hi = probe - 1;
      }
      while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (cost(a, mid) <= threshold)
          lo = mid;
        else
          hi = mid - 1;
      }
      limit[a] = lo;
    }
    return limit;
  }

  // Whether `parts` non-empty pieces, each costing <= threshold, cover [0, n): boundaries reachable with j pieces,
  // layer by layer, each reachable a opening the range (a, limit[a]] for the next layer.
  bool feasible(double threshold) const {
    std::vector<int> limit = limits(threshold);
    std::vector<char> reachable(width_, 0), next(width_);
    std::vector<int> delta(width_ + 1);
    reachable[0] = 1;
    for (int j = 1; j <= parts_; ++j) {
      std::fill(delta.begin(), delta.end(), 0);
      bool any = false;
      for (int offset = 0; offset < width_; ++offset) {
        if (!reachable[offset]) continue;
        int a = offset + j - 1;
        // Boundaries b in [a + 1, limit[a]], as offsets b - j in layer j.
        int first = a + 1 - j, last = std::min(limit[a] - j, width_ - 1);
        if (first > last) continue;
        ++delta[first];
        --delta[last + 1];
        any = true;
      }
      if (!any) return false;
      int running = 0;
      for (int offset = 0; offset < width_; ++offset) {
        running += delta[offset];
        next[offset] = running > 0 && open_[offset + j];
      }
      std::swap(reachable, next);
    }
    return reachable[width_ - 1];
  }

  static uint64_t bits(double value) {
    uint64_t result;
    std::memcpy(&result, &value, sizeof result);
    return result;
  }
  static double from_bits(uint64_t value) {
    double result;
    std::memcpy(&result, &value, sizeof result);
    return result;
  }

  const PartitionProblem& problem_;
  int n_;
  int parts_;
  int width_;  // boundaries a layer can reach: n - parts + 1
  std::vector<double> prefix_;
  std::vector<int64_t> comparable_crossing_;  // per boundary: comparable_bytes of its crossing bytes
  std::vector<int> next_forced_;              // per start a: the first forced cut after a, or n
  std::vector<char> open_;                    // per boundary: whether a piece may end there (open_boundaries)
};

// Every piece [a, b) the forced cuts allow, on every stage, with its memory: for each start a, the pieces are grown
// one node at a time, so each weight is counted once per start (a stamp per weight) and the activation peak is a
// running maximum. visit(stage, a, b, memory) for every stage; O(stages x n^2) visits.
template <typename Visit>
void for_each_piece(const PlacementProblem& problem, Visit visit) {
  const MemoryTerms& terms = problem.memory;
  const int n = static_cast<int>(problem.transfer_cost.size()) - 1;
  const int stages = static_cast<int>(problem.node_cost.size());
  std::vector<int> stamp(terms.weight_bytes.size(), -1);
  const std::vector<char> open = open_boundaries(problem.blocked, problem.forced, n, stages);
  size_t next_forced = 0;
  for (int a = 0; a < n; ++a) {
    while (next_forced < problem.forced.size() && problem.forced[next_forced] <= a) ++next_forced;
    const int last = next_forced < problem.forced.size() ? problem.forced[next_forced] : n;
    PieceMemory memory;
    memory.in_flight = terms.in_flight_depth * problem.crossing_bytes[a];
    for (int b = a + 1; b <= last; ++b) {
      for (int weight : terms.weights_read[b - 1]) {
        if (stamp[weight] == a) continue;
        stamp[weight] = a;
        memory.weights += terms.weight_bytes[weight];
      }
      memory.activations = std::max(memory.activations, terms.live[b - 1]);
      if (!open[b]) continue;
      for (int stage = 0; stage < stages; ++stage) {
        memory.overhead = terms.overhead[stage];
        visit(stage, a, b, memory);
      }
    }
  }
}

void validate_placement(const PlacementProblem& problem) {
  const size_t n = problem.transfer_cost.size() - (problem.transfer_cost.empty() ? 0 : 1);
  const size_t stages = problem.node_cost.size();
  PartitionProblem first;
  first.node_cost = stages > 0 ? problem.node_cost[0] : std::vector<double>(n, 0.0);
  first.transfer_cost = problem.transfer_cost;
  first.crossing_bytes = problem.crossing_bytes;
  first.forced = problem.forced;
  first.blocked = problem.blocked;
  first.parts = static_cast<int>(stages);
  validate(first);
  const MemoryTerms& terms = problem.memory;
  bool sizes = problem.capacity.size() == stages && terms.overhead.size() == stages && terms.weights_read.size() == n &&
               terms.live.size() == n;
  for (const auto& costs : problem.node_cost) sizes = sizes && costs.size() == n;
  for (const auto& ids : terms.weights_read)
    for (int id : ids) sizes = sizes && id >= 0 && static_cast<size_t>(id) < terms.weight_bytes.size();
  if (!sizes)
    throw Error(ErrorCode::INTERNAL, "partition: the placement problem's per-stage and per-position sizes disagree");
}

bool fits(const PlacementProblem& problem, int stage, const PieceMemory& memory) {
  return problem.capacity[stage] < 0 || memory.total() <= problem.capacity[stage];
}

// The fewest pieces covering [0, n) (the forced cuts kept) that each fit the largest capacity with its stage's
// overhead; 0 when none does.
int fewest_pieces(const PlacementProblem& problem) {
  const auto largest = std::max_element(problem.capacity.begin(), problem.capacity.end(), [](int64_t a, int64_t b) {
    return a >= 0 && (b < 0 || a < b);  // -1, unbounded, is the largest
  });
  const int widest = static_cast<int>(largest - problem.capacity.begin());
  const int n = static_cast<int>(problem.transfer_cost.size()) - 1;
  constexpr int NONE = std::numeric_limits<int>::max();
  std::vector<int> pieces(n + 1, NONE);
  pieces[0] = 0;
  PlacementProblem one = problem;
  one.node_cost.assign(1, problem.node_cost[widest]);
  one.memory.overhead.assign(1, problem.memory.overhead[widest]);
  one.capacity.assign(1, *largest);
  for_each_piece(one, [&](int, int a, int b, const PieceMemory& memory) {
    if (pieces[a] != NONE && fits(one, 0, memory)) pieces[b] = std::min(pieces[b], pieces[a] + 1);
  });
  return pieces[n] == NONE ? 0 : pieces[n];
}

}  // namespace

PieceMemory piece_memory(const MemoryTerms& terms, const std::vector<int64_t>& crossing_bytes, int a, int b,
                         int stage) {
  PieceMemory memory;
  std::set<int> weights;
  for (int position = a; position < b; ++position) {
    weights.insert(terms.weights_read[position].begin(), terms.weights_read[position].end());
    memory.activations = std::max(memory.activations, terms.live[position]);
  }
  for (int weight : weights) memory.weights += terms.weight_bytes[weight];
  memory.in_flight = terms.in_flight_depth * crossing_bytes[a];
  memory.overhead = terms.overhead[stage];
  return memory;
}

PlacedPartition partition_under_caps(const PlacementProblem& problem) {
  validate_placement(problem);
  const int n = static_cast<int>(problem.transfer_cost.size()) - 1;
  const int stages = static_cast<int>(problem.node_cost.size());
  std::vector<std::vector<double>> prefix(stages, std::vector<double>(n + 1, 0.0));
  for (int s = 0; s < stages; ++s)
    for (int i = 0; i < n; ++i) prefix[s][i + 1] = prefix[s][i] + problem.node_cost[s][i];
  auto cost = [&](int stage, int a, int b) { return prefix[stage][b] - prefix[stage][a] + problem.transfer_cost[a]; };
  // table[s][b]: the best value for pieces 0..s covering [0, b); piece s is visited after every piece ending at its
  // start a, since starts ascend.
  constexpr double INF = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> bottleneck(stages + 1, std::vector<double>(n + 1, INF));
  bottleneck[0][0] = 0;
  for_each_piece(problem, [&](int s, int a, int b, const PieceMemory& memory) {
    if (bottleneck[s][a] == INF || !fits(problem, s, memory)) return;
    bottleneck[s + 1][b] = std::min(bottleneck[s + 1][b], std::max(bottleneck[s][a], cost(s, a, b)));
  });

  PlacedPartition result;
  result.feasible = bottleneck[stages][n] < INF;
  // Feasible: the fewest crossing bytes under the optimal bottleneck. Infeasible: the smallest worst overflow.
  const double threshold = bottleneck[stages][n] * (1 + problem.tie_tolerance);
  constexpr int64_t NONE = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<int64_t>> best(stages + 1, std::vector<int64_t>(n + 1, NONE));
  std::vector<std::vector<int>> parent(stages + 1, std::vector<int>(n + 1, -1));
  const std::vector<int64_t> comparable = comparable_crossing(problem.crossing_bytes);
  best[0][0] = result.feasible ? 0 : std::numeric_limits<int64_t>::min();
  for_each_piece(problem, [&](int s, int a, int b, const PieceMemory& memory) {
    if (best[s][a] == NONE) return;
    int64_t value;
    if (result.feasible) {
      if (!fits(problem, s, memory) || cost(s, a, b) > threshold) return;
      value = best[s][a] + (b < n ? comparable[b] : 0);
    } else {
      const int64_t overflow =
          problem.capacity[s] < 0 ? std::numeric_limits<int64_t>::min() : memory.total() - problem.capacity[s];
      value = std::max(best[s][a], overflow);
    }
    if (value < best[s + 1][b]) {
      best[s + 1][b] = value;
      parent[s + 1][b] = a;
    }
  });
  if (best[stages][n] == NONE)
    throw Error(ErrorCode::INTERNAL, "partition: the tie-break found no partition under the optimal bottleneck");

  Partition& partition = result.partition;
  partition.starts.assign(stages + 1, n);
  for (int s = stages, b = n; s >= 1; --s) partition.starts[s - 1] = b = parent[s][b];
  int64_t worst = std::numeric_limits<int64_t>::min();
  for (int s = 0; s < stages; ++s) {
    const int a = partition.starts[s], b = partition.starts[s + 1];
    partition.piece_cost.push_back(cost(s, a, b));
    partition.max_cost = std::max(partition.max_cost, partition.piece_cost.back());
    if (s > 0) partition.cut_bytes += problem.crossing_bytes[a];
    result.memory.push_back(piece_memory(problem.memory, problem.crossing_bytes, a, b, s));
    if (!result.feasible && problem.capacity[s] >= 0 && result.memory.back().total() - problem.capacity[s] > worst) {
      worst = result.memory.back().total() - problem.capacity[s];
      result.short_stage = s;
    }
  }
  if (!result.feasible) result.min_pieces = fewest_pieces(problem);
  return result;
}

int64_t comparable_bytes(int64_t bytes) {
  int shift = 0;
  while ((bytes >> shift) >= 128) ++shift;
  const int64_t unit = int64_t{1} << shift;
  return (bytes + unit / 2) / unit * unit;
}

Partition costed_partition(const PartitionProblem& problem, const std::vector<int>& starts) {
  return Solver(problem).costed(starts);
}

Partition partition_min_max(const PartitionProblem& problem) {
  validate(problem);
  Solver solver(problem);
  double bottleneck = solver.optimal_bottleneck();
  return solver.fewest_crossing_bytes(bottleneck + bottleneck * problem.tie_tolerance);
}

}  // namespace onnxpipe::detail
