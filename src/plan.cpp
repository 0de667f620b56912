#include "onnxpipe/plan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "onnxpipe/error.h"

namespace onnxpipe {

ValueDesc ValueDesc::of_shape(std::string name, DType dtype, const std::vector<int64_t>& shape) {
  ValueDesc desc;
  desc.name = std::move(name);
  desc.dtype = dtype;
  desc.has_shape = true;
  int64_t count = 1;
  for (int64_t d : shape) {
    desc.dims.push_back(Dim{d, ""});
    count *= d;
  }
  if (dtype_size(dtype) > 0) desc.bytes = count * static_cast<int64_t>(dtype_size(dtype));
  return desc;
}

bool ValueDesc::is_concrete() const {
  return has_shape && std::all_of(dims.begin(), dims.end(), [](const Dim& d) { return d.value >= 0; });
}

std::vector<int64_t> ValueDesc::concrete_shape() const {
  if (!is_concrete()) throw Error(ErrorCode::INTERNAL, "value '" + name + "' has no concrete shape " + dims_text());
  std::vector<int64_t> shape;
  for (const Dim& d : dims) shape.push_back(d.value);
  return shape;
}

std::string ValueDesc::dims_text(const std::string& separator) const {
  if (!has_shape) return "unknown";
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) text += separator;
    text += dims[i].value >= 0 ? std::to_string(dims[i].value) : dims[i].param.empty() ? "?" : dims[i].param;
  }
  return text + "]";
}

void check_dim_names(const std::vector<ValueDesc>& inputs, const std::map<std::string, int64_t>& dims) {
  std::set<std::string> named;
  for (const ValueDesc& input : inputs)
    for (const Dim& dim : input.dims)
      if (!dim.param.empty()) named.insert(dim.param);
  for (const auto& [name, value] : dims) {
    if (named.count(name)) continue;
    std::string known;
    for (const std::string& param : named) known += (known.empty() ? "" : ", ") + param;
    const std::string reason = "no input of the model has a dimension of that name (" +
                               (known.empty() ? "it has none" : "named: " + known) + ")";
    throw Error(ErrorCode::USAGE, "dimension '" + name + "': " + reason, ArgumentContext{"dims", name, reason});
  }
}

namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;
constexpr size_t kLineWidth = 120;

// ---- writing ----

Json dim_to_json(const Dim& dim) {
  if (dim.value >= 0) return dim.value;
  if (!dim.param.empty()) return dim.param;
  return nullptr;
}

Json value_to_json(const ValueDesc& value) {
  Json j;
  j["name"] = value.name;
  j["dtype"] = dtype_name(value.dtype);
  if (value.has_shape) {
    j["shape"] = Json::array();
    for (const Dim& dim : value.dims) j["shape"].push_back(dim_to_json(dim));
  } else {
    j["shape"] = nullptr;
  }
  j["bytes"] = value.bytes >= 0 ? Json(value.bytes) : Json(nullptr);
  if (value.bytes_estimated) j["bytes_estimated"] = true;  // absent: the size is known (or null)
  return j;
}

Json values_to_json(const std::vector<ValueDesc>& values) {
  Json j = Json::array();
  for (const auto& value : values) j.push_back(value_to_json(value));
  return j;
}

std::string scalar_text(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string inline_text(const Json& j) {
  if (!j.is_structured()) return scalar_text(j);
  std::string text = j.is_array() ? "[" : "{";
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first) text += ", ";
    first = false;
    if (j.is_object()) text += scalar_text(Json(it.key())) + ": ";
    text += inline_text(it.value());
  }
  return text + (j.is_array() ? "]" : "}");
}

int depth(const Json& j) {
  int deepest = 0;
  if (j.is_structured()) {
    for (const auto& child : j) deepest = std::max(deepest, depth(child));
    return deepest + 1;
  }
  return 0;
}

