#include "rank_routes.h"

#include <algorithm>
#include <map>
#include <set>

namespace onnxpipe::detail {

std::vector<StageRoutes> rank_routes(const Plan& plan, const std::vector<int>& ranks) {
  std::map<std::string, const CrossingValue*> crossing;
  for (const CrossingValue& v : plan.values) crossing[v.name] = &v;
  std::set<std::string> model_outputs;
  for (const ValueDesc& out : plan.model_outputs) model_outputs.insert(out.name);
  const auto rank_of = [&](int stage) { return ranks.at(static_cast<size_t>(stage)); };
  // A value stage k reads comes straight from stage k - 1 when both run on ranks other than 0.
  const auto direct = [&](int producer, int reader) {
    return producer >= 0 && reader == producer + 1 && rank_of(producer) != 0 && rank_of(reader) != 0;
  };
  std::vector<StageRoutes> routes(plan.pieces.size());
  for (const PieceDesc& piece : plan.pieces) {
    const int k = piece.index;
    StageRoutes& r = routes.at(static_cast<size_t>(k));
    r.rank = rank_of(k);
    for (const ValueDesc& in : piece.inputs) {
      const auto it = crossing.find(in.name);
      const int producer = it == crossing.end() ? -1 : it->second->producer;
      (direct(producer, k) ? r.from_previous : r.from_client).push_back(in.name);
    }
    for (const ValueDesc& out : piece.outputs) {
      const auto it = crossing.find(out.name);
      const std::vector<int> readers = it == crossing.end() ? std::vector<int>{} : it->second->consumers;
      if (std::any_of(readers.begin(), readers.end(), [&](int c) { return direct(k, c); }))
        r.to_next.push_back(out.name);
      if (model_outputs.count(out.name) ||
          std::any_of(readers.begin(), readers.end(), [&](int c) { return !direct(k, c); })) {
        r.to_client.push_back(out.name);
      }
    }
  }
  return routes;
}

}  // namespace onnxpipe::detail
