#!/usr/bin/python3
"""Python path vs C++ path: per-request overhead on an Identity model (sequence on cpu:1), and resnet18 throughput
split in 2 on cpu:1@0 + cpu:1@1. Prints a table (CSV) and draws a bar chart.

usage: PYTHONPATH=build/python /usr/bin/python3 python/bench/overhead.py [--cli build/onnxpipe] [--models models]
       [-o overhead.png] [--requests 20000] [--resnet-requests 200] [--rounds 5] [--no-resnet]

Paths, on the same plan and devices:
  cli            `onnxpipe run` in a subprocess (its own throughput figure: load and warm-up excluded);
  c++            the loop of `onnxpipe run` (submit all, then wait for each) on the pipeline the Python paths use;
  python run     Pipeline.run(feeds_list);
  python submit  a Request future per request, then each result() in order.
Every path runs once per round, the paths interleaved (their order rotating) so that load from other processes hits
them alike; the table has each path's median, least and greatest throughput over the rounds, the microseconds per
request and added over the cli's and the c++ path's medians, the throughput ratios, and the load average before and
after. Figures only, nothing asserted.
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
    command = [cli, "run", source, "--devices", ",".join(devices), "--mode", mode, "--count", str(count),
               "--warmup", "50", "--format", "csv"]
    if x_file:
        command += ["--input", f"{name}={x_file}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(next(csv.DictReader(io.StringIO(out.split("\n\n")[0])))["throughput_rps"])


def in_process_paths(pipe, feeds, count):
    """The c++ and Python paths on one pipeline: [(path name, () -> requests / s)]."""
    def python_run():
        begin = time.perf_counter()
        pipe.run([feeds] * count)
        return count / (time.perf_counter() - begin)

    def python_submit():
        begin = time.perf_counter()
        for future in [pipe.submit(feeds) for _ in range(count)]:
            future.result()
        return count / (time.perf_counter() - begin)

    return [("c++", lambda: count / pipe._native.run_native(feeds, count)), ("python run", python_run),
            ("python submit", python_submit)]


def measure(name, paths, rounds):
    """paths: [(path name, () -> requests / s)], measured once a round in rotating order; returns rows."""
    samples = {path: [] for path, _ in paths}
    for r in range(rounds):
        for path, measure_once in paths[r % len(paths):] + paths[:r % len(paths)]:
            samples[path].append(measure_once())
    medians = {path: statistics.median(values) for path, values in samples.items()}
    rows = []
    for path, _ in paths:
        rps = medians[path]
        rows.append(dict(model=name, path=path, throughput_rps=rps, rps_min=min(samples[path]),
                         rps_max=max(samples[path]), us_per_request=1e6 / rps,
                         added_us_vs_cli=1e6 / rps - 1e6 / medians["cli"],
                         added_us_vs_cpp=1e6 / rps - 1e6 / medians["c++"],
                         ratio_vs_cli=rps / medians["cli"], ratio_vs_cpp=rps / medians["c++"]))
    return rows


def run_model(name, cli, source, devices, mode, feeds, count, rounds, x_file=None):
    with onnxpipe.Pipeline(source, devices=devices, mode=mode) as pipe:
        pipe.run([feeds] * 50)  # warm, as the CLI's --warmup 50
        paths = [("cli", lambda: cli_throughput(cli, os.fspath(source), devices, mode, count, x_file,
                                                next(iter(feeds))))]
        return measure(name, paths + in_process_paths(pipe, feeds, count), rounds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", default="build/onnxpipe")
    parser.add_argument("--models", default=os.environ.get("ONNXPIPE_MODELS", "models"))
    parser.add_argument("-o", "--output", default="overhead.png")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--resnet-requests", type=int, default=200)
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
        rows += run_model("identity", args.cli, identity, ["cpu:1"], "sequence", {"x": np.ones((1, 16), np.float32)},
                          args.requests, args.rounds)
        resnet = os.path.join(args.models, "resnet18.onnx")
        if os.path.exists(resnet) and not args.no_resnet:
            plan = onnxpipe.split(resnet, 2, balance="time", out_dir=os.path.join(tmp, "resnet18_2"))
            x_file = resnet.replace(".onnx", ".input.npy")
            rows += run_model("resnet18", args.cli, plan, ["cpu:1@0", "cpu:1@1"], "pipeline",
                              {"input": np.load(x_file)}, args.resnet_requests, args.rounds, x_file)
    print(f"# {args.rounds} interleaved rounds; load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print(",".join(rows[0]))
    for row in rows:
        print(",".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4))
    for ax, name in zip(np.atleast_1d(axes), models):
        mine = [r for r in rows if r["model"] == name]
        ax.bar([r["path"] for r in mine], [r["throughput_rps"] for r in mine],
               yerr=[[r["throughput_rps"] - r["rps_min"] for r in mine], [r["rps_max"] - r["throughput_rps"]
                                                                          for r in mine]],
               color=["gray", "black", "tab:blue", "tab:orange"][:len(mine)])
        ax.set_title(f"{name}: requests / s")
        for i, r in enumerate(mine):
            ax.annotate(f"{r['us_per_request']:.1f} us", (i, r["throughput_rps"]), ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(args.output)
    print("figure:", args.output)


if __name__ == "__main__":
    main()
