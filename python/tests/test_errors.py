"""Errors: one class per code, the C++ message, the stage and argument contexts as attributes."""
import numpy as np
import pytest

import onnxpipe
from conftest import save


def test_bad_input_dtype_is_a_usage_error_with_the_cpp_message(identity_models):
    with onnxpipe.Pipeline(identity_models["float32"], devices=["cpu:1"], mode="sequence") as pipe:
        with pytest.raises(onnxpipe.UsageError) as caught:
            pipe.submit({"x": np.zeros((2, 3), np.int64)})
    assert caught.value.code == "usage" and "input 'x'" in str(caught.value)
    assert isinstance(caught.value, onnxpipe.Error) and isinstance(caught.value, ValueError)


def test_codes_map_to_classes(tmp_path, small_chain):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(onnxpipe.InvalidModelError) as caught:
        onnxpipe.split(tmp_path / "bad.onnx", 2, out_dir=tmp_path / "out")
    assert caught.value.code == "invalid_model"
    with pytest.raises(onnxpipe.UsageError):
        onnxpipe.Pipeline(small_chain, devices=["gpu:0"])
    with pytest.raises(onnxpipe.IoError) as caught:
        onnxpipe.Plan.load(tmp_path)  # no plan.json
    assert caught.value.code == "io" and isinstance(caught.value, OSError)
    (tmp_path / "plan.json").write_text('{"format_version": 1, "pieces": "none"}')
    with pytest.raises(onnxpipe.InvalidModelError):
        onnxpipe.Plan.load(tmp_path)
    with pytest.raises(onnxpipe.UsageError):
        onnxpipe.Pipeline(small_chain, mode="sideways")


def test_argument_context_is_an_attribute(small_chain, tmp_path):
    with pytest.raises(onnxpipe.UsageError) as caught:
        onnxpipe.split(small_chain, 2, dims={"nosuchdim": 3}, out_dir=tmp_path / "out")
    assert caught.value.argument is not None and caught.value.argument["field"] == "dims"
    assert caught.value.argument["entry"] == "nosuchdim"


def reshape_model(path):
    """x [batch, 4] -> Relu -> r -> Reshape to [-1, 3] -> y: stage 1 fails unless 4 * batch divides by 3."""
    from onnx import TensorProto, helper
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["y"])],
                              "reshape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 3])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save(model, path)


def test_stage_context_is_an_attribute(tmp_path):
    plan = onnxpipe.split(reshape_model(tmp_path / "reshape.onnx"), 2, cuts=["r"], out_dir=tmp_path / "plan")
    with onnxpipe.Pipeline(plan, devices=["cpu:1", "cpu:1"]) as pipe:
        assert pipe.submit({"x": np.ones((3, 4), np.float32)}).result(timeout=30)["y"].shape == (4, 3)
        future = pipe.submit({"x": np.ones((1, 4), np.float32)})
        with pytest.raises(onnxpipe.OrtError) as caught:
            future.result(timeout=30)
    assert caught.value.code == "runtime" and str(caught.value).startswith("stage 1 (piece_1.onnx, cpu:1)")
    assert caught.value.stage == {"kind": "stage", "index": 1, "piece": "piece_1.onnx", "device": "cpu:1"}


def test_closed_pipeline_is_a_usage_error(small_chain):
    pipe = onnxpipe.Pipeline(small_chain, devices=["cpu:1"], mode="sequence")
    pipe.close()
    with pytest.raises(onnxpipe.UsageError, match="closed"):
        pipe.run([{"x": np.ones((1, 16), np.float32)}])
