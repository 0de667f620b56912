#pragma once
// How far one output is from its reference, in the statistics a user may demand (Polygraphy's --check-error-stat),
// and the default tolerances of the precision a graph computes in.
#include <string>

#include "onnxpipe/tensor.h"
#include "onnxpipe/verify.h"

namespace onnxpipe::detail {

// Statistics of |actual - expected| (abs) and abs / |expected| (rel, over elements whose expected value is not 0) of
// two tensors of the same dtype and shape, and the largest distance in units in the last place of that dtype (the
// count of representable values between them; integers and bools: the plain difference, they must be exact).
// NaN against NaN is no error; NaN against a number is an infinite one.
ErrorStats error_stats(const Tensor& actual, const Tensor& expected);

// Whether `stats` passes under `stat`, Polygraphy's rule: MAX, MEAN and MEDIAN fail when both that statistic of the
// abs error exceeds atol and that of the rel error exceeds rtol; ELEMENTWISE when one element breaks
// |a-e| <= atol + rtol*|e| (`diff.mismatches`). A dtype or shape mismatch never passes.
bool stat_passes(ErrorStat stat, const ErrorStats& stats, const Difference& diff, double rtol, double atol);

// The default tolerances for values of `dtype` (FLOAT16, BFLOAT16; else fp32's).
Tolerance default_tolerance(DType dtype);

}  // namespace onnxpipe::detail
