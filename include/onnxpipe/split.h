#pragma once
// Splitting a model into N consecutive pieces, and looking at a model before splitting it.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/placement.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe {

enum class Balance { AUTO, BYTES, FLOPS, TIME };
Balance balance_from_name(const std::string& name);  // auto|bytes|flops|time, else Error(USAGE)
const char* balance_name(Balance balance);

// How pieces hold the weights a source keeps in external data files. LINK: each data file is hard-linked into the
// output directory once (no bytes copied, no extra disk) and every piece's tensors point at their offsets in it;
// needs the output on the source's filesystem. COPY: each piece copies the weights it reads into its own data file.
// AUTO: LINK when the source has external data and the link can be made, else COPY (logged when a link failed).
enum class WeightStorage { AUTO, LINK, COPY };
WeightStorage weight_storage_from_name(const std::string& name);  // auto|link|copy, else Error(USAGE)
const char* weight_storage_name(WeightStorage storage);

// Progress of long work, for a progress bar: what is being done, and done/total (total 0 when unknown).
using ProgressFn = std::function<void(const std::string& what, int64_t done, int64_t total)>;

struct SplitOptions {
  int parts = 2;
  Balance balance = Balance::AUTO;      // AUTO: time on CPU when the model runs there, else flops
  std::vector<std::string> cuts;        // forced boundaries, right after the producers of these tensors, in order
  std::map<std::string, int64_t> dims;  // symbolic dimension values (unset ones default to 1)
  // Input values for the runs that size values and time nodes: needed for inputs without a declared shape
  // (sequences, unshaped tensors); the others are random. Without them, those runs are skipped (AUTO balances by
  // flops).
  std::map<std::string, Tensor> inputs;
  std::string output_dir;
  bool force = false;          // replace an existing output_dir
  std::string device = "cpu";  // where Balance::TIME measures (cpu, cpu:T, cuda:K)
  int profile_runs = 20;       // for Balance::TIME (the first one more is dropped)
  // Node costs saved by an earlier split (its DIR/costs.json) to reuse instead of measuring again; they set the
  // balance criterion. Every split writes its node costs there.
  std::string costs_file;
  int64_t external_data_threshold = int64_t(1) << 30;  // a piece with more weight bytes writes a .data file
  // LINK on a source without external data, or where the link cannot be made: Error, nothing written.
  WeightStorage weights = WeightStorage::AUTO;
  ProgressFn progress;
  // Asked wherever progress is reported (each sizing and timing round, each piece written) and before the output is
  // committed: once it says true, the split stops with Error(CANCELLED), leaving nothing behind (an existing
  // output_dir stays as it was).
  std::function<bool()> cancelled;
  // Devices with capacities (placement.h): the fastest partition whose every piece fits its device; on none, an
  // Error and nothing written. No devices: the fastest partition.
  PlacementOptions placement;
};

// Splits MODEL into pieces written to options.output_dir (piece_K.onnx, their .data files, plan.json) and returns the
// plan. Writes to a temporary directory beside output_dir and renames it at the end: on failure nothing is left.
Plan split_model(const std::string& model_path, const SplitOptions& options);

// What `onnxpipe inspect` shows.
struct CutCandidate {
  int boundary = 0;                    // cut before the node at this position in the topological order
  std::string after_node;              // the node right before the cut
  std::vector<std::string> tensors;    // crossing set
  std::vector<int64_t> tensor_bytes;   // per tensor, as the splitter counts it
  std::vector<std::string> estimated;  // the tensors whose bytes are an estimate (size unknown: sequence...)
  int64_t crossing_bytes = 0;          // their sum
  double cost_before_share = 0;        // fraction of the total cost before the cut
};
struct ModelSummary {
  std::string path;
  int64_t file_bytes = 0;
  int64_t ir_version = 0;
  std::string producer;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  int64_t node_count = 0;                 // top-level compute nodes (Constant weights excluded)
  std::map<std::string, int64_t> op_counts;
  int64_t weight_count = 0;
  int64_t weight_bytes = 0;
  bool external_data = false;
  int64_t function_count = 0;
  std::vector<ValueDesc> inputs;
  std::vector<ValueDesc> outputs;
  int64_t boundary_count = 0;           // legal cuts
  std::string balance;                  // criterion used for cut candidates
  std::vector<CutCandidate> best_cuts;  // smallest crossing bytes near balanced positions
};
struct InspectOptions {
  std::map<std::string, int64_t> dims;  // symbolic dimension values (unset ones default to 1)
  Balance balance = Balance::FLOPS;     // the cost that places the candidates
  int candidates = 8;                   // how many cut candidates to look for
};
ModelSummary inspect_model(const std::string& model_path, const InspectOptions& options = {});

}  // namespace onnxpipe
