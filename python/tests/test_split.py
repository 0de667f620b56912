"""split / inspect / verify / Plan, outputs equal to the CLI's, bench columns equal to the CLI's CSV."""
import csv
import io
import logging
import os
import subprocess

import numpy as np
import pytest

import onnxpipe

CLI = os.environ.get("ONNXPIPE_CLI")


def test_split_verify_inspect_and_plan(small_chain, tmp_path):
    summary = onnxpipe.inspect(small_chain)
    assert summary["op_counts"] == {"MatMul": 4, "Relu": 4} and summary["inputs"][0]["shape"] == ["batch", 16]
    plan = onnxpipe.split(small_chain, 2, balance="flops", out_dir=tmp_path / "plan")
    assert plan.parts == 2 and [p["file"] for p in plan.pieces] == ["piece_0.onnx", "piece_1.onnx"]
    assert onnxpipe.Plan.load(plan.dir).to_dict() == plan.to_dict()
    assert any(v["name"] == "y" and v["graph_output"] for v in plan.values)
    report = onnxpipe.verify(small_chain, plan, inputs={"x": np.ones((1, 16), np.float32)})
    assert report.ok and list(report.to_pandas()["output"]) == ["y"]
    with pytest.raises(onnxpipe.UsageError):
        onnxpipe.split(small_chain, 2, out_dir=plan.dir)  # exists, no force
    assert onnxpipe.split(small_chain, 3, out_dir=plan.dir, force=True).parts == 3


def cli_outputs(source, x_path, out_dir, devices):
    subprocess.run([CLI, "run", source, "--devices", devices, "--input", f"{x_path[0]}={x_path[1]}", "--count", "1",
                    "-o", str(out_dir)], check=True, capture_output=True)
    return {f[:-4]: np.load(out_dir / f) for f in os.listdir(out_dir)}


@pytest.mark.skipif(not CLI, reason="ONNXPIPE_CLI (the built onnxpipe) not set")
@pytest.mark.parametrize("which", ["small", "resnet18"])
def test_outputs_equal_the_clis(which, small_chain, tmp_path, request):
    model = small_chain if which == "small" else request.getfixturevalue("resnet18")
    plan = onnxpipe.split(model, 2, balance="flops", out_dir=tmp_path / "plan")
    [name] = [v["name"] for v in onnxpipe.inspect(model)["inputs"]]
    if which == "small":
        x = np.random.default_rng(2).random((3, 16), dtype=np.float32)
        np.save(tmp_path / "x.npy", x)
        x_file = tmp_path / "x.npy"
    else:
        x_file = model.replace(".onnx", ".input.npy")
        x = np.load(x_file)
    expected = cli_outputs(plan.dir, (name, x_file), tmp_path / "cli", "cpu:1,cpu:1")
    with onnxpipe.Pipeline(plan, devices=["cpu:1", "cpu:1"]) as pipe:
        [got] = pipe.run([{name: x}])
    assert got.keys() == expected.keys()
    for key in got:
        np.testing.assert_array_equal(got[key], expected[key])


@pytest.mark.skipif(not CLI, reason="ONNXPIPE_CLI (the built onnxpipe) not set")
def test_bench_frame_has_the_cli_csv_columns_and_plots(small_chain, tmp_path):
    args = dict(devices=["cpu:1", "cpu:1"], images=[1, 3], repeat=1, warmup=0, alone_runs=2, balance="flops")
    frame = onnxpipe.bench(small_chain, **args)
    done = subprocess.run([CLI, "bench", small_chain, "--devices", "cpu:1,cpu:1", "--images", "1,3", "--repeat", "1",
                           "--warmup", "0", "--alone-runs", "2", "--balance", "flops", "--format", "csv"],
                          check=True, capture_output=True, text=True)
    header = next(csv.reader(io.StringIO(done.stdout)))
    assert list(frame.columns) == header
    assert list(frame["name"]) == ["sequence", "sequence", "pipeline", "pipeline", "replicas", "replicas"]
    pytest.importorskip("matplotlib")
    assert os.path.getsize(onnxpipe.plot(frame, tmp_path / "bench.png")) > 0


def test_library_log_lines_reach_python_logging(small_chain, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="onnxpipe"):
        onnxpipe.split(small_chain, 2, balance="time", device="cuda:0", out_dir=tmp_path / "plan")
    [record] = [r for r in caplog.records if r.name == "onnxpipe"]
    assert record.levelno == logging.WARNING and "balancing by flops" in record.getMessage()
