#pragma once
// Model I/O, part 2: onnx protos read as onnxpipe's plain types and back (a model-I/O file: it may include onnx
// headers). Owns what a TensorProto's fields mean (byte sizes, typed data fields, external data references), the
// ValueInfoProto <-> ValueDesc conversion, the names a subgraph reads from outside, and the model fields every copy
// of a model keeps.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <set>
#include <string>

#include "onnxpipe/plan.h"

namespace onnxpipe::detail {

// "" for "ai.onnx", the domain itself otherwise.
std::string normalize_domain(const std::string& domain);

// Bytes of `count` elements of an onnx data type, including types newer than onnx 1.12 (float8: 1 byte, int4: half).
int64_t data_bytes(int32_t data_type, int64_t count);
// Bytes of the tensor's data as stored (strings: their total length).
int64_t tensor_bytes(const onnx::TensorProto& t);
// Appends the numeric data of a tensor stored in typed fields (float_data, int32_data...) as little-endian raw bytes.
void append_typed_data(const onnx::TensorProto& t, std::string* out);
// A host tensor from a TensorProto with its data inside; Error(INVALID_MODEL) for external data or a size mismatch.
Tensor to_tensor(const onnx::TensorProto& t);

bool is_external(const onnx::TensorProto& t);
struct ExternalRef {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;  // -1: not given
};
// The external_data entries of an external tensor; Error(INVALID_MODEL) for a bad number or a missing location.
ExternalRef external_ref(const onnx::TensorProto& t);

// Tensors held in a node's attributes, subgraphs included (their initializers and their nodes' attributes), may be
// external data too: torch writes a large Constant's value so. Their locations are relative to the source model.
bool node_has_external_tensor(const onnx::NodeProto& n);
// Calls fn(TensorProto*) on each such tensor of `n`, external or not.
template <typename Fn>
void for_each_attribute_tensor(onnx::NodeProto* n, const Fn& fn) {
  const auto visit_graph = [&fn](onnx::GraphProto* g) {
    for (auto& t : *g->mutable_initializer()) fn(&t);
    for (auto& sub : *g->mutable_node()) for_each_attribute_tensor(&sub, fn);
  };
  for (auto& a : *n->mutable_attribute()) {
    if (a.has_t()) fn(a.mutable_t());
    for (auto& t : *a.mutable_tensors()) fn(&t);
    if (a.has_g()) visit_graph(a.mutable_g());
    for (auto& g : *a.mutable_graphs()) visit_graph(&g);
  }
}

// The type of a value; dtype UNDEFINED for a non-tensor (sequence, optional, map).
ValueDesc value_desc(const onnx::ValueInfoProto& vi);
// A tensor value's declaration: without a shape when has_shape is false, unknown dims left unset.
onnx::ValueInfoProto value_info(const ValueDesc& v);

// Free names of a subgraph: read inside it (or inside its nested subgraphs) but not defined in it.
void subgraph_free_names(const onnx::GraphProto& g, std::set<std::string>* out);

// The model's fields except the graph (which holds the weights): what pieces and copies keep from their source.
onnx::ModelProto model_header(const onnx::ModelProto& m);

}  // namespace onnxpipe::detail
