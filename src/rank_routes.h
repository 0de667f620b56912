#pragma once
// Where a request's values travel when the stages sit on several ranks (PipelineOptions::ranks). Rank 0, the client,
// sends a stage on another rank the values it holds (model inputs, outputs of stages on rank 0, and values that skip
// a stage); a stage on another rank answers rank 0 with the model outputs it makes and the values a stage on rank 0
// or a later stage reads, and sends what the next stage reads, when that runs on another rank too, straight to the
// next stage's rank. Only the next stage: rank 0 sends a stage a request only once every stage before it succeeded
// on it, so the next stage's rank is always asked for what it was sent, and nothing is left behind there when a
// request fails in between. Every rank computes the same routes from the plan and the placement.
#include <string>
#include <vector>

#include "onnxpipe/plan.h"

namespace onnxpipe::detail {

struct StageRoutes {
  int rank = 0;
  std::vector<std::string> from_client;    // inputs rank 0 sends (a stage on another rank)
  std::vector<std::string> from_previous;  // inputs the previous stage's rank sends straight here
  std::vector<std::string> to_client;      // outputs answered to rank 0
  std::vector<std::string> to_next;        // outputs sent straight to the next stage's rank
};

// Per stage of `plan`, stage k on ranks[k]. For a stage on rank 0 only `rank` is meaningful.
std::vector<StageRoutes> rank_routes(const Plan& plan, const std::vector<int>& ranks);

// The channel of the values stage k sends straight to stage k + 1 (past the stage channels 1..parts).
inline int next_stage_channel(int stage, int parts) { return parts + 1 + stage; }

}  // namespace onnxpipe::detail
