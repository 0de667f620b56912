#pragma once
// Proof that a split reproduces its model: run both on the same inputs, compare every output in the statistics of
// the precision the graph computes in, and name the first crossing value that diverges.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "onnxpipe/sequence.h"
#include "onnxpipe/split.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe {

// Which statistic of the error must be within tolerance (Polygraphy's --check-error-stat).
enum class ErrorStat { ELEMENTWISE, MAX, MEAN, MEDIAN };
ErrorStat error_stat_from_name(const std::string& name);  // elementwise|elemwise|max|mean|median, else Error(USAGE)
const char* error_stat_name(ErrorStat stat);              // "elementwise", "max", "mean", "median"

struct Tolerance {
  double rtol = 1e-5;
  double atol = 1e-6;
  std::string why;  // which defaults applied and why ("given", "float32 graph", "float16 weights: w1, ...")
};

struct VerifyOptions {
  std::map<std::string, Tensor> inputs;             // given inputs; the others are random
  std::map<std::string, TensorSequence> sequences;  // given inputs that are sequences (never made up)
  std::map<std::string, int64_t> dims;              // symbolic dimension values for random inputs (default 1)
  // Unset: the defaults of the lowest precision the graph computes in (its weights and crossing values): fp32
  // rtol 1e-5 / atol 1e-6, float16 1e-3 / 1e-3, bfloat16 1e-2 / 1e-2.
  std::optional<double> rtol;
  std::optional<double> atol;
  ErrorStat check_stat = ErrorStat::ELEMENTWISE;
  // Given reference outputs by name: the pieces are compared with these instead of the whole model's outputs.
  std::map<std::string, Tensor> expected;
  std::map<std::string, TensorSequence> expected_sequences;  // outputs that are sequences: compared element by element
  // Folders of test data (read_tensor_dir), read in the order of plan.json's model inputs and outputs: inputs_dir
  // adds to `inputs` and `sequences` (which win), expected_dir to `expected` and `expected_sequences`.
  std::string inputs_dir;
  std::string expected_dir;
  bool locate_divergence = true;  // on a mismatch, run the whole model once more to name where it starts
  int64_t int_low = 0;            // random integers in [int_low, int_high)
  int64_t int_high = 10;
  uint64_t seed = 0;
  // Asked between the costly steps (loading and hashing the model, its run, each piece's run, each output compared):
  // once it says true, verify stops with Error(CANCELLED).
  std::function<bool()> cancelled;
};

// The error of one output against its reference.
struct ErrorStats {
  int64_t elements = 0;
  double max_abs = 0, mean_abs = 0, median_abs = 0, p99_abs = 0;
  double max_rel = 0, mean_rel = 0, median_rel = 0;
  double max_ulp = 0;  // units in the last place of the output dtype (integers: the plain difference)
};

struct OutputCheck {
  std::string name;
  Difference diff;
  ErrorStats stats;
  bool pass = false;                  // under the report's check_stat and tolerance
  std::optional<ValueDesc> declared;  // the output as plan.json declares it
  // A sequence of tensors of this dtype (UNDEFINED: not a sequence), compared as its tensors end to end, their
  // count and shapes included.
  DType sequence_of = DType::UNDEFINED;
};

// Where the pieces first part from the whole model, in pipeline order.
struct Divergence {
  int piece = -1;
  std::string value;      // the crossing value or output that differs first
  bool is_input = false;  // the piece's input already differs (made so by a cut), else its output differs
  double max_abs = 0;     // of that value
  std::string precision;  // the dtype of the rounded crossing values behind it ("float16"), empty when none
  bool rounding = false;  // within that precision's tolerance: a cut's rounding, not a piece computing differently
  std::string message;    // "piece 1 input X already differs (max abs 3e-3): rounding at cut 1 (float16)"
};

struct VerifyReport {
  std::vector<OutputCheck> outputs;
  Tolerance tolerance;
  ErrorStat check_stat = ErrorStat::ELEMENTWISE;
  std::string reference = "model";       // "model": the whole model's outputs; "expected": the given ones
  std::optional<Divergence> divergence;  // set on a mismatch when it could be located
  bool pass() const;
};

// Runs MODEL and the chained pieces of PLAN_DIR with ORT on CPU and compares every model output.
VerifyReport verify_split(const std::string& model_path, const std::string& plan_dir, const VerifyOptions& options);

// Runs the pieces of PLAN_DIR one after the other with ORT on CPU; returns the model's outputs. Errors name the
// piece. The second form takes the plan already loaded from PLAN_DIR.
std::map<std::string, Tensor> run_pieces(const std::string& plan_dir, const std::map<std::string, Tensor>& inputs);
std::map<std::string, Tensor> run_pieces(const Plan& plan, const std::string& plan_dir,
                                         const std::map<std::string, Tensor>& inputs);

// Random inputs for every model input not in `given` (nor in its sequences), following VerifyOptions (floats in [0,1),
// ints in range, bools random, symbolic dims from dims or 1).
std::map<std::string, Tensor> make_inputs(const std::vector<ValueDesc>& inputs, const VerifyOptions& options);

// Tensors of a test-data folder for `values` (model inputs or outputs, in order): the ONNX test data's
// PREFIX0.pb, PREFIX1.pb ... (numbered in the order of `values`; a missing number is an omitted optional value), or
// NAME.npy (preferred). With `sequences`, the .pb files of values that are not tensors (dtype UNDEFINED) are read as
// onnx SequenceProto into it. Error(USAGE) naming the folder when it has a file for none of them; Error(INVALID_DATA)
// for a bad file.
std::map<std::string, Tensor> read_tensor_dir(const std::string& dir, const std::vector<ValueDesc>& values,
                                              const std::string& prefix,
                                              std::map<std::string, TensorSequence>* sequences = nullptr);

}  // namespace onnxpipe
