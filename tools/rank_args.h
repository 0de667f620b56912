#pragma once
// The options of a command whose stages may run on the ranks of an MPI job (run, bench): --ranks and --rank-timeout.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "onnxpipe/ranks.h"

namespace onnxpipe::cli {

struct RankArgs {
  std::string ranks;  // the rank of each stage, R0,R1,...
  double timeout = 3;
};

void add_rank_options(CLI::App& command, RankArgs& args);

// Under mpirun (or with --ranks): joins this process to the MPI job as `session` and returns each stage's rank
// (--ranks, by default stage k on rank k when the job has several ranks and `source` is a plan directory). Empty, and
// no session, outside an MPI job: every stage in this process. A bad --ranks is Error(USAGE) on every rank: the
// session is closed first (every rank leaves MPI cleanly, no abort), and only rank 0's error is reported.
std::vector<int> join_ranks(const RankArgs& args, const std::string& source, std::optional<RankSession>& session,
                            CliContext& context);

// How values cross between the job's ranks, for the log at the start: "3 ranks; the MPI is not CUDA-aware (...):
// values cross through host memory".
std::string describe_job(const RankSession& session);

}  // namespace onnxpipe::cli
