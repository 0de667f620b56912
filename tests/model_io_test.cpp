// Model I/O on models built in code: what load() describes, load errors, pieces written back, shape inference,
// serialization with extra outputs, TensorProto files and hashing.
#include "model_io.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "support/expect_error.h"
#include "support/model_builder.h"
#include "support/onnx_check.h"

namespace onnxpipe::detail {
namespace {

namespace fs = std::filesystem;
using test::ModelBuilder;

class ModelIo : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("model_io"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

onnx::ModelProto read_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

std::string read_bytes(const std::string& path, int64_t offset = 0, int64_t length = -1) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (length < 0) length = size - offset;
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  EXPECT_EQ(in.gcount(), length) << path;
  return bytes;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::map<std::string, std::string> external_entries(const onnx::TensorProto& t) {
  std::map<std::string, std::string> kv;
  for (const auto& e : t.external_data()) kv[e.key()] = e.value();
  return kv;
}

const NodeDesc& node_producing(const GraphDesc& g, const std::string& output) {
  for (const auto& n : g.nodes)
    if (std::find(n.outputs.begin(), n.outputs.end(), output) != n.outputs.end()) return n;
  throw std::runtime_error("no node produces " + output);
}

TEST_F(ModelIo, LoadsEveryBuilderModelWithUniqueNonEmptyNodeNames) {
  for (const auto& m : test::all_models()) {
    SCOPED_TRACE(m.name);
    const Model model = Model::load(m.make(dir_));
    const GraphDesc& g = model.graph();
    EXPECT_GE(g.nodes.size(), 4u);
    EXPECT_FALSE(g.outputs.empty());
    EXPECT_EQ(g.file_bytes, static_cast<int64_t>(fs::file_size(g.path)));
    std::set<std::string> names;
    for (const auto& n : g.nodes) {
      EXPECT_FALSE(n.name.empty());
      EXPECT_TRUE(names.insert(n.name).second) << n.name;
    }
  }
}

TEST_F(ModelIo, RepeatedAndEmptyNodeNamesAreReplacedWithoutClashing) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {2});
  b.node("Relu", {"x"}, {"a"}, {}, "", "dup");
  b.node("Relu", {"a"}, {"b"}, {}, "", "dup");
  b.node("Relu", {"b"}, {"c"});
  b.node("Relu", {"c"}, {"y"}, {}, "", "Relu_2");
  b.output("y", DType::FLOAT, {2});
  const Model model = Model::load(b.save(path("names.onnx")));
  std::vector<std::string> names;
  for (const auto& n : model.graph().nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"dup", "Relu_1", "Relu_2_1", "Relu_2"}));

  onnx::ModelProto serialized;
  ASSERT_TRUE(serialized.ParseFromString(model.serialize()));
  for (int i = 0; i < serialized.graph().node_size(); ++i) EXPECT_EQ(serialized.graph().node(i).name(), names[i]);
}

TEST_F(ModelIo, IfNodeListsOuterValuesOfNestedBranchesAsImplicitInputs) {
  const Model model = Model::load(test::if_reads_outer_values(dir_));
  const NodeDesc& node = node_producing(model.graph(), "branch");
  EXPECT_EQ(node.op_type, "If");
  EXPECT_TRUE(node.has_subgraph);
  EXPECT_EQ(node.inputs, std::vector<std::string>{"cond"});
  // e is defined in the else branch, so only the nested If sees it as outer; cond and x come from two levels up.
  EXPECT_EQ(node.implicit_inputs, (std::vector<std::string>{"a", "b", "cond", "w", "x"}));
  for (const auto& n : model.graph().nodes) {
    if (n.op_type != "If") {
      EXPECT_TRUE(n.implicit_inputs.empty() && !n.has_subgraph) << n.name;
    }
  }
}

