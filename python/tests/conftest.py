"""Shared fixtures: tiny models built with onnx.helper (Debian's python3-onnx), the exported models when present."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SOURCE_DIR = os.environ.get("ONNXPIPE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.environ.get("ONNXPIPE_MODELS", os.path.join(SOURCE_DIR, "models"))

# numpy dtype -> ONNX element type, for every dtype the library converts (bfloat16 travels as uint16 bits).
DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16,
          "int8": TensorProto.INT8, "int16": TensorProto.INT16, "int32": TensorProto.INT32,
          "int64": TensorProto.INT64, "uint8": TensorProto.UINT8, "uint16": TensorProto.UINT16,
          "uint32": TensorProto.UINT32, "uint64": TensorProto.UINT64, "bool": TensorProto.BOOL,
          "str": TensorProto.STRING}


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="session")
def identity_models(tmp_path_factory):
    """{dtype name: path} of one Identity model per dtype, input x [2, 3] -> output y."""
    root = tmp_path_factory.mktemp("identity")
    paths = {}
    for name, elem in DTYPES.items():
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                                  [helper.make_tensor_value_info("x", elem, [2, 3])],
                                  [helper.make_tensor_value_info("y", elem, [2, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths[name] = save(model, root / f"identity_{name}.onnx")
    return paths


def chain_model(path, nodes, size):
    """x [batch, size] -> nodes MatMuls with one [size, size] weight (each followed by Relu) -> y: slow enough to be
    caught in flight, and splittable."""
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [size, size],
                                (rng.random((size, size), dtype=np.float32) / size).ravel().tolist())
    graph_nodes, last = [], "x"
    for i in range(nodes):
        graph_nodes.append(helper.make_node("MatMul", [last, "w"], [f"m{i}"]))
        graph_nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"] if i < nodes - 1 else ["y"]))
        last = f"r{i}"
    graph = helper.make_graph(graph_nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   ["batch", size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", size])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save(model, path)


@pytest.fixture(scope="session")
def small_chain(tmp_path_factory):
    return chain_model(tmp_path_factory.mktemp("chain") / "small.onnx", 4, 16)


@pytest.fixture(scope="session")
def slow_chain(tmp_path_factory):
    """About tens of milliseconds per request on one thread."""
    return chain_model(tmp_path_factory.mktemp("chain") / "slow.onnx", 8, 384)


@pytest.fixture(scope="session")
def resnet18():
    path = os.path.join(MODELS, "resnet18.onnx")
    if not os.path.exists(path):
        pytest.skip(f"no exported models in {MODELS} (scripts/export_models.py, or set ONNXPIPE_MODELS)")
    return path
