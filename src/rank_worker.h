#pragma once
// A rank's side of the pipeline stages placed on it (every rank but 0): per stage, one thread receives rank 0's
// requests on the stage's channel (one ahead of the run), one the values the previous stage's rank sends straight
// here (rank_routes.h), another runs the requests in its session, answers rank 0 (the outputs it needs, or the
// failure) and sends the next stage's rank what that reads; the serving thread reads rank 0's control channel: STOP
// cancels the runs in progress (the pipeline closes), CLOSE ends serving. Outputs leave a CUDA stage through ORT's
// pinned host memory.
#include <memory>
#include <string>
#include <vector>

#include "onnxpipe/pipeline.h"
#include "rank_routes.h"
#include "runtime.h"
#include "transport.h"

namespace onnxpipe::detail {

struct ServedStage {
  int index = 0;
  StageContext context;  // as rank 0 names the stage; failures are sent without its label
  std::unique_ptr<Session> session;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  StageRoutes routes;
  int previous_rank = -1;  // of the stages before and after it, -1 where there is none
  int next_rank = -1;
  int parts = 0;
};

// Loads piece `piece` (at `path`) for this rank; config.stage names it as rank 0 does; `routes`: every stage's.
ServedStage load_served_stage(const PieceDesc& piece, const std::string& path, const SessionConfig& config,
                              const std::vector<StageRoutes>& routes);
StageInfo served_stage_info(const ServedStage& stage, const Transport& transport);

// Serves until rank 0 closes the pipeline. Throws Error(RUNTIME) when rank 0 is lost.
void serve_stages(Transport& transport, std::vector<ServedStage>& stages);

}  // namespace onnxpipe::detail