TEST_F(ModelIo, ConstantNodeOutputsAreWeightsPointingAtTheirNode) {
  const Model model = Model::load(test::constant_node_weights(dir_));
  const GraphDesc& g = model.graph();
  ASSERT_EQ(g.weights.size(), 3u);
  const WeightDesc& cw = g.weights.at("cw");
  EXPECT_EQ(cw.dtype, DType::FLOAT);
  EXPECT_EQ(cw.shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(cw.bytes, 256);
  EXPECT_EQ(g.nodes.at(cw.constant_node).outputs, std::vector<std::string>{"cw"});
  const WeightDesc& scale = g.weights.at("scale");
  EXPECT_EQ(scale.dtype, DType::FLOAT);
  EXPECT_TRUE(scale.shape.empty());
  EXPECT_EQ(scale.bytes, 4);
  const WeightDesc& shape = g.weights.at("shape");
  EXPECT_EQ(shape.dtype, DType::INT64);
  EXPECT_EQ(shape.shape, std::vector<int64_t>{2});
  EXPECT_EQ(shape.bytes, 16);
  EXPECT_EQ(g.nodes.at(shape.constant_node).op_type, "Constant");
  EXPECT_NE(cw.constant_node, shape.constant_node);
}

TEST_F(ModelIo, UnsortedNodesStayInFileOrder) {
  const Model model = Model::load(test::unsorted_nodes(dir_));
  std::vector<std::string> outputs;
  for (const auto& n : model.graph().nodes) outputs.push_back(n.outputs.at(0));
  EXPECT_EQ(outputs, (std::vector<std::string>{"d", "y", "a", "e", "c", "b"}));
}

TEST_F(ModelIo, FunctionsCustomDomainsAndUnusedOpsetsAreReported) {
  const Model local = Model::load(test::model_local_function(dir_));
  EXPECT_EQ(local.graph().function_count, 1);
  EXPECT_EQ(local.graph().opsets, (std::map<std::string, int64_t>{{"", 17}, {"local", 1}}));
  EXPECT_EQ(node_producing(local.graph(), "a").domain, "local");

  const Model custom = Model::load(test::custom_domain(dir_));
  EXPECT_EQ(custom.graph().function_count, 1);
  EXPECT_EQ(custom.graph().opsets,
            (std::map<std::string, int64_t>{{"", 17}, {"ai.onnx.ml", 3}, {"com.unused", 1}, {"com.example", 1}}));
  EXPECT_EQ(custom.graph().producer_name, "onnxpipe-tests");
  EXPECT_EQ(custom.graph().ir_version, 8);
}

TEST_F(ModelIo, ExternalWeightsAreFlaggedNotRead) {
  const Model model = Model::load(test::external_data(dir_));
  const GraphDesc& g = model.graph();
  EXPECT_TRUE(g.external_data);
  ASSERT_EQ(g.weights.size(), 4u);
  for (const auto& [name, w] : g.weights) EXPECT_TRUE(w.external) << name;
  EXPECT_EQ(g.weights.at("w1").bytes, 64 * 64 * 4);
  EXPECT_LT(g.file_bytes, 4096);  // the weights are in the .data file
}

TEST_F(ModelIo, SparseAndTypedFieldInitializersAreWeights) {
  const Model model = Model::load(test::sparse_initializer(dir_));
  const GraphDesc& g = model.graph();
  const WeightDesc& sw = g.weights.at("sw");
  EXPECT_TRUE(sw.sparse);
  EXPECT_EQ(sw.shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(sw.bytes, 4 * 4 + 4 * 8);  // stored values + indices
  EXPECT_EQ(g.weights.at("bias").bytes, 32);
  EXPECT_FALSE(g.weights.at("bias").sparse);
  ASSERT_EQ(g.inputs.size(), 1u);
}

TEST_F(ModelIo, InitializersListedAsInputsAreWeightsAndIr3PiecesListThemAgain) {
  ModelBuilder b(9, 3);
  b.input("x", DType::FLOAT, {"n", 4});
  b.input("w", DType::FLOAT, {4, 4});
  b.initializer(test::random_tensor("w", {4, 4}));
  b.node("MatMul", {"x", "w"}, {"h"});
  b.node("Relu", {"h"}, {"y"});
  b.output("y", DType::FLOAT, {"n", 4});
  const Model model = Model::load(b.save(path("ir3.onnx")));
  ASSERT_EQ(model.graph().inputs.size(), 1u);
  EXPECT_EQ(model.graph().inputs[0].name, "x");
  EXPECT_TRUE(model.graph().weights.count("w"));

  PieceSpec spec;
  spec.nodes = {0};
  spec.weights = {"w"};
  spec.inputs = {model.graph().inputs[0]};
  spec.outputs = {ValueDesc{"h", DType::FLOAT, true, {Dim{-1, "n"}, Dim{4, ""}}, -1}};
  model.write_piece(spec, path("piece.onnx"));
  const onnx::ModelProto piece = read_proto(path("piece.onnx"));
  EXPECT_EQ(piece.ir_version(), 3);
  ASSERT_EQ(piece.graph().input_size(), 2);
  EXPECT_EQ(piece.graph().input(1).name(), "w");
  EXPECT_TRUE(test::check_onnx_file(path("piece.onnx")));
}

TEST_F(ModelIo, NotOnnxFileIsInvalidModelNamingThePath) {
  write_bytes(path("text.onnx"), "this is not a protobuf at all, just some text\n");
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { Model::load(path("text.onnx")); }, &message), ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find(path("text.onnx")), std::string::npos) << message;
  write_bytes(path("empty.onnx"), "");
  EXPECT_EQ(test::error_code_of([&] { Model::load(path("empty.onnx")); }, &message), ErrorCode::INVALID_MODEL);
}

