#pragma once
// The soak run: many requests through a 3-stage pipeline of small pieces with a fault injected every so often, checking
// that every future is answered exactly once (its result, in order, or the error that was injected), that nothing
// hangs (a watchdog aborts the process when no request is answered for a while) and that memory stays flat. One
// routine for the short form (tests/pipeline_soak_test.cpp, 5k requests, also under the sanitizers) and the long form
// (bench/soak_bench.cpp, `make soak`, 100k requests).
#include <cstdint>
#include <string>
#include <vector>

namespace onnxpipe::test {

struct SoakOptions {
  int64_t requests = 5000;
  int64_t fault_every = 1000;  // one fault per this many requests, the kinds in turn
  int max_inflight = 8;
  double stall_seconds = 60;  // the watchdog aborts when no request is answered for this long
  std::string dir;            // where the model and its pieces are written
};

// The faults, in the order they are injected.
//   STAGE_THROWS  a Gather index out of range: stage 2 fails that request (RUNTIME, naming the stage)
//   WRONG_SHAPE   an input of the wrong shape: submit refuses it (USAGE), nothing enqueued
//   ABANDONED     the caller drops the ticket without waiting (the pipeline has no per-request cancel): it is still
//                 answered, once
//   DESTROYED     the pipeline destroyed with max_inflight requests in flight: each is answered (result or
//                 CANCELLED), then a new pipeline carries on
struct SoakReport {
  int64_t submitted = 0;  // admitted by submit
  int64_t results = 0;    // answered with the right outputs
  int64_t answered = 0;   // request records delivered to the observer (every admitted request, once)
  int64_t injected = 0;   // faults injected
  int64_t reported = 0;   // of those, reported as injected (the error expected, or the answer of an abandoned one)
  int64_t failed = 0;     // answered with the injected stage error
  int64_t abandoned = 0;  // dropped by the caller (answered, never read)
  int64_t cancelled = 0;  // requests in flight when a pipeline was destroyed that were cancelled
  int64_t restarts = 0;
  double seconds = 0;
  double requests_per_second = 0;
  int64_t rss_warm_bytes = 0;  // after the first fault_every requests
  int64_t rss_end_bytes = 0;
  std::vector<std::string> problems;  // every broken promise, described; empty when the run is sound
};

SoakReport run_soak(const SoakOptions& options);

// Resident set size of this process, in bytes.
int64_t resident_bytes();

}  // namespace onnxpipe::test
