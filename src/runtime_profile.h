#pragma once
// ORT's profiling output, read back: the Chrome trace a profiling session writes (one "Node" event per node per
// run), turned into a time per node.
#include <map>
#include <string>

namespace onnxpipe::detail {

// Microseconds per node name in the trace at `path`: the median over every run but the first (a median, because on
// a shared machine a few runs are preempted and a mean would charge that to random nodes). Error(IO) when the file
// cannot be read, Error(RUNTIME) when it is not a trace.
std::map<std::string, double> node_times_from_trace(const std::string& path);

}  // namespace onnxpipe::detail