TEST_F(ModelIo, EveryTruncationIsInvalidModel) {
  const std::string bytes = read_bytes(test::skip_connections(dir_));
  for (size_t size = 1; size < bytes.size(); ++size) {
    write_bytes(path("cut.onnx"), bytes.substr(0, size));
    std::string message;
    ASSERT_EQ(test::error_code_of([&] { Model::load(path("cut.onnx")); }, &message), ErrorCode::INVALID_MODEL)
        << "truncated to " << size << " of " << bytes.size();
  }
}

TEST_F(ModelIo, MissingFileIsIoError) {
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { Model::load(path("absent.onnx")); }, &message), ErrorCode::IO);
  EXPECT_NE(message.find("absent.onnx"), std::string::npos) << message;
}

TEST_F(ModelIo, MissingExternalDataFileIsIoErrorNamingIt) {
  const std::string model = test::external_data(dir_);
  fs::remove(model + ".data");
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { Model::load(model); }, &message), ErrorCode::IO);
  EXPECT_NE(message.find("external_data.onnx.data"), std::string::npos) << message;
}

TEST_F(ModelIo, ShortExternalDataFileIsInvalidModel) {
  const std::string model = test::external_data(dir_);
  fs::resize_file(model + ".data", fs::file_size(model + ".data") - 1);
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { Model::load(model); }, &message), ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find("w3"), std::string::npos) << message;
}

TEST_F(ModelIo, PieceOfMiddleNodesDeclaresWhatItIsGiven) {
  const Model model = Model::load(test::skip_connections(dir_));
  const GraphDesc& g = model.graph();
  PieceSpec spec;
  spec.nodes = {3, 4, 5};  // MatMul(s1, w2), Tanh, Add(r2, s1)
  spec.weights = {"w2"};
  spec.inputs = {ValueDesc{"s1", DType::FLOAT, true, {Dim{-1, "batch"}, Dim{8, ""}}, -1}};
  spec.outputs = {ValueDesc{"s2", DType::FLOAT, false, {}, -1},
                  ValueDesc{"r2", DType::FLOAT, true, {Dim{}, Dim{8, ""}}, -1}};
  EXPECT_EQ(model.write_piece(spec, path("piece_1.onnx")), 256);

  const Model piece = Model::load(path("piece_1.onnx"));
  const GraphDesc& p = piece.graph();
  ASSERT_EQ(p.nodes.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.nodes[i].name, g.nodes[spec.nodes[i]].name);
  ASSERT_EQ(p.inputs.size(), 1u);
  EXPECT_EQ(p.inputs[0].name, "s1");
  EXPECT_EQ(p.inputs[0].dims, spec.inputs[0].dims);
  ASSERT_EQ(p.outputs.size(), 2u);
  EXPECT_EQ(p.outputs[0].dtype, DType::FLOAT);
  EXPECT_FALSE(p.outputs[0].has_shape);
  EXPECT_TRUE(p.outputs[1].has_shape);
  EXPECT_EQ(p.outputs[1].dims, (std::vector<Dim>{Dim{}, Dim{8, ""}}));
  ASSERT_EQ(p.weights.size(), 1u);
  EXPECT_EQ(p.weights.at("w2").bytes, 256);
  EXPECT_FALSE(p.weights.at("w2").external);
  EXPECT_EQ(p.ir_version, g.ir_version);
  EXPECT_EQ(p.opsets, g.opsets);

  const onnx::ModelProto proto = read_proto(path("piece_1.onnx"));
  EXPECT_EQ(proto.graph().name(), "main_piece");
  EXPECT_FALSE(proto.graph().output(0).type().tensor_type().has_shape());  // no shape field at all, not rank 0
  EXPECT_EQ(proto.graph().initializer(0).raw_data(), read_proto(g.path).graph().initializer(1).raw_data());
  EXPECT_TRUE(test::check_onnx_file(path("piece_1.onnx")));
}

