#pragma once
// The options of a command whose stages may run on the ranks of an MPI job (run, bench): --ranks and --rank-timeout.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace onnxpipe::cli {

struct RankArgs {
  std::string ranks;  // the rank of each stage, R0,R1,...
  double timeout = 3;
};

void add_rank_options(CLI::App& command, RankArgs& args);

// Under mpirun: stage k on rank ranks[k] (--ranks), by default on rank k when the job has several ranks and `source`
// is a plan directory; empty: every stage in this process.
std::vector<int> stage_ranks(const RankArgs& args, const std::string& source, int job_size);

}  // namespace onnxpipe::cli
