#pragma once
// Several machines: this process as one rank of an MPI job (`mpirun -np K app ...`). While a RankSession lives, a
// Pipeline whose PipelineOptions::ranks place stages on other ranks runs them there: every rank builds the same
// Pipeline (same source and options) and loads only its own stages; rank 0 submits and collects, the others call
// Pipeline::serve() until rank 0 closes it.
//
//   onnxpipe::RankSession ranks;                 // MPI_Init_thread; one per process
//   onnxpipe::PipelineOptions options;
//   options.devices = {"cpu:1", "cpu:1"};
//   options.ranks = {0, 1};                      // stage k on rank ranks[k]
//   onnxpipe::Pipeline pipeline("out/resnet18_2", options);
//   if (ranks.rank() == 0) pipeline.submit(...); else pipeline.serve();
//
// Liveness: the ranks exchange heartbeats; a rank not heard from within RankOptions::timeout_s is lost, and every
// request that needs it fails with an Error naming it. A job that lost a rank cannot finalize MPI: the session's
// destructor then aborts the job (MPI_Abort), so that every process exits.
#include <string>

namespace onnxpipe {

struct RankOptions {
  double timeout_s = 3;  // a rank silent for longer is lost (heartbeats every timeout_s / 5)
};

class RankSession {
 public:
  // Joins the job this process was started in (a single rank when started without mpirun). Throws Error(USAGE) when
  // onnxpipe was built without MPI or a session already exists, Error(RUNTIME) when MPI lacks MPI_THREAD_MULTIPLE.
  explicit RankSession(RankOptions options = {});
  // Finalizes MPI after every rank got here, or aborts the job (MPI_Abort) when a rank was lost, or when this one
  // is destroyed by an exception (a stage that did not load: the others would wait for it forever).
  ~RankSession();
  RankSession(const RankSession&) = delete;
  RankSession& operator=(const RankSession&) = delete;

  int rank() const;
  int size() const;
  std::string host(int rank) const;
  bool cuda_aware() const;           // the MPI takes device pointers (CUDA-aware); else values go through the host
  std::string cuda_support() const;  // how that was found: "MPIX_Query_cuda_support() = 0", ...
  bool any_lost() const;             // a rank was lost

  static bool available();  // onnxpipe was built with MPI (ONNXPIPE_WITH_MPI)
  static bool launched();   // this process was started by mpirun (its environment says so)
};

}  // namespace onnxpipe