// Small objects (a value entry with its shape) and lists of scalars fit on one line; lists of objects put one per
// line. So a plan reads like a table.
bool fits_on_one_line(const Json& j, size_t width) {
  if (!j.is_structured() || j.empty()) return true;
  if (j.is_array() && j.front().is_object()) return false;
  return depth(j) <= 2 && width <= kLineWidth;
}

void write_pretty(const Json& j, size_t indent, size_t used, std::string& out) {
  std::string flat = inline_text(j);
  if (fits_on_one_line(j, used + flat.size())) {
    out += flat;
    return;
  }
  out += j.is_array() ? "[\n" : "{\n";
  std::string pad(indent + 2, ' ');
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first) out += ",\n";
    first = false;
    out += pad;
    std::string key = j.is_object() ? scalar_text(Json(it.key())) + ": " : "";
    out += key;
    write_pretty(it.value(), indent + 2, pad.size() + key.size(), out);
  }
  out += "\n" + std::string(indent, ' ') + (j.is_array() ? "]" : "}");
}

// ---- reading: every accessor names the field it looks at, so errors point at the line to fix ----

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::INVALID_MODEL, where + ": " + what);
}

std::string child(const std::string& where, const std::string& key) { return where.empty() ? key : where + "." + key; }
std::string item(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

const char* type_of(const Json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

// `optional`: keys a plan may leave out (added after format version 1 was first written).
void check_object(const Json& j, const std::string& where, std::initializer_list<const char*> keys,
                  std::initializer_list<const char*> optional = {}) {
  if (!j.is_object()) fail(where.empty() ? "top level" : where, std::string("expected an object, got ") + type_of(j));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto named = [&](const char* key) { return it.key() == key; };
    if (std::none_of(keys.begin(), keys.end(), named) && std::none_of(optional.begin(), optional.end(), named)) {
      fail(child(where, it.key()), "unknown field");
    }
  }
  for (const char* key : keys) {
    if (!j.contains(key)) fail(child(where, key), "missing");
  }
}

int64_t get_int(const Json& j, const std::string& where) {
  if (!j.is_number_integer()) fail(where, std::string("expected an integer, got ") + type_of(j));
  if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX)) fail(where, "integer too large");
  return j.get<int64_t>();
}

int64_t get_count(const Json& j, const std::string& where) {
  int64_t value = get_int(j, where);
  if (value < 0) fail(where, "must not be negative");
  return value;
}

int get_index(const Json& j, const std::string& where, int low) {
  int64_t value = get_int(j, where);
  if (value < low || value > INT32_MAX) fail(where, std::to_string(value) + " is out of range");
  return static_cast<int>(value);
}

double get_number(const Json& j, const std::string& where) {
  if (!j.is_number()) fail(where, std::string("expected a number, got ") + type_of(j));
  return j.get<double>();
}

std::string get_string(const Json& j, const std::string& where) {
  if (!j.is_string()) fail(where, std::string("expected a string, got ") + type_of(j));
  return j.get<std::string>();
}

bool get_bool(const Json& j, const std::string& where) {
  if (!j.is_boolean()) fail(where, std::string("expected true or false, got ") + type_of(j));
  return j.get<bool>();
}

const Json& get_array(const Json& j, const std::string& where) {
  if (!j.is_array()) fail(where, std::string("expected an array, got ") + type_of(j));
  return j;
}

