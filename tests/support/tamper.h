#pragma once
// Breaks a split on purpose, so that tests of the mismatch paths (verify, bench: exit 3) have a deterministic wrong
// answer to find.
#include <string>

namespace onnxpipe::test {

// Adds `delta` to every value of the first (float) weight of the last piece in `plan_dir` that holds a weight, and
// rewrites that piece in place: the chained pieces no longer compute the source model. Returns that piece's path;
// throws std::runtime_error when no piece holds a float weight.
std::string shift_a_weight(const std::string& plan_dir, float delta = 10.0f);

}  // namespace onnxpipe::test