TEST_F(ModelIo, PieceKeepsFunctionsMetadataAndConstantNodes) {
  ModelBuilder b;
  b.metadata("author", "tests");
  b.function("local", "Double", {"X"}, {"Y"}, {test::make_node("Add", {"X", "X"}, {"Y"})});
  b.input("x", DType::FLOAT, {4});
  b.constant(test::random_tensor("c", {4}));
  b.node("Add", {"x", "c"}, {"a"});
  b.node("Double", {"a"}, {"y"}, {}, "local");
  b.output("y", DType::FLOAT, {4});
  const Model model = Model::load(b.save(path("f.onnx")));
  PieceSpec spec;
  spec.nodes = {0, 1, 2};
  spec.weights = {"c"};  // a Constant-node weight travels with its node, not as an initializer
  spec.inputs = model.graph().inputs;
  spec.outputs = model.graph().outputs;
  EXPECT_EQ(model.write_piece(spec, path("piece.onnx")), 0);
  const onnx::ModelProto piece = read_proto(path("piece.onnx"));
  EXPECT_EQ(piece.functions_size(), 1);
  ASSERT_EQ(piece.metadata_props_size(), 1);
  EXPECT_EQ(piece.metadata_props(0).value(), "tests");
  EXPECT_EQ(piece.producer_name(), "onnxpipe-tests");
  EXPECT_EQ(piece.graph().initializer_size(), 0);
  EXPECT_EQ(piece.graph().node(0).op_type(), "Constant");
  EXPECT_TRUE(test::check_onnx_file(path("piece.onnx")));
}

// Every dense weight the source keeps on disk goes to the piece's own data file, 4096-aligned, with the source's
// bytes; small ones the source keeps in memory (raw or typed fields) stay in the piece as they are: ONNX Runtime's
// shape inference reads split sizes and shapes only from data inside the model.
TEST_F(ModelIo, PieceWeightsStreamToItsOwnAlignedDataFile) {
  for (const auto make : {test::external_data, test::skip_connections, test::sparse_initializer}) {
    const Model model = Model::load(make(dir_));
    const GraphDesc& g = model.graph();
    SCOPED_TRACE(g.path);
    const onnx::ModelProto source = read_proto(g.path);
    PieceSpec spec;
    for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) spec.nodes.push_back(i);
    int64_t total = 0;
    for (const auto& [name, w] : g.weights) {
      spec.weights.push_back(name);
      total += w.bytes;
    }
    spec.inputs = g.inputs;
    spec.outputs = g.outputs;
    spec.data_file = "piece_0.data";
    const std::string out = path("piece_0.onnx");
    EXPECT_EQ(model.write_piece(spec, out), total);

    const onnx::ModelProto piece = read_proto(out);
    EXPECT_EQ(piece.graph().initializer_size(), source.graph().initializer_size());
    EXPECT_EQ(piece.graph().sparse_initializer_size(), source.graph().sparse_initializer_size());
    for (const auto& t : piece.graph().initializer()) {
      SCOPED_TRACE(t.name());
      const auto& src = *std::find_if(source.graph().initializer().begin(), source.graph().initializer().end(),
                                      [&](const onnx::TensorProto& s) { return s.name() == t.name(); });
      if (src.data_location() != onnx::TensorProto::EXTERNAL) {
        EXPECT_EQ(t.SerializeAsString(), src.SerializeAsString()) << "kept in the piece as it is";
        continue;
      }
      ASSERT_EQ(t.data_location(), onnx::TensorProto::EXTERNAL);
      EXPECT_FALSE(t.has_raw_data());
      auto kv = external_entries(t);
      EXPECT_EQ(kv["location"], "piece_0.data");
      const int64_t offset = std::stoll(kv["offset"]);
      EXPECT_EQ(offset % 4096, 0);
      const std::string bytes = read_bytes(path("piece_0.data"), offset, std::stoll(kv["length"]));
      auto skv = external_entries(src);
      EXPECT_EQ(bytes, read_bytes(g.path + ".data", std::stoll(skv["offset"]), std::stoll(skv["length"])));
    }
    const Model reloaded = Model::load(out);
    EXPECT_EQ(reloaded.graph().external_data, g.external_data);
    EXPECT_TRUE(test::check_onnx_file(out));
  }
}

TEST_F(ModelIo, ExternalSourceWeightsAreEmbeddedWhenThePieceHasNoDataFile) {
  const Model model = Model::load(test::external_data(dir_));
  PieceSpec spec;
  spec.nodes = {3, 4, 5};
  spec.weights = {"w2", "w3"};
  spec.inputs = {ValueDesc{"r", DType::FLOAT, true, {Dim{-1, "batch"}, Dim{64, ""}}, -1}};
  spec.outputs = model.graph().outputs;
  fs::create_directory(path("out"));
  const std::string out = path("out/piece_1.onnx");
  EXPECT_EQ(model.write_piece(spec, out), (64 * 64 + 64 * 32) * 4);
  const onnx::ModelProto piece = read_proto(out);
  const onnx::ModelProto source = read_proto(model.graph().path);
  ASSERT_EQ(piece.graph().initializer_size(), 2);
  for (const auto& t : piece.graph().initializer()) {
    EXPECT_NE(t.data_location(), onnx::TensorProto::EXTERNAL);
    for (const auto& s : source.graph().initializer()) {
      if (s.name() != t.name()) continue;
      auto kv = external_entries(s);
      EXPECT_EQ(t.raw_data(),
                read_bytes(model.graph().path + ".data", std::stoll(kv["offset"]), std::stoll(kv["length"])));
    }
  }
  EXPECT_FALSE(Model::load(out).graph().external_data);
}

