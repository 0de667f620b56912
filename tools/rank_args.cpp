#include "rank_args.h"

#include <filesystem>

#include "onnxpipe/plan.h"
#include "options.h"

namespace onnxpipe::cli {

void add_rank_options(CLI::App& command, RankArgs& args) {
  command.add_option("--ranks", args.ranks,
                     "under mpirun: the MPI rank of each stage, R0,R1,... (default: stage k on rank k; rank 0 "
                     "submits and collects)");
  command.add_option("--rank-timeout", args.timeout, "seconds without a heartbeat after which a rank is lost")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

std::vector<int> join_ranks(const RankArgs& args, const std::string& source, std::optional<RankSession>& session) {
  std::vector<int> ranks;
  if (args.ranks.empty() && !RankSession::launched()) return ranks;
  RankOptions options;
  options.timeout_s = args.timeout;
  session.emplace(options);
  const int job_size = session->size();
  if (!args.ranks.empty()) {
    for (const std::string& r : split_list(args.ranks, "--ranks"))
      ranks.push_back(static_cast<int>(parse_int(r, "--ranks")));
  } else if (job_size > 1 && std::filesystem::is_directory(source)) {
    for (int k = 0; k < Plan::load(source).parts(); ++k) ranks.push_back(k);
  }
  return ranks;
}

}  // namespace onnxpipe::cli
