#include "onnxpipe/plan.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "onnxpipe/error.h"
#include "support/temp_dir.h"

namespace onnxpipe {
namespace {

namespace fs = std::filesystem;

ValueDesc value(const std::string& name, DType dtype, std::vector<Dim> dims, int64_t bytes) {
  ValueDesc v;
  v.name = name;
  v.dtype = dtype;
  v.has_shape = true;
  v.dims = std::move(dims);
  v.bytes = bytes;
  return v;
}

// Three pieces: x enters pieces 0 and 2, h skips piece 1, early is a model output of piece 0 that piece 1 also reads,
// y leaves from piece 2.
Plan sample_plan() {
  Plan plan;
  plan.source_path = "/models/m.onnx";
  plan.source_sha256 = std::string(64, 'a');
  plan.balance = "flops";
  plan.cost_unit = "flops";
  plan.dims = {{"batch", 2}};
  ValueDesc x = value("x", DType::FLOAT, {{-1, "batch"}, {3, ""}}, 24);
  ValueDesc h = value("h", DType::FLOAT, {{-1, "batch"}, {-1, ""}}, -1);
  ValueDesc early = value("early", DType::INT64, {}, 8);
  ValueDesc g = value("g", DType::FLOAT16, {{4, ""}}, 8);
  g.bytes_estimated = true;
  ValueDesc y;
  y.name = "y";
  y.dtype = DType::FLOAT;  // no shape
  plan.model_inputs = {x};
  plan.model_outputs = {early, y};
  PieceDesc p0{0, "piece_0.onnx", "", 3, 100, 10, 1.5, {x}, {h, early}};
  PieceDesc p1{1, "piece_1.onnx", "piece_1.data", 2, 2000, 0, 2.25, {early}, {g}};
  PieceDesc p2{2, "piece_2.onnx", "", 1, 0, 10, 1.0, {x, h, g}, {y}};
  p2.recomputed_nodes = 2;
  plan.pieces = {p0, p1, p2};
  plan.duplicated_nodes = 1;
  plan.values = {
      {"x", -1, {0, 2}, false}, {"h", 0, {2}, false}, {"early", 0, {1}, true}, {"g", 1, {2}, false}, {"y", 2, {}, true},
  };
  plan.predicted_max_cost = 2.25;
  plan.ideal_cost = 1.583;
  plan.heaviest_node_cost = 0.9;
  return plan;
}

void expect_same_values(const std::vector<ValueDesc>& a, const std::vector<ValueDesc>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].has_shape, b[i].has_shape);
    EXPECT_EQ(a[i].dims, b[i].dims);
    EXPECT_EQ(a[i].bytes, b[i].bytes);
    EXPECT_EQ(a[i].bytes_estimated, b[i].bytes_estimated);
  }
}

void expect_same(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.source_path, b.source_path);
  EXPECT_EQ(a.source_sha256, b.source_sha256);
  EXPECT_EQ(a.balance, b.balance);
  EXPECT_EQ(a.cost_unit, b.cost_unit);
  EXPECT_EQ(a.dims, b.dims);
  expect_same_values(a.model_inputs, b.model_inputs);
  expect_same_values(a.model_outputs, b.model_outputs);
  ASSERT_EQ(a.parts(), b.parts());
  for (int p = 0; p < a.parts(); ++p) {
    const PieceDesc &x = a.pieces[p], &y = b.pieces[p];
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.file, y.file);
    EXPECT_EQ(x.data_file, y.data_file);
    EXPECT_EQ(x.node_count, y.node_count);
    EXPECT_EQ(x.weight_bytes, y.weight_bytes);
    EXPECT_EQ(x.duplicated_bytes, y.duplicated_bytes);
    EXPECT_EQ(x.cost, y.cost);
    EXPECT_EQ(x.recomputed_nodes, y.recomputed_nodes);
    expect_same_values(x.inputs, y.inputs);
    expect_same_values(x.outputs, y.outputs);
  }
  ASSERT_EQ(a.values.size(), b.values.size());
  for (size_t v = 0; v < a.values.size(); ++v) {
    EXPECT_EQ(a.values[v].name, b.values[v].name);
    EXPECT_EQ(a.values[v].producer, b.values[v].producer);
    EXPECT_EQ(a.values[v].consumers, b.values[v].consumers);
    EXPECT_EQ(a.values[v].graph_output, b.values[v].graph_output);
  }
  EXPECT_EQ(a.duplicated_nodes, b.duplicated_nodes);
  EXPECT_EQ(a.predicted_max_cost, b.predicted_max_cost);
  EXPECT_EQ(a.ideal_cost, b.ideal_cost);
  EXPECT_EQ(a.heaviest_node_cost, b.heaviest_node_cost);
}

