#!/usr/bin/python3
"""Python path vs C++ path (the onnxpipe CLI): per-request overhead on an Identity model (sequence on cpu:1), and
resnet18 throughput split in 2 on cpu:1@0 + cpu:1@1. Prints a table (CSV) and draws a bar chart.

usage: PYTHONPATH=build/python /usr/bin/python3 python/bench/overhead.py [--cli build/onnxpipe] [--models models]
       [-o overhead.png] [--requests 20000] [--rounds 5] [--no-resnet]
Every path is measured once per round, the paths interleaved within a round, so that load from other processes hits
them alike; the table has each path's median over the rounds, and the load average before and after. Figures only,
nothing asserted.
"""
import argparse
import csv
import io
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
from onnx import TensorProto, helper, save

import onnxpipe


def cli_throughput(cli, source, devices, mode, count, x_file=None, name=None):
    command = [cli, "run", source, "--devices", devices, "--mode", mode, "--count", str(count), "--warmup", "50",
               "--format", "csv"]
    if x_file:
        command += ["--input", f"{name}={x_file}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(next(csv.DictReader(io.StringIO(out.split("\n\n")[0])))["throughput_rps"])


def python_throughput(source, devices, mode, feeds, count, path):
    with onnxpipe.Pipeline(source, devices=devices, mode=mode) as pipe:
        pipe.run([feeds] * 50)
        begin = time.perf_counter()
        if path == "run":
            pipe.run([feeds] * count)
        else:  # a Future per request, answers waited in order
            for future in [pipe.submit(feeds) for _ in range(count)]:
                future.result()
        return count / (time.perf_counter() - begin)


def measure(name, paths, rounds):
    """paths: [(path name, () -> requests / s)]; returns rows (model, path, median rps, us per request, added us)."""
    samples = {path: [] for path, _ in paths}
    for _ in range(rounds):
        for path, measure_once in paths:
            samples[path].append(measure_once())
    cli_us = 1e6 / statistics.median(samples["cli"])
    rows = []
    for path, _ in paths:
        rps = statistics.median(samples[path])
        rows.append((name, path, rps, 1e6 / rps, 1e6 / rps - cli_us))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", default="build/onnxpipe")
    parser.add_argument("--models", default=os.environ.get("ONNXPIPE_MODELS", "models"))
    parser.add_argument("-o", "--output", default="overhead.png")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-resnet", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        identity = os.path.join(tmp, "identity.onnx")
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        save(model, identity)
        feeds = {"x": np.ones((1, 16), np.float32)}
        n = args.requests
        rows += measure("identity", [
            ("cli", lambda: cli_throughput(args.cli, identity, "cpu:1", "sequence", n)),
            ("python run", lambda: python_throughput(identity, ["cpu:1"], "sequence", feeds, n, "run")),
            ("python submit", lambda: python_throughput(identity, ["cpu:1"], "sequence", feeds, n, "submit")),
        ], args.rounds)
        resnet = os.path.join(args.models, "resnet18.onnx")
        if os.path.exists(resnet) and not args.no_resnet:
            plan = onnxpipe.split(resnet, 2, balance="time", out_dir=os.path.join(tmp, "resnet18_2"))
            x_file = resnet.replace(".onnx", ".input.npy")
            feeds = {"input": np.load(x_file)}
            devices = ["cpu:1@0", "cpu:1@1"]
            rows += measure("resnet18", [
                ("cli", lambda: cli_throughput(args.cli, plan.dir, ",".join(devices), "pipeline", 200, x_file, "input")),
                ("python run", lambda: python_throughput(plan, devices, "pipeline", feeds, 200, "run")),
                ("python submit", lambda: python_throughput(plan, devices, "pipeline", feeds, 200, "submit")),
            ], args.rounds)
    print(f"# medians of {args.rounds} interleaved rounds; load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print("model,path,throughput_rps,us_per_request,added_us")
    for row in rows:
        print(",".join(str(round(v, 2)) if isinstance(v, float) else v for v in row))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = sorted({r[0] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4))
    for ax, name in zip(np.atleast_1d(axes), models):
        mine = [r for r in rows if r[0] == name]
        ax.bar([r[1] for r in mine], [r[2] for r in mine], color=["gray", "tab:blue", "tab:orange"][:len(mine)])
        ax.set_title(f"{name}: requests / s")
        for i, r in enumerate(mine):
            ax.annotate(f"{r[3]:.1f} us", (i, r[2]), ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(args.output)
    print("figure:", args.output)


if __name__ == "__main__":
    main()
