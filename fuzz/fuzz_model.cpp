// An .onnx byte string through the model reader (Model::load, graph(), serialize()) and the splitter's Graph.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "graph.h"
#include "model_io.h"

using namespace onnxpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::input_file("model.onnx", data, size);
  fuzz::accepts([&] {
    detail::Model model = detail::Model::load(path);
    const detail::GraphDesc& desc = model.graph();
    model.serialize();
    detail::Graph graph(desc);
    const std::vector<int64_t> bytes = graph.crossing_bytes({});
    fuzz::require(bytes.size() == size_t(graph.size()) + 1, "one crossing size per boundary");
    for (int k = 0; k <= graph.size() && k < 64; ++k) graph.crossing(k);
    for (int k = 0; k < graph.size(); ++k) {
      graph.reads(k);
      graph.weights_read(k);
    }
    for (const ValueDesc& output : desc.outputs) {
      graph.last_reader(output.name);
      if (!graph.is_weight(output.name) && !graph.is_graph_input(output.name)) graph.boundary_after(output.name);
    }
  });
  return 0;
}