ValueDesc value_from_json(const Json& j, const std::string& where) {
  check_object(j, where, {"name", "dtype", "shape", "bytes"}, {"bytes_estimated"});
  ValueDesc value;
  value.name = get_string(j["name"], child(where, "name"));
  if (value.name.empty()) fail(child(where, "name"), "empty");
  std::string dtype = get_string(j["dtype"], child(where, "dtype"));
  try {
    value.dtype = dtype_from_name(dtype);
  } catch (const Error& e) {
    fail(child(where, "dtype"), e.what());
  }
  const Json& shape = j["shape"];
  if (!shape.is_null()) {
    get_array(shape, child(where, "shape"));
    value.has_shape = true;
    for (size_t i = 0; i < shape.size(); ++i) {
      std::string at = item(child(where, "shape"), i);
      Dim dim;
      if (shape[i].is_string()) {
        dim.param = shape[i].get<std::string>();
        if (dim.param.empty()) fail(at, "empty dimension name (use null for an unknown dimension)");
      } else if (!shape[i].is_null()) {
        if (!shape[i].is_number_integer()) {
          fail(at, std::string("expected a size, a dimension name or null, got ") + type_of(shape[i]));
        }
        dim.value = get_count(shape[i], at);
      }
      value.dims.push_back(dim);
    }
  }
  const Json& bytes = j["bytes"];
  value.bytes = bytes.is_null() ? -1 : get_count(bytes, child(where, "bytes"));
  if (j.contains("bytes_estimated")) {
    value.bytes_estimated = get_bool(j["bytes_estimated"], child(where, "bytes_estimated"));
    if (value.bytes_estimated && value.bytes < 0) fail(child(where, "bytes_estimated"), "true but bytes is null");
  }
  return value;
}

std::vector<ValueDesc> values_from_json(const Json& j, const std::string& where) {
  std::vector<ValueDesc> values;
  get_array(j, where);
  for (size_t i = 0; i < j.size(); ++i) values.push_back(value_from_json(j[i], item(where, i)));
  return values;
}

PieceDesc piece_from_json(const Json& j, const std::string& where) {
  check_object(j, where,
               {"index", "file", "data_file", "nodes", "weight_bytes", "duplicated_bytes", "cost", "inputs", "outputs"},
               {"recomputed_nodes", "memory"});
  PieceDesc piece;
  piece.index = get_index(j["index"], child(where, "index"), 0);
  piece.file = get_string(j["file"], child(where, "file"));
  if (!j["data_file"].is_null()) piece.data_file = get_string(j["data_file"], child(where, "data_file"));
  piece.node_count = get_count(j["nodes"], child(where, "nodes"));
  if (j.contains("recomputed_nodes"))
    piece.recomputed_nodes = get_count(j["recomputed_nodes"], child(where, "recomputed_nodes"));
  piece.weight_bytes = get_count(j["weight_bytes"], child(where, "weight_bytes"));
  piece.duplicated_bytes = get_count(j["duplicated_bytes"], child(where, "duplicated_bytes"));
  piece.cost = get_number(j["cost"], child(where, "cost"));
  if (j.contains("memory")) {
    const std::string at = child(where, "memory");
    check_object(j["memory"], at, {"weights", "activations"}, {"cpu_overhead"});
    if (j["memory"].contains("cpu_overhead"))
      piece.cpu_overhead_bytes = get_count(j["memory"]["cpu_overhead"], child(at, "cpu_overhead"));
    piece.resident_weight_bytes = get_count(j["memory"]["weights"], child(at, "weights"));
    piece.activation_bytes = get_count(j["memory"]["activations"], child(at, "activations"));
  }
  piece.inputs = values_from_json(j["inputs"], child(where, "inputs"));
  piece.outputs = values_from_json(j["outputs"], child(where, "outputs"));
  return piece;
}

CrossingValue crossing_from_json(const Json& j, const std::string& where) {
  check_object(j, where, {"name", "producer", "consumers", "graph_output"});
  CrossingValue value;
  value.name = get_string(j["name"], child(where, "name"));
  value.producer = get_index(j["producer"], child(where, "producer"), -1);
  const Json& consumers = get_array(j["consumers"], child(where, "consumers"));
  for (size_t i = 0; i < consumers.size(); ++i) {
    value.consumers.push_back(get_index(consumers[i], item(child(where, "consumers"), i), 0));
  }
  value.graph_output = get_bool(j["graph_output"], child(where, "graph_output"));
  return value;
}

