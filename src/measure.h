#pragma once
// What can only be learnt by running the source model once in ONNX Runtime: the concrete type of every value (when
// shape inference cannot tell, e.g. opsets newer than onnx 1.12 knows) and per-node time on the target device.
#include <map>
#include <string>
#include <vector>

#include "model_io.h"
#include "runtime.h"

namespace onnxpipe::detail {

// Concrete dtype and shape of the tensors among `names` (node outputs), from one CPU run that exposes them as
// outputs (the `given` inputs, random others, symbolic dims from `dims`, unset ones 1; the weights stored on disk
// replaced by zeros made at run time, so memory stays near the largest weight, not the model). Non-tensor values
// (sequences...) are left out.
std::map<std::string, ValueDesc> run_value_types(const Model& model, const std::map<std::string, int64_t>& dims,
                                                 const std::map<std::string, Tensor>& given,
                                                 const std::vector<std::string>& names);

// Microseconds per node name in each of `runs` profiled runs (on the `given` inputs, random others) after a dropped
// warm-up, on `device`, with ORT's extended graph optimisations (the fused work is timed on the node a fusion keeps).
std::vector<std::map<std::string, double>> measure_node_runs(const Model& model,
                                                             const std::map<std::string, int64_t>& dims,
                                                             const std::map<std::string, Tensor>& given,
                                                             const std::string& device, int runs);

// Median microseconds of a whole run of the model on `device` over `runs` runs after a dropped warm-up: the short
// calibration that gives a device's throughput (the model's flops over this).
double measure_model_run(const Model& model, const std::map<std::string, int64_t>& dims,
                         const std::map<std::string, Tensor>& given, const std::string& device, int runs);

// The model inputs without a declared shape that `given` has no value for: no run can make them up.
std::vector<std::string> inputs_needing_values(const GraphDesc& graph, const std::map<std::string, Tensor>& given);

// Runs `session` once on the values of `pool` named by its inputs (Error(USAGE) "input 'X' is missing" for one not
// there); returns `outputs` (every output when empty) by name. Values of any kind: tensors, sequences.
std::map<std::string, Value> run_on(const Session& session, const std::map<std::string, Value>& pool,
                                    std::vector<std::string> outputs = {});

// Runs pieces one after the other, as the pipeline chains them: piece k reads from `pool` (the model inputs, then
// what earlier pieces made, by name) and adds its outputs to it; one piece's session exists at a time. With
// timed_runs > 0 each piece runs once more than that (the first run dropped) and the result holds the median
// microseconds of its runs; else it runs once and the result is empty. Errors name the piece.
std::vector<double> run_piece_chain(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                    const SessionConfig& config, std::map<std::string, Value>& pool,
                                    int timed_runs = 0);

// Microseconds of each piece in `dir` alone, the values it reads made once by the chain from `inputs`: `rounds`
// rounds over the pieces in order (all their sessions loaded), each piece run `runs` times a round after a dropped
// warm-up (more, up to 30, until the round's runs last 30 ms); per piece the median of a round, the least over the
// rounds (a round in a slow window loses to a faster one). `cpu_time`: the calling thread's CPU time instead of wall
// time, which other work on the core does not inflate; exact only for one-thread CPU sessions (the calling thread is
// the session's only one).
std::vector<double> time_pieces(const std::string& dir, const std::vector<PieceDesc>& pieces,
                                const SessionConfig& config, const std::map<std::string, Tensor>& inputs, int rounds,
                                int runs, bool cpu_time);

}  // namespace onnxpipe::detail