// Large raw_data fields stay on disk after load (their offsets are recorded) and are copied from the file when
// pieces or serialized bytes need them.
TEST_F(ModelIo, LargeEmbeddedWeightsAreCopiedFromTheSourceFile) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 256});
  b.initializer(test::random_tensor("big", {256, 256}, 7));  // 256 KiB
  b.initializer(test::random_tensor("small", {256}, 8));
  b.node("MatMul", {"x", "big"}, {"h"});
  b.node("Add", {"h", "small"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 256});
  const std::string source_path = b.save(path("big.onnx"));
  const onnx::ModelProto source = read_proto(source_path);
  const Model model = Model::load(source_path);
  EXPECT_EQ(model.graph().weights.at("big").bytes, 256 * 256 * 4);
  EXPECT_FALSE(model.graph().weights.at("big").external);

  onnx::ModelProto serialized;
  ASSERT_TRUE(serialized.ParseFromString(model.serialize({"h"})));
  ASSERT_EQ(serialized.graph().initializer_size(), 2);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(serialized.graph().initializer(i).raw_data(), source.graph().initializer(i).raw_data());

  PieceSpec spec;
  spec.nodes = {0, 1};
  spec.weights = {"small", "big"};
  spec.inputs = model.graph().inputs;
  spec.outputs = model.graph().outputs;
  EXPECT_EQ(model.write_piece(spec, path("embedded.onnx")), (256 * 256 + 256) * 4);
  const onnx::ModelProto embedded = read_proto(path("embedded.onnx"));
  ASSERT_EQ(embedded.graph().initializer_size(), 2);
  EXPECT_EQ(embedded.graph().initializer(0).raw_data(), source.graph().initializer(1).raw_data());
  EXPECT_EQ(embedded.graph().initializer(1).raw_data(), source.graph().initializer(0).raw_data());
  EXPECT_TRUE(test::check_onnx_file(path("embedded.onnx")));

  spec.data_file = "external.data";
  model.write_piece(spec, path("external.onnx"));
  const onnx::ModelProto external = read_proto(path("external.onnx"));
  auto kv = external_entries(external.graph().initializer(1));
  EXPECT_EQ(read_bytes(path("external.data"), std::stoll(kv["offset"]), std::stoll(kv["length"])),
            source.graph().initializer(0).raw_data());
  EXPECT_TRUE(test::check_onnx_file(path("external.onnx")));

  // Every truncation inside the skipped weight is still detected.
  const std::string bytes = read_bytes(source_path);
  for (size_t size : {bytes.size() / 2, bytes.size() - 1, bytes.size() - 1030}) {
    write_bytes(path("cut.onnx"), bytes.substr(0, size));
    std::string message;
    EXPECT_EQ(test::error_code_of([&] { Model::load(path("cut.onnx")); }, &message), ErrorCode::INVALID_MODEL) << size;
  }

  // The weights are read when needed: a source replaced after load is refused rather than read at stale offsets.
  fs::remove(source_path);
  write_bytes(source_path, bytes.substr(0, 100));
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { model.serialize(); }, &message), ErrorCode::IO);
  EXPECT_NE(message.find("changed since it was loaded"), std::string::npos) << message;
}

TEST_F(ModelIo, WritePieceRejectsUnknownWeightAndNodeIndex) {
  const Model model = Model::load(test::skip_connections(dir_));
  PieceSpec spec;
  spec.nodes = {0};
  spec.weights = {"nope"};
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { model.write_piece(spec, path("p.onnx")); }, &message), ErrorCode::INTERNAL);
  spec.weights = {"w1"};
  spec.nodes = {99};
  EXPECT_EQ(test::error_code_of([&] { model.write_piece(spec, path("p.onnx")); }, &message), ErrorCode::INTERNAL);
  EXPECT_EQ(test::error_code_of([&] { model.write_piece(PieceSpec{}, path("no/such/dir/p.onnx")); }, &message),
            ErrorCode::IO);
}

