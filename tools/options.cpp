#include "options.h"

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "commands.h"
#include "onnxpipe/error.h"

namespace onnxpipe::cli {

namespace {

[[noreturn]] void usage(const std::string& option, const std::string& text, const std::string& what) {
  throw Error(ErrorCode::USAGE, option + " '" + text + "': " + what);
}

std::string trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

}  // namespace

int exit_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::USAGE:
      return 2;
    case ErrorCode::VERIFY_MISMATCH:
      return 3;
    default:
      return 1;
  }
}

std::string error_message(const Error& error) {
  const std::optional<ArgumentContext>& argument = error.argument();
  static const std::map<std::string, std::string> flags = {
      {"dims", "--dim"}, {"inputs", "--input"}, {"cuts", "--cut"}, {"force", "--force"}, {"weights", "--weights"}};
  const auto flag = argument ? flags.find(argument->field) : flags.end();
  if (flag == flags.end()) return error.what();
  if (argument->missing) return argument->reason + ": give it with " + flag->second;
  if (argument->field == "force") return argument->entry + " " + argument->reason + " (use --force to replace it)";
  if (argument->field == "dims") return "--dim " + argument->entry + ": " + argument->reason;
  return flag->second + " '" + argument->entry + "': " + argument->reason;
}

std::pair<std::string, std::string> parse_assignment(const std::string& text, const std::string& option) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) usage(option, text, "expected NAME=VALUE");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& specs) {
  std::map<std::string, int64_t> dims;
  for (const auto& spec : specs) {
    auto [name, text] = parse_assignment(spec, "--dim");
    int64_t value = parse_int(text, "--dim " + name);
    if (value < 1) usage("--dim", spec, "a dimension must be at least 1");
    if (!dims.emplace(name, value).second) usage("--dim", spec, "'" + name + "' is set twice");
  }
  return dims;
}

std::map<std::string, Tensor> read_inputs(const std::vector<std::string>& specs,
                                          std::map<std::string, TensorSequence>* sequences) {
  std::map<std::string, Tensor> inputs;
  for (const auto& spec : specs) {
    auto [name, file] = parse_assignment(spec, "--input");
    if (inputs.count(name) || (sequences && sequences->count(name)))
      usage("--input", spec, "'" + name + "' is given twice");
    try {
      inputs.emplace(name, read_tensor_file(file));
    } catch (const Error& e) {
      const bool pb = file.size() > 3 && file.compare(file.size() - 3, 3, ".pb") == 0;
      if (!sequences || !pb || e.code() != ErrorCode::INVALID_DATA) throw e.with_context("--input " + name);
      try {
        sequences->emplace(name, read_sequence_pb(file));
      } catch (const Error&) {
        throw e.with_context("--input " + name);  // neither: the tensor reader's complaint
      }
    }
  }
  return inputs;
}

std::vector<std::string> split_list(const std::string& text, const std::string& option) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty()) usage(option, text, "empty item in the comma-separated list");
    items.push_back(item);
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

int64_t parse_int(const std::string& text, const std::string& option) {
  std::string value = trim(text);
  errno = 0;
  char* end = nullptr;
  long long number = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') usage(option, text, "expected an integer");
  if (errno == ERANGE) usage(option, text, "out of range");
  return number;
}

std::pair<int64_t, int64_t> parse_int_range(const std::string& text, const std::string& option) {
  std::vector<std::string> bounds = split_list(text, option);
  if (bounds.size() != 2) usage(option, text, "expected LO,HI");
  int64_t low = parse_int(bounds[0], option), high = parse_int(bounds[1], option);
  if (low >= high) usage(option, text, "LO must be less than HI");
  return {low, high};
}

CLI::Option* add_dims_option(CLI::App& command, std::vector<std::string>& specs) {
  return command.add_option("--dim", specs, "NAME=VALUE: a symbolic dimension's value (default 1); repeatable")
      ->allow_extra_args(false);
}

CLI::Option* add_inputs_option(CLI::App& command, std::vector<std::string>& specs) {
  return command.add_option("--input", specs, "NAME=FILE.npy|FILE.pb: an input's value (default random); repeatable")
      ->allow_extra_args(false);
}

CLI::Option* add_devices_option(CLI::App& command, std::string& list, const std::string& what) {
  return command.add_option("--devices", list, "comma list, " + what + ": cpu, cpu:T, cpu:T@C0-C1, cuda:K");
}

void add_placement_options(CLI::App& command, PlacementArgs& args) {
  command.add_option("--margin", args.margin, "kept free on a CUDA device without =CAP")->capture_default_str();
  command.add_option("--queue-depth", args.queue_depth, "values in flight per stage")
      ->check(at_least(0))
      ->capture_default_str();
}

PlacementOptions placement_options(const std::string& devices, const PlacementArgs& args, int parts) {
  PlacementOptions placement;
  placement.devices = parse_devices(devices);
  placement.margin = parse_bytes(args.margin);
  placement.queue_depth = args.queue_depth;
  const int count = static_cast<int>(placement.devices.size());
  if (parts > 0 && parts != count)
    throw Error(ErrorCode::USAGE, "-n " + std::to_string(parts) + " pieces, but --devices names " +
                                      std::to_string(count) + " devices: give one device per piece");
  return placement;
}

CLI::Option* add_balance_option(CLI::App& command, std::string& name, const std::string& what) {
  return command.add_option("--balance", name, what)->check(CLI::IsMember({"auto", "bytes", "flops", "time"}));
}

double megabytes(int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

CLI::Validator at_least(double minimum) {
  std::ostringstream text;
  text << minimum;
  const std::string bound = text.str();
  return CLI::Validator(
      [minimum, bound](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double number = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || errno == ERANGE) return "must be a number, got '" + value + "'";
        return number >= minimum ? std::string() : "must be >= " + bound + ", got " + value;
      },
      ">=" + bound);
}

}  // namespace onnxpipe::cli