std::string error_of(const std::function<void()>& f, ErrorCode code = ErrorCode::INVALID_MODEL) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string validation_error(const std::function<void(Plan&)>& edit) {
  Plan plan = sample_plan();
  edit(plan);
  return error_of([&] { plan.validate(); });
}

TEST(Plan, SamplePlanIsValid) { EXPECT_NO_THROW(sample_plan().validate()); }

TEST(Plan, JsonRoundTripKeepsEveryField) {
  Plan plan = sample_plan();
  std::string text = plan.to_json();
  expect_same(Plan::from_json(text), plan);
  EXPECT_EQ(Plan::from_json(text).to_json(), text);
}

TEST(Plan, JsonIsReadable) {
  std::string text = sample_plan().to_json();
  // Shapes and value entries stay on one line; dtypes by name; unknown shape null.
  EXPECT_NE(text.find(R"("shape": ["batch", 3])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("shape": ["batch", null])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"name": "y", "dtype": "float", "shape": null, "bytes": null})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"name": "x", "producer": -1, "consumers": [0, 2], "graph_output": false})"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("data_file": null)"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  \"pieces\": [\n"), std::string::npos) << text;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    EXPECT_LE(end - start, 120u) << text.substr(start, end - start);
  }
}

TEST(Plan, SaveAndLoad) {
  test::TempDir dir;
  Plan plan = sample_plan();
  for (const char* file : {"piece_0.onnx", "piece_1.onnx", "piece_1.data", "piece_2.onnx"}) {
    std::ofstream(dir.path() / file) << "x";
  }
  plan.save(dir.path().string());
  expect_same(Plan::load(dir.path().string()), plan);

  fs::remove(dir.path() / "piece_1.data");
  std::string message = error_of([&] { Plan::load(dir.path().string()); }, ErrorCode::IO);
  EXPECT_NE(message.find("pieces[1].data_file"), std::string::npos) << message;
  EXPECT_NE(message.find("piece_1.data does not exist"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { Plan::load((dir.path() / "nowhere").string()); }, ErrorCode::IO).find("plan.json"),
            std::string::npos);
}

TEST(Plan, LoadValidatesAndNamesThePath) {
  test::TempDir dir;
  Plan plan = sample_plan();
  plan.pieces[2].index = 5;
  plan.save(dir.path().string());
  std::string message = error_of([&] { Plan::load(dir.path().string()); });
  EXPECT_EQ(message.rfind((dir.path() / "plan.json").string() + ": pieces[2].index: is 5, expected 2", 0), 0u)
      << message;
}