TEST_F(ModelIo, InferShapesKeepsSymbolsOrFixesDims) {
  const Model model = Model::load(test::skip_connections(dir_));
  bool complete = false;
  auto symbolic = model.infer_shapes({}, &complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(symbolic.at("h2").dims, (std::vector<Dim>{Dim{-1, "batch"}, Dim{8, ""}}));
  EXPECT_EQ(symbolic.at("h2").bytes, -1);
  EXPECT_EQ(symbolic.at("w1").bytes, 256);

  auto concrete = model.infer_shapes({{"batch", 3}}, &complete);
  EXPECT_TRUE(complete);
  for (const auto& n : model.graph().nodes) {
    const ValueDesc& v = concrete.at(n.outputs[0]);
    EXPECT_EQ(v.dtype, DType::FLOAT);
    EXPECT_EQ(v.dims, (std::vector<Dim>{Dim{3, ""}, Dim{8, ""}})) << v.name;
    EXPECT_EQ(v.bytes, 3 * 8 * 4);
  }
  EXPECT_EQ(concrete.at("x").dims[0].value, 3);
}

TEST_F(ModelIo, InferShapesFixesUnnamedDimsToOneAndReadsConstantAndSparseWeights) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"other", 8});
  b.node("Constant", {}, {"shape"}, {test::attr_ints("value_ints", {4, -1})});
  b.node("Reshape", {"x", "shape"}, {"y"});
  b.output("y", DType::FLOAT, {"a", "b"});
  const Model model = Model::load(b.save(path("r.onnx")));
  bool complete = false;
  const auto shapes = model.infer_shapes({{"batch", 5}}, &complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(shapes.at("y").dims, (std::vector<Dim>{Dim{4, ""}, Dim{2, ""}}));

  const Model sparse = Model::load(test::sparse_initializer(dir_));
  EXPECT_EQ(sparse.infer_shapes({{"batch", 2}}, &complete).at("a").bytes, 2 * 8 * 4);
  EXPECT_TRUE(complete);
}

TEST_F(ModelIo, InferShapesReportsIncompleteShapes) {
  const Model model = Model::load(test::unknown_shapes(dir_));
  bool complete = true;
  const auto shapes = model.infer_shapes({{"batch", 1}}, &complete);
  EXPECT_FALSE(complete);
  EXPECT_FALSE(shapes.at("q").has_shape);
  EXPECT_EQ(shapes.at("y").dims, (std::vector<Dim>{Dim{1, ""}, Dim{4, ""}}));
}

TEST_F(ModelIo, InferShapesHandlesUnsortedIfFunctionsAndCustomDomains) {
  for (const auto make : {test::unsorted_nodes, test::if_reads_outer_values, test::model_local_function,
                          test::custom_domain, test::constant_node_weights, test::mask_read_by_every_block}) {
    const Model model = Model::load(make(dir_));
    SCOPED_TRACE(model.graph().path);
    bool complete = false;
    const auto shapes = model.infer_shapes({{"batch", 2}}, &complete);
    EXPECT_TRUE(complete);
    EXPECT_EQ(shapes.at(model.graph().outputs[0].name).dims[0].value, 2);
  }
}

TEST_F(ModelIo, InferShapesOnAnOpsetNewerThanOnnx112ReturnsWhatIsDeclared) {
  ModelBuilder b(21, 10);
  b.input("x", DType::FLOAT, {"batch", 4});
  b.node("Gelu", {"x"}, {"h"});  // opset 20: unknown to onnx 1.12
  b.node("Relu", {"h"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4});
  const Model model = Model::load(b.save(path("new.onnx")));
  bool complete = true;
  const auto shapes = model.infer_shapes({{"batch", 2}}, &complete);
  EXPECT_FALSE(complete);
  EXPECT_EQ(shapes.at("x").dims[0].value, 2);
  EXPECT_EQ(shapes.at("y").dtype, DType::FLOAT);
  EXPECT_FALSE(test::check_onnx_file(path("new.onnx")));  // onnx 1.12 knows neither IR 10 nor opset 21
}

TEST_F(ModelIo, SerializeAddsNameOnlyOutputsAndKeepsWeights) {
  const Model model = Model::load(test::early_extra_output(dir_));
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(model.serialize({"h1", "t", "r1"})));
  ASSERT_EQ(m.graph().output_size(), 4);  // y, r1 (already an output), h1, t
  EXPECT_EQ(m.graph().output(2).name(), "h1");
  EXPECT_FALSE(m.graph().output(2).has_type());
  EXPECT_EQ(m.graph().output(3).name(), "t");
  const onnx::ModelProto source = read_proto(model.graph().path);
  ASSERT_EQ(m.graph().initializer_size(), source.graph().initializer_size());
  EXPECT_EQ(m.graph().initializer(2).raw_data(), source.graph().initializer(2).raw_data());
  EXPECT_EQ(m.graph().node_size(), source.graph().node_size());
  EXPECT_EQ(m.opset_import_size(), source.opset_import_size());

  onnx::ModelProto plain;
  ASSERT_TRUE(plain.ParseFromString(model.serialize()));
  EXPECT_EQ(plain.graph().output_size(), 2);
}

