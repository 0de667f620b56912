#pragma once
// ORT's profiling output, read back: the Chrome trace a profiling session writes (one "Node" event per node per
// run), turned into times per node and run.
#include <map>
#include <string>
#include <vector>

namespace onnxpipe::detail {

// Microseconds per node name in each run of the trace at `path` but the first (the warm-up): the samples that
// robust_times.h makes costs of. Error(IO) when the file cannot be read, Error(RUNTIME) when it is not a trace.
std::vector<std::map<std::string, double>> node_runs_from_trace(const std::string& path);

}  // namespace onnxpipe::detail
