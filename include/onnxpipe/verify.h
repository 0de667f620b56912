#pragma once
// Proof that a split reproduces its model: run both on the same inputs, compare every output.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "onnxpipe/split.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe {

struct VerifyOptions {
  std::map<std::string, Tensor> inputs;  // given inputs; the others are random
  std::map<std::string, int64_t> dims;   // symbolic dimension values for random inputs (default 1)
  double rtol = 1e-5;
  double atol = 1e-6;
  int64_t int_low = 0;  // random integers in [int_low, int_high)
  int64_t int_high = 10;
  uint64_t seed = 0;
};

struct OutputCheck {
  std::string name;
  Difference diff;
  std::optional<ValueDesc> declared;  // the output as plan.json declares it
};

struct VerifyReport {
  std::vector<OutputCheck> outputs;
  bool pass() const;
};

// Runs MODEL and the chained pieces of PLAN_DIR with ORT on CPU and compares every model output.
VerifyReport verify_split(const std::string& model_path, const std::string& plan_dir, const VerifyOptions& options);

// Runs the pieces of PLAN_DIR one after the other with ORT on CPU; returns the model's outputs. Errors name the
// piece. The second form takes the plan already loaded from PLAN_DIR.
std::map<std::string, Tensor> run_pieces(const std::string& plan_dir, const std::map<std::string, Tensor>& inputs);
std::map<std::string, Tensor> run_pieces(const Plan& plan, const std::string& plan_dir,
                                         const std::map<std::string, Tensor>& inputs);

// Random inputs for every model input not in `given`, following VerifyOptions (floats in [0,1), ints in range,
// bools random, symbolic dims from dims or 1).
std::map<std::string, Tensor> make_inputs(const std::vector<ValueDesc>& inputs, const VerifyOptions& options);

}  // namespace onnxpipe