TEST_F(ModelIo, SerializeKeepsExternalDataLocations) {
  const Model model = Model::load(test::external_data(dir_));
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(model.serialize({"r"})));
  for (const auto& t : m.graph().initializer()) {
    EXPECT_EQ(t.data_location(), onnx::TensorProto::EXTERNAL);
    EXPECT_EQ(external_entries(t)["location"], "external_data.onnx.data");
  }
}

// A ConstantOfShape node in `m` whose output is `name`, or nullptr.
const onnx::NodeProto* zeros_maker(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& n : m.graph().node())
    if (n.op_type() == "ConstantOfShape" && n.output(0) == name) return &n;
  return nullptr;
}

TEST_F(ModelIo, SerializeWithZerosMakesTheStoredWeightsAtRunTimeFirst) {
  ModelBuilder b(17, 3);  // IR 3: the weights are listed as graph inputs too
  b.input("x", DType::FLOAT, {"batch", 256});
  b.input("big", DType::FLOAT, {256, 256});
  b.input("small", DType::FLOAT, {256});
  b.initializer(test::random_tensor("big", {256, 256}, 7));  // 256 KiB: stored on disk
  b.initializer(test::random_tensor("small", {256}, 8));     // 1 KiB: in memory, stays
  b.node("MatMul", {"x", "big"}, {"h"});
  b.node("Add", {"h", "small"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 256});
  const Model model = Model::load(b.save(path("big.onnx")));

  const std::string bytes = model.serialize({"h"}, Model::Weights::ZEROS);
  EXPECT_LT(bytes.size(), 4096u) << "the 256 KiB weight is not in the bytes";
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  ASSERT_EQ(m.graph().input_size(), 2) << "x, and small still listed";
  EXPECT_EQ(m.graph().input(0).name(), "x");
  EXPECT_EQ(m.graph().input(1).name(), "small");
  ASSERT_EQ(m.graph().node_size(), 3);
  const onnx::NodeProto* maker = zeros_maker(m, "big");
  ASSERT_NE(maker, nullptr);
  EXPECT_EQ(maker, &m.graph().node(0)) << "makers come before every original node";
  ASSERT_EQ(maker->attribute_size(), 1);
  EXPECT_EQ(maker->attribute(0).t().data_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(maker->attribute(0).t().raw_data(), std::string(4, '\0'));
  std::map<std::string, const onnx::TensorProto*> initializers;
  for (const auto& t : m.graph().initializer()) initializers[t.name()] = &t;
  ASSERT_EQ(initializers.size(), 2u);
  ASSERT_TRUE(initializers.count("small"));
  const onnx::TensorProto* shape = initializers.at(maker->input(0));
  EXPECT_EQ(shape->data_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(std::vector<int64_t>(shape->int64_data().begin(), shape->int64_data().end()),
            (std::vector<int64_t>{256, 256}));
}

TEST_F(ModelIo, SerializeWithZerosReplacesExternalWeightsAndKeepsWhatTheOpCannotMake) {
  ModelBuilder b(8);  // ConstantOfShape needs opset 9: nothing is replaced
  b.input("x", DType::FLOAT, {"batch", 256});
  b.initializer(test::random_tensor("w", {256, 256}, 3));
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 256});
  onnx::ModelProto old_opset;
  ASSERT_TRUE(
      old_opset.ParseFromString(Model::load(b.save(path("opset8.onnx"), true)).serialize({}, Model::Weights::ZEROS)));
  EXPECT_EQ(old_opset.graph().initializer_size(), 1);
  EXPECT_EQ(zeros_maker(old_opset, "w"), nullptr);

  // External weights are replaced as well, as long as they are large.
  ModelBuilder e;
  e.input("x", DType::FLOAT, {"batch", 256});
  e.initializer(test::random_tensor("w", {256, 256}, 3));
  e.initializer(test::int64_tensor("axes", {1}, {0}));
  e.node("MatMul", {"x", "w"}, {"h"});
  e.node("ReduceSum", {"h", "axes"}, {"y"});
  e.output("y", DType::FLOAT, {1, 256});
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(Model::load(e.save(path("external.onnx"), true)).serialize({}, Model::Weights::ZEROS)));
  EXPECT_NE(zeros_maker(m, "w"), nullptr);
  EXPECT_EQ(zeros_maker(m, "axes"), nullptr);
  for (const auto& t : m.graph().initializer())
    EXPECT_EQ(t.data_location() == onnx::TensorProto::EXTERNAL, t.name() == "axes") << t.name();
}

TEST_F(ModelIo, CheckFileRejectsABrokenModel) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {2});
  b.node("Add", {"x", "missing"}, {"y"});
  b.output("y", DType::FLOAT, {2});
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { test::check_onnx_file(b.save(path("bad.onnx"))); }, &message),
            ErrorCode::INVALID_MODEL);
  EXPECT_NE(message.find("bad.onnx"), std::string::npos);
}