Plan plan_from_json(const Json& j) {
  check_object(j, "",
               {"format_version", "source", "balance", "cost_unit", "dims", "inputs", "outputs", "pieces", "values",
                "prediction"},
               {"duplicated_nodes", "weights", "linked_files"});
  Plan plan;
  plan.format_version = get_index(j["format_version"], "format_version", 0);
  if (plan.format_version != kFormatVersion) {
    fail("format_version", std::to_string(plan.format_version) + " is not supported (this onnxpipe reads version " +
                               std::to_string(kFormatVersion) + ")");
  }
  check_object(j["source"], "source", {"path", "sha256"});
  plan.source_path = get_string(j["source"]["path"], "source.path");
  plan.source_sha256 = get_string(j["source"]["sha256"], "source.sha256");
  plan.balance = get_string(j["balance"], "balance");
  plan.cost_unit = get_string(j["cost_unit"], "cost_unit");
  if (!j["dims"].is_object()) fail("dims", std::string("expected an object, got ") + type_of(j["dims"]));
  for (auto it = j["dims"].begin(); it != j["dims"].end(); ++it) {
    plan.dims[it.key()] = get_count(it.value(), child("dims", it.key()));
  }
  plan.model_inputs = values_from_json(j["inputs"], "inputs");
  plan.model_outputs = values_from_json(j["outputs"], "outputs");
  const Json& pieces = get_array(j["pieces"], "pieces");
  for (size_t i = 0; i < pieces.size(); ++i) plan.pieces.push_back(piece_from_json(pieces[i], item("pieces", i)));
  const Json& values = get_array(j["values"], "values");
  for (size_t i = 0; i < values.size(); ++i) plan.values.push_back(crossing_from_json(values[i], item("values", i)));
  if (j.contains("duplicated_nodes")) plan.duplicated_nodes = get_count(j["duplicated_nodes"], "duplicated_nodes");
  if (j.contains("weights")) plan.weights = get_string(j["weights"], "weights");
  if (j.contains("linked_files")) {
    const Json& linked = get_array(j["linked_files"], "linked_files");
    for (size_t i = 0; i < linked.size(); ++i)
      plan.linked_files.push_back(get_string(linked[i], item("linked_files", i)));
  }
  check_object(j["prediction"], "prediction", {"max_cost", "ideal_cost", "heaviest_node_cost"});
  plan.predicted_max_cost = get_number(j["prediction"]["max_cost"], "prediction.max_cost");
  plan.ideal_cost = get_number(j["prediction"]["ideal_cost"], "prediction.ideal_cost");
  plan.heaviest_node_cost = get_number(j["prediction"]["heaviest_node_cost"], "prediction.heaviest_node_cost");
  return plan;
}

const ValueDesc* find_value(const std::vector<ValueDesc>& values, const std::string& name) {
  for (const auto& value : values) {
    if (value.name == name) return &value;
  }
  return nullptr;
}

void check_unique(const std::vector<ValueDesc>& values, const std::string& where) {
  std::set<std::string> seen;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!seen.insert(values[i].name).second) fail(item(where, i), "'" + values[i].name + "' is listed twice");
  }
}