TEST(PlanValidate, RejectsEveryBrokenInvariant) {
  auto expect_message = [](const std::string& message, const std::string& fragment) {
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  };
  expect_message(validation_error([](Plan& p) { p.pieces.clear(); }), "pieces: empty");
  expect_message(validation_error([](Plan& p) { std::swap(p.pieces[0], p.pieces[1]); }),
                 "pieces[0].index: is 1, expected 0");
  // A piece input nobody produces.
  expect_message(validation_error([](Plan& p) { p.pieces[1].inputs.push_back(p.pieces[2].outputs[0]); }),
                 "pieces[1].inputs[1] 'y': values does not list piece 1 among its consumers");
  expect_message(validation_error([](Plan& p) { p.pieces[1].inputs.push_back(value("ghost", DType::FLOAT, {}, 4)); }),
                 "pieces[1].inputs[1] 'ghost': has no entry in values");
  // Consumers out of order, or before their producer.
  expect_message(validation_error([](Plan& p) { p.values[0].consumers = {2, 0}; }), "values[0] 'x': consumers");
  expect_message(validation_error([](Plan& p) {
                   p.values[3].producer = 2;
                   p.pieces[2].outputs.push_back(p.pieces[1].outputs[0]);
                   p.pieces[1].outputs.clear();
                 }),
                 "values[3] 'g': consumers must be ascending and after the producer (2)");
  // A listed consumer that does not read the value.
  expect_message(validation_error([](Plan& p) {
                   p.values[1].consumers = {1, 2};
                 }),
                 "values[1] 'h': consumer piece 1 does not list it in its inputs");
  // A producer that does not list the value.
  expect_message(validation_error([](Plan& p) { p.values[1].producer = 1; }),
                 "values[1] 'h': producer piece 1 does not list it in its outputs");
  expect_message(validation_error([](Plan& p) { p.values[0].name = "xx"; }), "not a model input");
  expect_message(validation_error([](Plan& p) { p.values[2].graph_output = false; }),
                 "graph_output is false but it is a model output");
  expect_message(validation_error([](Plan& p) { p.values[1].consumers.clear(); }),
                 "values[1] 'h': no consumers and not a model output");
  expect_message(validation_error([](Plan& p) { p.values.push_back(p.values[1]); }), "values[5] 'h': listed twice");
  // Model outputs produced by no piece or by two.
  expect_message(validation_error([](Plan& p) {
                   p.pieces[2].outputs.clear();
                   p.values.pop_back();
                 }),
                 "outputs[1] 'y': produced by 0 pieces");
  expect_message(validation_error([](Plan& p) { p.pieces[1].outputs.push_back(p.pieces[2].outputs[0]); }),
                 "pieces[1].outputs[1] 'y': values does not name piece 1 as its producer");
  expect_message(validation_error([](Plan& p) { p.pieces[0].file = "/abs/piece_0.onnx"; }),
                 "pieces[0].file: must be relative");
  expect_message(validation_error([](Plan& p) { p.pieces[0].outputs.push_back(p.pieces[0].outputs[0]); }),
                 "pieces[0].outputs[2]: 'h' is listed twice");
  // Messages start with what was validated.
  EXPECT_EQ(validation_error([](Plan& p) { p.pieces.clear(); }).rfind("plan: ", 0), 0u);
}

// A plan as a person would write or edit it by hand.
constexpr const char* kHandWritten = R"({
  "format_version": 1,
  "source": {"path": "model.onnx", "sha256": ""},
  "balance": "bytes", "cost_unit": "bytes",
  "dims": {"batch": 4},
  "inputs": [{"name": "in", "dtype": "float", "shape": ["batch", 3, null], "bytes": null}],
  "outputs": [{"name": "out", "dtype": "bool", "shape": [], "bytes": 1}],
  "pieces": [
    {"index": 0, "file": "a.onnx", "data_file": "", "nodes": 1, "weight_bytes": 0, "duplicated_bytes": 0, "cost": 1,
     "inputs": [{"name": "in", "dtype": "float", "shape": ["batch", 3, null], "bytes": null}],
     "outputs": [{"name": "mid", "dtype": "float16", "shape": null, "bytes": null}]},
    {"index": 1, "file": "b.onnx", "data_file": null, "nodes": 2, "weight_bytes": 16, "duplicated_bytes": 0,
     "cost": 0.5,
     "inputs": [{"name": "mid", "dtype": "float16", "shape": null, "bytes": null}],
     "outputs": [{"name": "out", "dtype": "bool", "shape": [], "bytes": 1}]}
  ],
  "values": [
    {"name": "in", "producer": -1, "consumers": [0], "graph_output": false},
    {"name": "mid", "producer": 0, "consumers": [1], "graph_output": false},
    {"name": "out", "producer": 1, "consumers": [], "graph_output": true}
  ],
  "prediction": {"max_cost": 1, "ideal_cost": 0.75, "heaviest_node_cost": 1}
})";

