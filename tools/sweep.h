#pragma once
// The bench's sweep options: --images (the image counts N) and --modes. Bad values throw Error(USAGE) naming the
// option and the spec.
#include <string>
#include <vector>

#include "bench.h"
#include "onnxpipe/pipeline.h"

namespace onnxpipe::cli {

// --images: "A:B:S" is Python's range(A, B, S) like the seed's range(1, maxN, stepN) ("1:81:2" is 1, 3 ... 79),
// "A:B" steps by 1, "N" is one count; a comma list joins such items ("1,2,4,8:33:8"). Counts are >= 1, in the given
// order. A lone range keeps its stop and step (the seed's maxN and stepN).
detail::ImageSweep parse_image_sweep(const std::string& spec);

// --modes: a comma list of sequence, pipeline, replicas, each once.
std::vector<PipelineMode> parse_modes(const std::string& list);

}  // namespace onnxpipe::cli
