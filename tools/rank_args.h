#pragma once
// The options of a command whose stages may run on the ranks of an MPI job (run, bench): --ranks and --rank-timeout.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "onnxpipe/ranks.h"

namespace onnxpipe::cli {

struct RankArgs {
  std::string ranks;  // the rank of each stage, R0,R1,...
  double timeout = 3;
};

void add_rank_options(CLI::App& command, RankArgs& args);

// Under mpirun (or with --ranks): joins this process to the MPI job as `session` and returns each stage's rank
// (--ranks, by default stage k on rank k when the job has several ranks and `source` is a plan directory). Empty, and
// no session, outside an MPI job: every stage in this process.
std::vector<int> join_ranks(const RankArgs& args, const std::string& source, std::optional<RankSession>& session);

}  // namespace onnxpipe::cli