TEST(PlanJson, ReadsHandWrittenPlan) {
  Plan plan = Plan::from_json(kHandWritten);
  EXPECT_NO_THROW(plan.validate());
  ASSERT_EQ(plan.parts(), 2);
  EXPECT_EQ(plan.dims.at("batch"), 4);
  const ValueDesc& in = plan.model_inputs[0];
  EXPECT_TRUE(in.has_shape);
  EXPECT_EQ(in.dims, (std::vector<Dim>{{-1, "batch"}, {3, ""}, {-1, ""}}));
  EXPECT_EQ(in.bytes, -1);
  EXPECT_TRUE(plan.model_outputs[0].has_shape);  // a scalar
  EXPECT_TRUE(plan.model_outputs[0].dims.empty());
  EXPECT_FALSE(plan.pieces[0].outputs[0].has_shape);
  EXPECT_EQ(plan.pieces[0].outputs[0].dtype, DType::FLOAT16);
  EXPECT_EQ(plan.pieces[0].data_file, "");
  EXPECT_EQ(plan.pieces[1].cost, 0.5);
  // Written before estimated sizes and recomputed nodes were recorded: none of either.
  EXPECT_FALSE(plan.pieces[0].outputs[0].bytes_estimated);
  EXPECT_EQ(plan.pieces[1].recomputed_nodes, 0);
  EXPECT_EQ(plan.duplicated_nodes, 0);
}

