#!/usr/bin/python3
"""The seed's experiment with onnxpipe: split a model in two, check that the pieces reproduce it, run N images in
sequence (the whole model, one core) and as a pipeline (one piece per core), compare, tabulate and plot the times.

usage: PYTHONPATH=build/python /usr/bin/python3 examples/seed_pipeline.py [MODEL] [OUT_DIR]
"""
import sys
import time

import numpy as np
import pandas

import onnxpipe

model = sys.argv[1] if len(sys.argv) > 1 else "models/mobilenet_v2.onnx"
out = sys.argv[2] if len(sys.argv) > 2 else "out/seed_pipeline"
plan = onnxpipe.split(model, 2, balance="time", out_dir=f"{out}/plan", force=True)
print(onnxpipe.verify(model, plan).to_pandas())  # discrepancies, output by output
[x] = onnxpipe.inspect(model)["inputs"]
shape = [d if isinstance(d, int) else 1 for d in x["shape"]]
rows = []
with onnxpipe.Pipeline(model, devices=["cpu:1@0"], mode="sequence") as sequence, \
        onnxpipe.Pipeline(plan, devices=["cpu:1@0", "cpu:1@1"]) as pipeline:
    for n in range(1, 41, 4):
        images = [{x["name"]: np.random.rand(*shape).astype(np.float32)} for _ in range(n)]
        results = {}
        for name, runner in (("sequence", sequence), ("pipeline", pipeline)):
            begin = time.perf_counter()
            results[name] = runner.run(images)
            rows.append(dict(name=name, batch_size=n, time=time.perf_counter() - begin))
        for a, b in zip(results["sequence"], results["pipeline"]):
            for key in a:
                np.testing.assert_allclose(a[key], b[key], atol=1e-3)
    print(pipeline.summary())  # per stage: wait, copy1, run, copy2, ttime (us)
frame = pandas.DataFrame(rows)
print(frame.pivot(index="batch_size", columns="name", values="time"))
print("plot:", onnxpipe.plot(frame, f"{out}/seed_pipeline.png"))
