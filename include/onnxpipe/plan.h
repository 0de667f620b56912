#pragma once
// plan.json: the contract between splitting and running. Everything a runner needs to wire the pieces, and what the
// splitter predicted, in a file a person can read and edit; Plan::load re-validates it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/tensor.h"

namespace onnxpipe {

// One dimension: a fixed size (value >= 0), a symbolic one (param set, value -1) or unknown (both empty).
struct Dim {
  int64_t value = -1;
  std::string param;
  bool operator==(const Dim& other) const { return value == other.value && param == other.param; }
};

// A tensor value as it crosses between pieces or enters/leaves the model.
struct ValueDesc {
  std::string name;
  DType dtype = DType::UNDEFINED;
  bool has_shape = false;  // false: rank unknown, declared without a shape
  std::vector<Dim> dims;
  int64_t bytes = -1;  // for the plan's dimension values; -1 when not known
  // bytes is the splitter's pessimistic estimate (a sequence, or a shape no one could tell), not the value's size.
  bool bytes_estimated = false;

  // A value of a concrete shape: has_shape, fixed dims, and bytes when the dtype has a size.
  static ValueDesc of_shape(std::string name, DType dtype, const std::vector<int64_t>& shape);
  bool is_concrete() const;                     // a shape whose every dimension is fixed
  std::vector<int64_t> concrete_shape() const;  // the fixed dims; Error(INTERNAL) unless is_concrete()
  // "[batch,4]" (symbolic dims by name, unknown ones "?"), "unknown" without a shape. `separator` between dims.
  std::string dims_text(const std::string& separator = ",") const;
};

struct PieceDesc {
  int index = 0;
  std::string file;       // relative to the plan directory: piece_K.onnx
  std::string data_file;  // its own external data file, or empty (weights inside the .onnx, or all in linked_files)
  int64_t node_count = 0;
  int64_t weight_bytes = 0;        // all weights the piece holds
  int64_t duplicated_bytes = 0;    // of those, the ones another piece holds too (shared weights, Constant nodes)
  double cost = 0;                 // estimated, in the balance criterion's unit, transfers in included
  std::vector<ValueDesc> inputs;   // graph inputs and crossing values it reads
  std::vector<ValueDesc> outputs;  // crossing values later pieces read, and the graph outputs it produces
  // Cheap nodes that read only weights and constants, run here again rather than their outputs received (not in
  // node_count); those a piece runs that another piece runs too are duplicated work.
  int64_t recomputed_nodes = 0;
  // The memory model's prediction (placement.h), -1 when the plan has none: the weights as ORT holds them (its
  // copies and prepacked forms, by the factors measured on the device kind the split measured on) and the activation
  // peak for the plan's dims. A run checks the plan against its devices with these, and sizes CUDA arenas by them.
  int64_t resident_weight_bytes = -1;
  int64_t activation_bytes = -1;
  int64_t cpu_overhead_bytes = -1;  // a CPU session's own memory, as measured (-1: not measured)
};

// Throws Error(USAGE) for a --dim name that no dimension of `inputs` carries (it would change nothing), naming the
// ones they do carry.
void check_dim_names(const std::vector<ValueDesc>& inputs, const std::map<std::string, int64_t>& dims);

// A value that travels between pieces: produced by `producer` (-1: a graph input) and read by `consumers`
// (ascending; may skip pieces). graph_output: also an output of the whole model.
struct CrossingValue {
  std::string name;
  int producer = -1;
  std::vector<int> consumers;
  bool graph_output = false;
};

struct Plan {
  int format_version = 1;
  std::string source_path;
  std::string source_sha256;
  std::string balance;                  // bytes | flops | time
  std::string cost_unit;                // bytes | flops | us
  std::map<std::string, int64_t> dims;  // symbolic dimension values used for shapes and costs
  std::vector<ValueDesc> model_inputs;
  std::vector<ValueDesc> model_outputs;
  std::vector<PieceDesc> pieces;
  // "copy": pieces hold their weights themselves; "link": their external tensors point into linked_files, hard links
  // of the source's data files in the plan directory (relative names), shared by all pieces.
  std::string weights = "copy";
  std::vector<std::string> linked_files;
  std::vector<CrossingValue> values;
  int64_t duplicated_nodes = 0;   // recomputed nodes run by more than one piece: copies beyond the first
  double predicted_max_cost = 0;  // the slowest piece
  double ideal_cost = 0;          // total / N
  double heaviest_node_cost = 0;  // no cut-only split can go under this

  int parts() const { return static_cast<int>(pieces.size()); }

  // Reads DIR/plan.json and checks it: pieces (and linked files) in order and present on disk, every piece input
  // produced by an earlier piece or a graph input, every graph output produced by exactly one piece, consumers after
  // producers. Throws Error(INVALID_MODEL) naming the field that is wrong.
  static Plan load(const std::string& dir);
  // Writes DIR/plan.json (pretty printed).
  void save(const std::string& dir) const;
  void validate() const;
  std::string to_json() const;
  static Plan from_json(const std::string& text);
};

}  // namespace onnxpipe
