#include "onnxpipe/ranks.h"

#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>

#include "onnxpipe/error.h"
#include "transport.h"
#if ONNXPIPE_WITH_MPI
#include "transport_mpi.h"
#endif

namespace onnxpipe {
namespace {

// MPI is initialized once per process: the session's transport lives here, not in the (pimpl-free) public object.
std::mutex g_mutex;
std::unique_ptr<detail::Transport> g_transport;

detail::Transport& transport() {
  detail::Transport* t = detail::current_transport();
  if (!t) throw Error(ErrorCode::INTERNAL, "no rank session");
  return *t;
}

}  // namespace

RankSession::RankSession(RankOptions options) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_transport) throw Error(ErrorCode::USAGE, "a rank session already exists in this process");
  if (options.timeout_s <= 0) throw Error(ErrorCode::USAGE, "the rank timeout must be > 0 s");
#if ONNXPIPE_WITH_MPI
  g_transport = detail::make_mpi_transport(options.timeout_s);
  detail::set_current_transport(g_transport.get());
#else
  throw Error(ErrorCode::USAGE, "onnxpipe was built without MPI (ONNXPIPE_WITH_MPI=OFF): no ranks");
#endif
}

RankSession::~RankSession() {
  std::lock_guard<std::mutex> lock(g_mutex);
  // Left by an exception (a stage that did not load...): the other ranks would wait for this one forever.
  if (std::uncaught_exceptions() > 0 && g_transport) g_transport->leave_failed();
  detail::set_current_transport(nullptr);
  g_transport.reset();
}

int RankSession::rank() const { return transport().rank(); }
int RankSession::size() const { return transport().size(); }
std::string RankSession::host(int rank) const { return transport().host(rank); }
bool RankSession::cuda_aware() const { return transport().cuda_aware(); }
std::string RankSession::cuda_support() const { return transport().cuda_support(); }
bool RankSession::any_lost() const { return transport().any_lost(); }

bool RankSession::available() { return ONNXPIPE_WITH_MPI != 0; }

bool RankSession::launched() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

}  // namespace onnxpipe