TEST(PlanJson, EstimatedBytesAreMarkedAndChecked) {
  const std::string text = sample_plan().to_json();
  EXPECT_NE(text.find(R"({"name": "g", "dtype": "float16", "shape": [4], "bytes": 8, "bytes_estimated": true})"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find(R"("name": "x", "dtype": "float", "shape": ["batch", 3], "bytes": 24, "bytes_estimated")"),
            std::string::npos)
      << "a known size carries no mark";
  EXPECT_NE(text.find(R"("duplicated_nodes": 1)"), std::string::npos) << text;
  auto edited = [&text](const std::string& from, const std::string& to) {
    std::string copy = text;
    size_t at = copy.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return copy.replace(at, from.size(), to);
  };
  auto message = [](const std::string& json) { return error_of([&] { Plan::from_json(json); }); };
  const std::string marked = R"("bytes": 8, "bytes_estimated": true)";
  EXPECT_EQ(message(edited(marked, R"("bytes": 8, "bytes_estimated": 1)")),
            "plan.json: pieces[1].outputs[0].bytes_estimated: expected true or false, got a number");
  EXPECT_EQ(message(edited(marked, R"("bytes": null, "bytes_estimated": true)")),
            "plan.json: pieces[1].outputs[0].bytes_estimated: true but bytes is null");
  EXPECT_EQ(message(edited(R"("recomputed_nodes": 2)", R"("recomputed_nodes": -1)")),
            "plan.json: pieces[2].recomputed_nodes: must not be negative");
}

TEST(PlanJson, ErrorsNameTheField) {
  auto edited = [](const std::string& from, const std::string& to) {
    std::string text = kHandWritten;
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  auto message = [](const std::string& text) { return error_of([&] { Plan::from_json(text); }); };
  EXPECT_EQ(message(edited(R"("name": "mid", "dtype": "float16")", R"("name": "mid", "dtype": "flot")")),
            "plan.json: pieces[0].outputs[0].dtype: unknown dtype 'flot'");
  EXPECT_EQ(message(edited(R"("nodes": 2, )", "")), "plan.json: pieces[1].nodes: missing");
  EXPECT_EQ(message(edited(R"("nodes": 2)", R"("nodes": "2")")),
            "plan.json: pieces[1].nodes: expected an integer, got a string");
  EXPECT_EQ(message(edited(R"("nodes": 2)", R"("nodes": 2.5)")),
            "plan.json: pieces[1].nodes: expected an integer, got a number");
  EXPECT_EQ(message(edited(R"("nodes": 2)", R"("nodes": -2)")), "plan.json: pieces[1].nodes: must not be negative");
  EXPECT_EQ(message(edited(R"("nodes": 2)", R"("nodse": 2)")), "plan.json: pieces[1].nodse: unknown field");
  EXPECT_EQ(message(edited(R"(["batch", 3, null])", R"(["batch", 3.5, null])")),
            "plan.json: inputs[0].shape[1]: expected a size, a dimension name or null, got a number");
  EXPECT_EQ(message(edited(R"("consumers": [1])", R"("consumers": [-1])")),
            "plan.json: values[1].consumers[0]: -1 is out of range");
  EXPECT_EQ(message(edited(R"("graph_output": true)", R"("graph_output": 1)")),
            "plan.json: values[2].graph_output: expected true or false, got a number");
  EXPECT_EQ(message(edited(R"("format_version": 1)", R"("format_version": 2)")),
            "plan.json: format_version: 2 is not supported (this onnxpipe reads version 1)");
  EXPECT_EQ(message(edited(R"("max_cost": 1, )", "")), "plan.json: prediction.max_cost: missing");
  EXPECT_EQ(message("[]"), "plan.json: top level: expected an object, got an array");
  EXPECT_EQ(message("{\"format_version\": 1,").rfind("plan.json: not valid JSON", 0), 0u);
}

TEST(DimNames, ADimensionNoInputCarriesIsAUsageErrorNamingTheOthers) {
  const std::vector<ValueDesc> inputs = {{"ids", DType::INT64, true, {Dim{-1, "batch"}, Dim{-1, "seq"}}, -1},
                                         {"mask", DType::FLOAT, true, {Dim{-1, "batch"}, Dim{1, ""}}, -1}};
  EXPECT_NO_THROW(check_dim_names(inputs, {{"batch", 2}, {"seq", 8}}));
  EXPECT_NO_THROW(check_dim_names(inputs, {}));
  try {
    check_dim_names(inputs, {{"batch", 2}, {"sequence", 8}});
    ADD_FAILURE() << "a misspelt dimension was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::USAGE);
    EXPECT_NE(std::string(e.what()).find("dimension 'sequence'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("named: batch, seq"), std::string::npos) << e.what();
    // The library names no CLI flag; the argument is structured for a front end to name its own.
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
    ASSERT_TRUE(e.argument().has_value());
    EXPECT_EQ(e.argument()->field, "dims");
    EXPECT_EQ(e.argument()->entry, "sequence");
  }
  const std::vector<ValueDesc> fixed = {{"image", DType::FLOAT, true, {Dim{1, ""}, Dim{3, ""}}, -1}};
  try {
    check_dim_names(fixed, {{"batch", 2}});
    ADD_FAILURE() << "a dimension was accepted for a model with none";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("it has none"), std::string::npos) << e.what();
  }
}

TEST(ValueDesc, OfShapeIsConcreteWithItsByteSize) {
  const ValueDesc v = ValueDesc::of_shape("x", DType::FLOAT, {2, 3});
  EXPECT_TRUE(v.is_concrete());
  EXPECT_EQ(v.bytes, 24);
  EXPECT_EQ(v.concrete_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v.dims_text(), "[2,3]");
  EXPECT_EQ(v.dims_text(", "), "[2, 3]");
  EXPECT_EQ(ValueDesc::of_shape("s", DType::STRING, {2}).bytes, -1);  // strings have no fixed size
}

TEST(ValueDesc, SymbolicAndUnknownDimsAreNotConcrete) {
  ValueDesc v;
  v.name = "x";
  EXPECT_EQ(v.dims_text(), "unknown");
  EXPECT_FALSE(v.is_concrete());
  v.has_shape = true;
  v.dims = {Dim{-1, "batch"}, Dim{-1, ""}, Dim{4, ""}};
  EXPECT_EQ(v.dims_text(), "[batch,?,4]");
  EXPECT_FALSE(v.is_concrete());
  EXPECT_THROW(v.concrete_shape(), Error);
}

}  // namespace
}  // namespace onnxpipe
