#pragma once
// Option values the subcommands share: --dim NAME=VALUE, --input NAME=FILE, comma lists, ranges; and how values are
// shown. Bad values throw Error(USAGE) naming the option (CLI exit 2).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "onnxpipe/placement.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/sequence.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe::cli {

// "NAME=VALUE" split at the first '='; both sides non-empty.
std::pair<std::string, std::string> parse_assignment(const std::string& text, const std::string& option);
// --dim NAME=VALUE...: a symbolic dimension's value, an integer >= 1; each name once.
std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& specs);
// --input NAME=FILE...: each input read from a .npy or .pb file; each name once. With `sequences`, a .pb file that is
// not a TensorProto but an onnx SequenceProto goes there.
std::map<std::string, Tensor> read_inputs(const std::vector<std::string>& specs,
                                          std::map<std::string, TensorSequence>* sequences = nullptr);
// "a,b,c": items trimmed of spaces; empty items are an error.
std::vector<std::string> split_list(const std::string& text, const std::string& option);
int64_t parse_int(const std::string& text, const std::string& option);
// "LO,HI" with LO < HI.
std::pair<int64_t, int64_t> parse_int_range(const std::string& text, const std::string& option);

// The options several subcommands have, added the same way by each: the value stays text until the command runs,
// then parse_dims / read_inputs / split_list / balance_from_name turn it into the library's. Each returns the
// option, for ->required() or ->capture_default_str().
CLI::Option* add_dims_option(CLI::App& command, std::vector<std::string>& specs);    // --dim NAME=VALUE...
CLI::Option* add_inputs_option(CLI::App& command, std::vector<std::string>& specs);  // --input NAME=FILE...
// --devices D1,D2,...; `what` says what one device is for ("one per stage (pipeline) or replica").
CLI::Option* add_devices_option(CLI::App& command, std::string& list, const std::string& what);
// The placement `split --devices` and `plan` make: --devices D=CAP,..., --margin, --queue-depth; -n, when given
// (parts > 0), must match the number of devices.
struct PlacementArgs {
  std::string margin = "1GiB";
  int queue_depth = PlacementOptions().queue_depth;
};
void add_placement_options(CLI::App& command, PlacementArgs& args);  // --margin, --queue-depth
PlacementOptions placement_options(const std::string& devices, const PlacementArgs& args, int parts);
// --balance auto|bytes|flops|time; `what` says what it balances for that command.
CLI::Option* add_balance_option(CLI::App& command, std::string& name, const std::string& what);

// A CLI11 check that a number is >= minimum, with a message a person reads ("must be >= 1, got 0"): CLI11's
// PositiveNumber and NonNegativeNumber print their range up to DBL_MAX.
CLI::Validator at_least(double minimum);

// Bytes in megabytes (10^6), for tables.
double megabytes(int64_t bytes);

}  // namespace onnxpipe::cli
