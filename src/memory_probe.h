#pragma once
// The memory constants of a device kind, measured on the model itself: each op type that reads weights is loaded
// alone (its node with the largest weights, as a one-node piece) and the heap the session holds is weighed against
// a weightless one. ORT keeps more than the weight bytes: on CPU a reordered copy of Conv weights (NCHWc) and packed
// copies of MatMul/Gemm weights beside the originals; what it keeps is measured, not assumed.
#include <string>

#include "analysis.h"

namespace onnxpipe::detail {

// Measures analysis's op types on `device` (a CPU device: the heap glibc reports in use, mallinfo2; other devices
// are not measured and return constants without a device). Loads one session at a time; writes only to a temporary
// directory.
MemoryConstants measure_memory_constants(const Analysis& analysis, const std::string& device);

// The heap bytes in use now (glibc's mallinfo2: arenas and mmapped chunks), after returning free pages to the
// system; -1 where the C library cannot tell.
int64_t heap_in_use();

}  // namespace onnxpipe::detail
