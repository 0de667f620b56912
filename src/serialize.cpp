#include "serialize.h"

#include <deque>
#include <unordered_set>

#include "onnx_proto.h"
#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace {

// Whether ConstantOfShape (ai.onnx >= 9) can make zeros of this dtype at `opset`: bfloat16 from opset 20; strings
// and the 8- and 4-bit types stay real.
bool zeros_op_supports(int32_t data_type, int64_t opset) {
  if (opset < 9) return false;
  switch (data_type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::BOOL:
      return true;
    case onnx::TensorProto::BFLOAT16:
      return opset >= 20;
    default:
      return false;
  }
}

// The weights the sizing model makes zeros of: the large ones (the small ones, shapes and indices among them, stay
// real).
std::unordered_set<std::string> zeroed_weights(const Model::Impl& model) {
  std::unordered_set<std::string> zeroed;
  const auto opset = model.desc.opsets.find("");
  if (opset == model.desc.opsets.end()) return zeroed;
  for (const auto& t : model.model.graph().initializer())
    if (tensor_bytes(t) > static_cast<int64_t>(kSmallTensorBytes) && zeros_op_supports(t.data_type(), opset->second))
      zeroed.insert(t.name());
  return zeroed;
}

// `weight` as a ConstantOfShape node fed by a small int64 initializer holding its dims (both named after it).
void add_zeros_maker(const onnx::TensorProto& weight, std::deque<onnx::NodeProto>& nodes,
                     std::deque<onnx::TensorProto>& shapes) {
  onnx::TensorProto& shape = shapes.emplace_back();
  shape.set_name("onnxpipe_zeros_shape/" + weight.name());
  shape.set_data_type(onnx::TensorProto::INT64);
  shape.add_dims(weight.dims_size());
  for (const int64_t d : weight.dims()) shape.add_int64_data(d);

  onnx::NodeProto& node = nodes.emplace_back();
  node.set_name("onnxpipe_zeros/" + weight.name());
  node.set_op_type("ConstantOfShape");
  node.add_input(shape.name());
  node.add_output(weight.name());
  onnx::AttributeProto* value = node.add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto* zero = value->mutable_t();
  zero->set_data_type(weight.data_type());
  zero->add_dims(1);
  zero->set_raw_data(std::string(dtype_size(static_cast<DType>(weight.data_type())), '\0'));
}

// The graph's declarations: IR < 4 lists initializers among the inputs too, and a zeroed one is a node output now,
// not an input. ONNX Runtime accepts graph outputs declared by name only: it takes their type from the producer.
void declare_values(const onnx::GraphProto& sg, const std::unordered_set<std::string>& zeroed,
                    std::vector<std::string> extra_outputs, const std::vector<std::string>& shape_outputs,
                    const std::map<std::string, DType>& typed, onnx::GraphProto* graph) {
  for (const auto& name : shape_outputs) extra_outputs.push_back(shape_output_name(name));
  for (const auto& input : sg.input())
    if (!zeroed.count(input.name())) *graph->add_input() = input;
  *graph->mutable_output() = sg.output();
  *graph->mutable_value_info() = sg.value_info();
  *graph->mutable_quantization_annotation() = sg.quantization_annotation();
  std::unordered_set<std::string> outputs;
  for (const auto& o : sg.output()) outputs.insert(o.name());
  for (const auto& name : extra_outputs)
    if (outputs.insert(name).second) graph->add_output()->set_name(name);
  std::unordered_set<std::string> declared(outputs);
  for (const auto& v : sg.value_info()) declared.insert(v.name());
  for (const auto& v : sg.input()) declared.insert(v.name());
  for (const auto& [name, dtype] : typed) {
    if (declared.count(name) || dtype == DType::UNDEFINED) continue;
    onnx::ValueInfoProto* info = graph->add_value_info();
    info->set_name(name);
    info->mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int32_t>(dtype));
  }
}

}  // namespace

std::string serialize_model(const Model::Impl& model, const std::vector<std::string>& extra_outputs,
                            Model::Weights weights, const std::vector<std::string>& shape_outputs,
                            const std::map<std::string, DType>& typed) {
  const auto& sg = model.model.graph();
  ModelWriter w;
  w.header = model_header(model.model);
  w.graph.set_name(sg.name());
  if (sg.has_doc_string()) w.graph.set_doc_string(sg.doc_string());
  const std::unordered_set<std::string> zeroed =
      weights == Model::Weights::ZEROS ? zeroed_weights(model) : std::unordered_set<std::string>();
  declare_values(sg, zeroed, extra_outputs, shape_outputs, typed, &w.graph);

  model.check_unchanged();
  std::deque<onnx::NodeProto> zeros_makers;
  std::deque<onnx::TensorProto> zeros_shapes;
  for (const auto& t : sg.initializer()) {
    if (zeroed.count(t.name())) {
      add_zeros_maker(t, zeros_makers, zeros_shapes);
      w.initializers.push_back({&zeros_shapes.back(), std::nullopt});
    } else {
      w.initializers.push_back({&t, is_external(t) ? std::nullopt : model.deferred_range(t.name())});
    }
  }
  // The zeros makers come first: ORT orders execution by a depth-first walk back from the outputs that visits the
  // producers of a node's inputs by decreasing node index, so a low-index maker runs right before its first reader
  // instead of at the start (where every zeroed weight would be alive at once).
  for (const auto& n : zeros_makers) w.nodes.push_back(&n);
  const std::unordered_set<std::string> shaped(shape_outputs.begin(), shape_outputs.end());
  std::deque<onnx::NodeProto> shape_nodes;
  for (const auto& n : sg.node()) {
    w.nodes.push_back(&n);
    for (const auto& output : n.output()) {
      if (output.empty() || !shaped.count(output)) continue;
      onnx::NodeProto& shape = shape_nodes.emplace_front();
      shape.set_name("onnxpipe_shape/" + output);
      shape.set_op_type("Shape");
      shape.add_input(output);
      shape.add_output(shape_output_name(output));
    }
  }
  // The Shape nodes are leaves, which that walk starts from last node first: last, and the first value's last of
  // all, each runs right after its value's producer instead of after the whole graph (where every shaped value would
  // still be alive).
  for (const auto& shape : shape_nodes) w.nodes.push_back(&shape);
  for (const auto& s : sg.sparse_initializer()) w.sparse_initializers.push_back(&s);

  const size_t size = w.byte_size();
  StringSink out(size);
  w.write(out);
  std::string bytes = out.take();
  if (bytes.size() != size)
    throw Error(ErrorCode::INTERNAL, model.desc.path + ": serialized size differs from the computed one");
  return bytes;
}

}  // namespace onnxpipe::detail
