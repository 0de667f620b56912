#include "rank_args.h"

#include <filesystem>

#include "onnxpipe/plan.h"
#include "options.h"
#include "remote_stage.h"

namespace onnxpipe::cli {

void add_rank_options(CLI::App& command, RankArgs& args) {
  command.add_option("--ranks", args.ranks,
                     "under mpirun: the MPI rank of each stage, R0,R1,... (default: stage k on rank k; rank 0 "
                     "submits and collects)");
  command.add_option("--rank-timeout", args.timeout, "seconds without a heartbeat after which a rank is lost")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

std::vector<int> join_ranks(const RankArgs& args, const std::string& source, std::optional<RankSession>& session,
                            CliContext& context) {
  std::vector<int> ranks;
  if (args.ranks.empty() && !RankSession::launched()) return ranks;
  RankOptions options;
  options.timeout_s = args.timeout;
  session.emplace(options);
  const bool plan_dir = std::filesystem::is_directory(source);
  try {
    if (!args.ranks.empty()) {
      if (!plan_dir) {
        throw Error(ErrorCode::USAGE, "--ranks: stages on ranks need a plan directory (every rank loads its pieces)");
      }
      for (const std::string& r : split_list(args.ranks, "--ranks"))
        ranks.push_back(static_cast<int>(parse_int(r, "--ranks")));
      detail::check_placement(ranks, Plan::load(source).parts(), detail::current_transport());
    } else if (session->size() > 1 && plan_dir) {
      for (int k = 0; k < Plan::load(source).parts(); ++k) ranks.push_back(k);
    }
  } catch (const Error& e) {
    if (e.code() != ErrorCode::USAGE) throw;
    // Every rank read the same arguments and failed alike: none waits for another.
    context.report_errors = session->rank() == 0;
    session.reset();
    throw;
  }
  return ranks;
}

std::string describe_job(const RankSession& session) {
  const bool aware = session.cuda_aware();
  return std::to_string(session.size()) + " ranks; the MPI is " + (aware ? "" : "not ") + "CUDA-aware (" +
         session.cuda_support() + ")" + (aware ? "" : ": values cross through host memory");
}

}  // namespace onnxpipe::cli