// The checks behind Plan::validate; messages name the field, without a file prefix.
void validate_plan(const Plan& plan) {
  int n = plan.parts();
  if (n < 1) fail("pieces", "empty: a plan has at least one piece");
  check_unique(plan.model_inputs, "inputs");
  check_unique(plan.model_outputs, "outputs");
  for (int p = 0; p < n; ++p) {
    const PieceDesc& piece = plan.pieces[p];
    std::string where = item("pieces", p);
    if (piece.index != p)
      fail(child(where, "index"), "is " + std::to_string(piece.index) + ", expected " + std::to_string(p) +
                                      " (pieces are listed in pipeline order)");
    if (piece.file.empty()) fail(child(where, "file"), "empty");
    if (fs::path(piece.file).is_absolute()) fail(child(where, "file"), "must be relative to the plan directory");
    check_unique(piece.inputs, child(where, "inputs"));
    check_unique(piece.outputs, child(where, "outputs"));
  }
  if (plan.weights != "copy" && plan.weights != "link") fail("weights", "'" + plan.weights + "' is not copy or link");
  if (plan.weights == "copy" && !plan.linked_files.empty()) fail("linked_files", "not empty but weights is copy");
  for (size_t i = 0; i < plan.linked_files.size(); ++i) {
    const fs::path file(plan.linked_files[i]);
    if (file.empty() || file.is_absolute() || file.has_parent_path())
      fail(item("linked_files", i), "must be a file name in the plan directory");
  }

  std::map<std::string, const CrossingValue*> by_name;
  for (size_t v = 0; v < plan.values.size(); ++v) {
    const CrossingValue& value = plan.values[v];
    std::string where = item("values", v) + " '" + value.name + "'";
    if (!by_name.emplace(value.name, &value).second) fail(where, "listed twice");
    if (value.producer >= n) fail(where, "producer " + std::to_string(value.producer) + " is not a piece");
    if (value.producer < 0 && !find_value(plan.model_inputs, value.name)) {
      fail(where, "producer -1 but it is not a model input");
    }
    if (value.producer >= 0 && !find_value(plan.pieces[value.producer].outputs, value.name)) {
      fail(where, "producer piece " + std::to_string(value.producer) + " does not list it in its outputs");
    }
    bool is_output = find_value(plan.model_outputs, value.name) != nullptr;
    if (value.graph_output != is_output) {
      fail(where, is_output ? "graph_output is false but it is a model output"
                            : "graph_output is true but it is not a model output");
    }
    if (value.consumers.empty() && !value.graph_output) fail(where, "no consumers and not a model output");
    int previous = value.producer;
    for (int consumer : value.consumers) {
      if (consumer >= n) fail(where, "consumer " + std::to_string(consumer) + " is not a piece");
      if (consumer <= previous) {
        fail(where, "consumers must be ascending and after the producer (" + std::to_string(value.producer) + ")");
      }
      if (!find_value(plan.pieces[consumer].inputs, value.name)) {
        fail(where, "consumer piece " + std::to_string(consumer) + " does not list it in its inputs");
      }
      previous = consumer;
    }
  }

  std::map<std::string, int> output_producers;
  for (int p = 0; p < n; ++p) {
    const PieceDesc& piece = plan.pieces[p];
    for (size_t i = 0; i < piece.inputs.size(); ++i) {
      const std::string& name = piece.inputs[i].name;
      auto found = by_name.find(name);
      if (found == by_name.end()) {
        fail(item(item("pieces", p) + ".inputs", i) + " '" + name + "'",
             "has no entry in values: neither a model input nor produced by an earlier piece");
      }
      const auto& consumers = found->second->consumers;
      if (std::find(consumers.begin(), consumers.end(), p) == consumers.end()) {
        fail(item(item("pieces", p) + ".inputs", i) + " '" + name + "'",
             "values does not list piece " + std::to_string(p) + " among its consumers");
      }
    }
    for (size_t i = 0; i < piece.outputs.size(); ++i) {
      const std::string& name = piece.outputs[i].name;
      auto found = by_name.find(name);
      bool is_output = find_value(plan.model_outputs, name) != nullptr;
      if (is_output) ++output_producers[name];
      if (found == by_name.end() ? !is_output : found->second->producer != p) {
        fail(item(item("pieces", p) + ".outputs", i) + " '" + name + "'",
             "values does not name piece " + std::to_string(p) + " as its producer");
      }
    }
  }
  for (size_t o = 0; o < plan.model_outputs.size(); ++o) {
    const std::string& name = plan.model_outputs[o].name;
    int producers = output_producers[name];
    // A model output that is also a model input passes through without any piece producing it.
    bool passthrough = find_value(plan.model_inputs, name) != nullptr;
    if (producers > 1 || (producers == 0 && !passthrough)) {
      fail(item("outputs", o) + " '" + name + "'",
           "produced by " + std::to_string(producers) + " pieces, expected exactly one");
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::IO, path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::IO, path + ": read failed");
  return text.str();
}

Plan parse(const std::string& text, const std::string& label) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
    throw Error(ErrorCode::INVALID_MODEL, label + ": not valid JSON: " + e.what());
  }
  try {
    return plan_from_json(j);
  } catch (const Error& e) {
    throw e.with_context(label);
  }
}

}  // namespace