TEST(ReadTensorPb, ReadsACorpusInput) {
  const std::string file = "/usr/share/libonnx-testdata/data/node/test_abs/test_data_set_0/input_0.pb";
  if (!fs::exists(file)) GTEST_SKIP() << "libonnx-testdata not installed: " << file;
  const Tensor t = read_tensor_pb(file);
  EXPECT_EQ(t.dtype, DType::FLOAT);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(t.data.size(), 3u * 4 * 5 * 4);
  onnx::TensorProto proto;
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(proto.ParseFromIstream(&in));
  EXPECT_EQ(std::string(t.data.begin(), t.data.end()), proto.raw_data());
}

class ReadTensorPbFile : public ModelIo {
 protected:
  Tensor roundtrip(const onnx::TensorProto& proto) {
    std::ofstream out(path("t.pb"), std::ios::binary | std::ios::trunc);
    proto.SerializeToOstream(&out);
    out.close();
    return read_tensor_pb(path("t.pb"));
  }
};

TEST_F(ReadTensorPbFile, ConvertsTypedFieldsToRawBytes) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::INT8);
  p.add_dims(3);
  for (const int v : {-1, 2, -128}) p.add_int32_data(v);
  Tensor t = roundtrip(p);
  ASSERT_EQ(t.data.size(), 3u);
  EXPECT_EQ(t.as<int8_t>()[0], -1);
  EXPECT_EQ(t.as<int8_t>()[2], -128);

  p.Clear();
  p.set_data_type(onnx::TensorProto::FLOAT16);
  p.add_dims(2);
  p.add_int32_data(0x3c00);  // 1.0
  p.add_int32_data(0xc000);  // -2.0
  t = roundtrip(p);
  ASSERT_EQ(t.data.size(), 4u);
  EXPECT_EQ(t.as<uint16_t>()[0], 0x3c00);
  EXPECT_EQ(t.as<uint16_t>()[1], 0xc000);

  p.Clear();
  p.set_data_type(onnx::TensorProto::INT64);
  p.add_dims(1);
  p.add_dims(2);
  p.add_int64_data(-5);
  p.add_int64_data(1LL << 40);
  t = roundtrip(p);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.as<int64_t>()[1], 1LL << 40);

  p.Clear();
  p.set_data_type(onnx::TensorProto::UINT32);
  p.add_dims(1);
  p.add_uint64_data(4000000000u);
  t = roundtrip(p);
  EXPECT_EQ(t.as<uint32_t>()[0], 4000000000u);

  p.Clear();
  p.set_data_type(onnx::TensorProto::DOUBLE);
  p.add_double_data(2.5);  // a scalar
  t = roundtrip(p);
  EXPECT_TRUE(t.shape.empty());
  EXPECT_EQ(t.as<double>()[0], 2.5);

  p.Clear();
  p.set_data_type(onnx::TensorProto::STRING);
  p.add_dims(2);
  p.add_string_data("a");
  p.add_string_data("bc");
  t = roundtrip(p);
  EXPECT_EQ(t.strings, (std::vector<std::string>{"a", "bc"}));
}

TEST_F(ReadTensorPbFile, ErrorsNameTheFile) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(4);
  p.set_raw_data(std::string(12, '\0'));  // 3 floats for a shape of 4
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { roundtrip(p); }, &message), ErrorCode::INVALID_DATA);
  EXPECT_NE(message.find("t.pb"), std::string::npos) << message;
  EXPECT_EQ(test::error_code_of([&] { read_tensor_pb(path("none.pb")); }, &message), ErrorCode::IO);
  EXPECT_NE(message.find("none.pb"), std::string::npos) << message;
  write_bytes(path("junk.pb"), "\xff\xff\xff\xff");
  EXPECT_EQ(test::error_code_of([&] { read_tensor_pb(path("junk.pb")); }, &message), ErrorCode::INVALID_DATA);
}

TEST_F(ModelIo, Sha256MatchesKnownDigests) {
  write_bytes(path("abc"), "abc");
  EXPECT_EQ(sha256_file(path("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  write_bytes(path("empty"), "");
  EXPECT_EQ(sha256_file(path("empty")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Spans several 1 MiB chunks (digest from Python's hashlib).
  write_bytes(path("big"), std::string(3 * (1 << 20) + 17, 'x'));
  EXPECT_EQ(sha256_file(path("big")), "6f82050b9ee115847382cbdec71f9269e2f842af979d1af5de548c572436c5de");
  std::string message;
  EXPECT_EQ(test::error_code_of([&] { sha256_file(path("nothing")); }, &message), ErrorCode::IO);
}

}  // namespace
}  // namespace onnxpipe::detail
