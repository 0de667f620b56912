#pragma once
// Model I/O: loads a .onnx file (external weights stay on disk until a piece needs them), describes its graph in plain
// structs, runs ONNX shape inference, serializes the model and writes pieces. The model-I/O files are the only ones
// that see onnx/protobuf types, and this header shows none: proto_stream (wire format), onnx_proto (proto <-> plain
// types), model_impl (what a loaded Model keeps), shape_inference, serialize, piece_writer; model_io.cpp loads.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "onnxpipe/plan.h"

namespace onnxpipe::detail {

struct NodeDesc {
  std::string name;  // unique in the graph: empty or repeated names are replaced when loading
  std::string op_type;
  std::string domain;                        // "" for ai.onnx
  std::vector<std::string> inputs;           // "" = omitted optional input
  std::vector<std::string> outputs;          // "" = omitted optional output
  std::vector<std::string> implicit_inputs;  // outer-scope names its subgraphs read (recursively), sorted, unique
  std::map<std::string, std::vector<int64_t>> ints;   // INT and INTS attributes
  std::map<std::string, std::vector<double>> floats;  // FLOAT and FLOATS attributes
  std::map<std::string, std::string> strings;         // STRING attributes
  bool has_subgraph = false;
};

// A weight: an initializer (dense or sparse, maybe external) or the output of a Constant node.
struct WeightDesc {
  std::string name;
  DType dtype = DType::UNDEFINED;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
  bool external = false;   // stored in an external data file
  bool sparse = false;     // a sparse initializer
  int constant_node = -1;  // index in GraphDesc::nodes of the Constant node that makes it; -1 for initializers
};

struct GraphDesc {
  std::string path;
  int64_t file_bytes = 0;
  int64_t ir_version = 0;
  std::string producer_name;
  std::map<std::string, int64_t> opsets;  // domain -> version, as imported
  int64_t function_count = 0;
  bool external_data = false;           // some initializer lives in an external file
  std::vector<std::string> data_files;  // the external data files of initializers and Constant values, sorted
  std::vector<NodeDesc> nodes;          // top-level nodes in file order (maybe not topologically sorted)
  std::vector<ValueDesc> inputs;        // graph inputs that are not initializers
  std::vector<ValueDesc> outputs;
  std::map<std::string, WeightDesc> weights;     // initializers + outputs of input-less Constant nodes
  std::map<std::string, ValueDesc> value_infos;  // declared types of intermediate values
};

// What one piece holds; Model::write_piece turns it into a valid ONNX model.
struct PieceSpec {
  std::vector<int> nodes;            // indices into GraphDesc::nodes, in execution order; includes the Constant
                                     // nodes whose outputs it reads
  std::vector<std::string> weights;  // initializer names it reads (directly or inside subgraphs)
  std::vector<ValueDesc> inputs;     // declared as given: no shape when has_shape is false; dtype UNDEFINED: a
                                     // non-tensor value (sequence...) declared with the type inference gave it
  std::vector<ValueDesc> outputs;
  std::string data_file;  // non-empty: write weights to this external data file, beside the .onnx
  // Source data files (as GraphDesc::data_files names them) -> their links beside the .onnx: external tensors in
  // these files point into the link at their offsets instead of being copied.
  std::map<std::string, std::string> linked_data;
};

class Model {
 public:
  // What a loaded model keeps: defined in model_impl.h, for the model-I/O files only.
  struct Impl;

  // Parses the file (streamed, never read whole into a second buffer). Large embedded weights (raw_data over 64 KiB)
  // are skipped and read from the file when a piece or serialize() needs them, like external data: the file must not
  // change while the Model is used (checked: Error(IO)). Throws Error(INVALID_MODEL) for a file that is not ONNX or is
  // truncated, Error(IO) when unreadable; a missing external data file is Error(IO) naming it.
  // Not thread-safe: serialize() and write_piece() update protobuf's cached sizes of the shared messages.
  static Model load(const std::string& path);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  const GraphDesc& graph() const;

  // ONNX shape inference (onnx 1.12). With dims empty, symbolic dims are kept; with dims, graph input dims named
  // there (and unnamed unknown ones: 1) are fixed first. Returns the type of every value it could type (graph inputs,
  // outputs, intermediates, weights). Never throws for inference failures (newer opsets): *complete tells whether every
  // node output got a dtype and, with dims, a fully concrete shape.
  std::map<std::string, ValueDesc> infer_shapes(const std::map<std::string, int64_t>& dims, bool* complete) const;

  // What serialize() does with the large weights (over 64 KiB; the small ones may hold shapes and indices).
  enum class Weights {
    REAL,   // copied as they are
    ZEROS,  // each replaced by a ConstantOfShape node making zeros of its dtype and shape: a run computes every
            // value's shape without the weights ever being in memory together (ORT frees each after its last reader)
  };
  // The model as bytes (unique node names as in graph()), with `extra_outputs` added as graph outputs (declared
  // without a type), so ONNX Runtime exposes intermediate values. External data keeps its locations: load these bytes
  // with the model's folder as external data folder.
  // `shape_outputs`: values whose shape (an int64 tensor made by a Shape node right after their producer, output
  // shape_output_name(value)) is exposed instead of the value, so that ORT frees the value after its last reader.
  // `typed`: intermediate values declared (value_info) by dtype alone, where the model declares nothing: that
  // constrains nothing, but ORT then writes the shapes it inferred for them into an optimized model it saves.
  std::string serialize(const std::vector<std::string>& extra_outputs = {}, Weights weights = Weights::REAL,
                        const std::vector<std::string>& shape_outputs = {},
                        const std::map<std::string, DType>& typed = {}) const;

  // Writes one piece to `onnx_path` (same IR version, opset imports, functions and metadata as the source). Weights
  // are streamed: external source data is copied chunk by chunk, never loaded whole. Returns weight bytes written.
  int64_t write_piece(const PieceSpec& spec, const std::string& onnx_path) const;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The graph output serialize() makes for the shape of `value`.
std::string shape_output_name(const std::string& value);

// SHA-256 of a file, hex.
std::string sha256_file(const std::string& path);
// SHA-256 of a model: its .onnx file followed by its external data files, so that changed weights change it too.
std::string sha256_model(const GraphDesc& graph);

}  // namespace onnxpipe::detail