std::string Plan::to_json() const {
  Json j;
  j["format_version"] = format_version;
  j["source"] = {{"path", source_path}, {"sha256", source_sha256}};
  j["balance"] = balance;
  j["cost_unit"] = cost_unit;
  j["dims"] = Json::object();
  for (const auto& [name, value] : dims) j["dims"][name] = value;
  j["inputs"] = values_to_json(model_inputs);
  j["outputs"] = values_to_json(model_outputs);
  j["pieces"] = Json::array();
  for (const auto& piece : pieces) {
    Json p;
    p["index"] = piece.index;
    p["file"] = piece.file;
    p["data_file"] = piece.data_file.empty() ? Json(nullptr) : Json(piece.data_file);
    p["nodes"] = piece.node_count;
    p["recomputed_nodes"] = piece.recomputed_nodes;
    p["weight_bytes"] = piece.weight_bytes;
    p["duplicated_bytes"] = piece.duplicated_bytes;
    p["cost"] = piece.cost;
    if (piece.activation_bytes >= 0)
      p["memory"] = {{"weights", piece.resident_weight_bytes}, {"activations", piece.activation_bytes}};
    if (piece.activation_bytes >= 0 && piece.cpu_overhead_bytes >= 0)
      p["memory"]["cpu_overhead"] = piece.cpu_overhead_bytes;
    p["inputs"] = values_to_json(piece.inputs);
    p["outputs"] = values_to_json(piece.outputs);
    j["pieces"].push_back(std::move(p));
  }
  j["values"] = Json::array();
  for (const auto& value : values) {
    j["values"].push_back({{"name", value.name},
                           {"producer", value.producer},
                           {"consumers", value.consumers},
                           {"graph_output", value.graph_output}});
  }
  j["duplicated_nodes"] = duplicated_nodes;
  j["weights"] = weights;
  j["linked_files"] = linked_files;
  j["prediction"] = {
      {"max_cost", predicted_max_cost}, {"ideal_cost", ideal_cost}, {"heaviest_node_cost", heaviest_node_cost}};
  std::string text;
  write_pretty(j, 0, 0, text);
  return text + "\n";
}

Plan Plan::from_json(const std::string& text) { return parse(text, "plan.json"); }

void Plan::validate() const {
  try {
    validate_plan(*this);
  } catch (const Error& e) {
    throw e.with_context("plan");
  }
}

Plan Plan::load(const std::string& dir) {
  std::string path = (fs::path(dir) / "plan.json").string();
  Plan plan = parse(read_file(path), path);
  try {
    validate_plan(plan);
  } catch (const Error& e) {
    throw e.with_context(path);
  }
  for (const auto& piece : plan.pieces) {
    for (const std::string* file : {&piece.file, &piece.data_file}) {
      if (!file->empty() && !fs::is_regular_file(fs::path(dir) / *file)) {
        throw Error(ErrorCode::IO, path + ": pieces[" + std::to_string(piece.index) + "]." +
                                       (file == &piece.file ? "file" : "data_file") + ": " +
                                       (fs::path(dir) / *file).string() + " does not exist");
      }
    }
  }
  for (size_t i = 0; i < plan.linked_files.size(); ++i) {
    if (!fs::is_regular_file(fs::path(dir) / plan.linked_files[i]))
      throw Error(ErrorCode::IO, path + ": linked_files[" + std::to_string(i) +
                                     "]: " + (fs::path(dir) / plan.linked_files[i]).string() + " does not exist");
  }
  return plan;
}

void Plan::save(const std::string& dir) const {
  std::string path = (fs::path(dir) / "plan.json").string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::IO, path + ": cannot open for writing");
  out << to_json();
  out.close();
  if (!out) throw Error(ErrorCode::IO, path + ": write failed");
}

}  // namespace onnxpipe
