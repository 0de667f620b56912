"""onnxpipe: split an ONNX model into balanced pieces, verify them, run them as a pipeline, benchmark.

A Python front end to the C++ library (the same code the `onnxpipe` CLI runs)::

    import onnxpipe
    plan = onnxpipe.split("models/resnet18.onnx", 2, out_dir="out/resnet18_2")
    assert onnxpipe.verify("models/resnet18.onnx", plan).ok
    with onnxpipe.Pipeline(plan, devices=["cpu:1@0", "cpu:1@1"]) as pipe:
        outputs = pipe.run([{"input": image} for image in images])   # list of {name: numpy array}
        future = pipe.submit({"input": image})                       # concurrent.futures.Future
        frame = pipe.timings()                                       # the seed's columns, one row per stage

C-contiguous arrays go in without a copy (the library reads their buffer, and keeps the array alive, while the request
is in flight: do not write to it until then); other layouts are copied once. Results come out without a copy (the
array owns the result's buffer). The GIL is released while the library works; Ctrl-C interrupts every blocking call. Failures raise onnxpipe.Error subclasses carrying the C++
error's code, stage and argument. The library's log lines go to logging.getLogger("onnxpipe").
"""
import atexit
import concurrent.futures
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import weakref

from . import _onnxpipe
from ._errors import (CancelledError, DoesNotFitError, Error, InternalError, InvalidDataError, InvalidModelError,
                      IoError, OrtError, UsageError, VerifyMismatch)

__all__ = ["split", "inspect", "verify", "run_pieces", "Plan", "Report", "Pipeline", "Request", "bench", "plot",
           "set_log_level", "Error", "UsageError", "InvalidModelError", "InvalidDataError", "IoError", "OrtError",
           "VerifyMismatch", "CancelledError", "DoesNotFitError", "InternalError"]

# ---------------------------------------------------------------------------------------------------------------------
# Logging: the library's log channel, into logging.getLogger("onnxpipe").

logger = logging.getLogger("onnxpipe")
_NATIVE_LEVELS = _onnxpipe.LOG_LEVELS  # DEBUG, INFO, WARN, ERROR -> the library's values
_PYTHON_LEVELS = {_NATIVE_LEVELS["DEBUG"]: logging.DEBUG, _NATIVE_LEVELS["INFO"]: logging.INFO,
                  _NATIVE_LEVELS["WARN"]: logging.WARNING, _NATIVE_LEVELS["ERROR"]: logging.ERROR}


def _log(level, text):
    logger.log(_PYTHON_LEVELS[level], text)


def set_log_level(level=None):
    """Sets the "onnxpipe" logger's level (a logging level; None keeps it) and asks the library for messages from
    that level up (the library skips formatting the others). Called at import with the logger's effective level."""
    if level is not None:
        logger.setLevel(level)
    effective = logger.getEffectiveLevel()
    native = max((n for n, p in _PYTHON_LEVELS.items() if p <= effective), default=_NATIVE_LEVELS["DEBUG"])
    _onnxpipe.set_log_callback(native, _log)


set_log_level()

# ---------------------------------------------------------------------------------------------------------------------
# Plans, splitting, inspecting, verifying


class Plan:
    """A split: the plan directory and its plan.json (validated against the pieces on disk when loaded).

    Attributes:
        dir: the plan directory.
        pieces: one dict per piece (index, file, nodes, weight_bytes, cost, inputs, outputs, ...), as plan.json.
        values: the values crossing between pieces (name, producer, consumers, graph_output).
    """

    def __init__(self, dir, data):
        self.dir = os.fspath(dir)
        self._data = data

    @classmethod
    def load(cls, dir):
        """Reads and validates DIR/plan.json. Raises InvalidModelError naming what is wrong."""
        return cls(dir, json.loads(_onnxpipe.load_plan(os.fspath(dir))))

    @property
    def pieces(self):
        return self._data["pieces"]

    @property
    def values(self):
        return self._data["values"]

    @property
    def parts(self):
        return len(self.pieces)

    def to_dict(self):
        """plan.json as a dict (a copy)."""
        return json.loads(json.dumps(self._data))

    def __fspath__(self):
        return self.dir

    def __repr__(self):
        return f"Plan({self.dir!r}, {self.parts} pieces)"


def split(model, n, balance="auto", cuts=None, dims=None, device=None, out_dir=None, force=False, profile_runs=None,
          costs_file=None):
    """Splits MODEL into N consecutive pieces written to OUT_DIR (piece_K.onnx and plan.json) and returns the Plan.

    balance: "auto" (time on CPU when the model runs there, else flops), "bytes", "flops" or "time" (measured on
    `device`, default "cpu"). cuts: tensor names to cut right after, in order. dims: symbolic dimension values
    ({"batch": 8}; unset ones are 1). out_dir None: a new temporary directory (left for the caller). force: replace an
    existing out_dir. Nothing is left behind on failure. Ctrl-C stops the split at its next step (a timing round, a
    piece written) and raises KeyboardInterrupt once it has stopped: nothing written, an existing out_dir as it was.
    """
    if out_dir is None:
        out_dir = os.path.join(tempfile.mkdtemp(prefix="onnxpipe_"), "plan")
    out_dir = os.fspath(out_dir)
    options = dict(parts=n, balance=balance, cuts=cuts, dims=dims, out_dir=out_dir, force=force, device=device,
                   profile_runs=profile_runs, costs_file=costs_file)
    return Plan(out_dir, json.loads(_onnxpipe.split(os.fspath(model), options)))


def inspect(model, dims=None, balance="flops", candidates=8):
    """What `onnxpipe inspect` shows, as a dict: opsets, op counts, weights, inputs and outputs (dicts with name,
    dtype, shape, bytes), the number of legal cuts and the best cut candidates."""
    return _onnxpipe.inspect(os.fspath(model), dict(dims=dims, balance=balance, candidates=candidates))


class Report:
    """What verify found: one row per model output (output, max_abs, max_rel, mismatches, bitwise_equal,
    shape_mismatch, ok, dtype, shape); ok when every row is."""

    def __init__(self, rows):
        self.rows = rows

    @property
    def ok(self):
        return all(row["ok"] for row in self.rows)

    def __bool__(self):
        return self.ok

    def to_pandas(self):
        import pandas
        return pandas.DataFrame(self.rows)

    def __repr__(self):
        return f"Report(ok={self.ok}, {len(self.rows)} outputs)"


def verify(model, plan_dir, inputs=None, rtol=None, atol=None, dims=None, seed=None):
    """Runs MODEL and the chained pieces of PLAN_DIR (a path or a Plan) with ONNX Runtime on CPU on the same inputs
    (`inputs`: {name: array}; the others random) and compares every output within atol + rtol * |expected|
    (defaults 1e-6, 1e-5). Returns a Report; mismatches are rows with ok False, not exceptions. Ctrl-C stops it at
    its next step (a run of the model or of a piece, an output compared) and then raises KeyboardInterrupt."""
    options = dict(inputs=inputs, rtol=rtol, atol=atol, dims=dims, seed=seed)
    return Report(_onnxpipe.verify(os.fspath(model), os.fspath(plan_dir), options))


def run_pieces(plan_dir, feeds):
    """Runs the pieces of PLAN_DIR one after the other on CPU; returns the model's outputs {name: array}."""
    return _onnxpipe.run_pieces(os.fspath(plan_dir), feeds)

# ---------------------------------------------------------------------------------------------------------------------
# Pipelines


class Request(concurrent.futures.Future):
    """The future of one submitted request; `request_id` is its id in the pipeline's records (0, 1, 2 ...).
    Already running when returned: cancel() returns False (closing the pipeline cancels what is queued)."""

    request_id = -1
    # A Future's state, until the request is answered.
    _state = "RUNNING"
    _result = None
    _exception = None

    # Making a Future's Condition and lists costs more than the rest of a request's Python work, and most futures of
    # a busy pipeline are answered before anyone looks at them: they are made on first use. A future nobody has
    # touched has no Condition; its outcome is set directly (atomically, under the GIL, in C++), and the pipeline
    # leaves it to the next submit() (which holds the GIL already) rather than wake a thread for it. Whoever first
    # waits on it, asks done() or adds a callback makes the Condition, which tells the pipeline to complete it at
    # once.
    def __init__(self, pipeline=None):
        self._pipeline = pipeline  # the native pipeline, told when the future is first waited on

    def __getattr__(self, name):
        if name == "_condition":  # setdefault: two threads asking at once get the same Condition
            condition = self.__dict__.setdefault("_condition", threading.Condition())
            if self._pipeline is not None:
                self._pipeline.awaited()
            return condition
        if name in ("_waiters", "_done_callbacks"):
            return self.__dict__.setdefault(name, [])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def result(self, timeout=None):
        if self._state == "FINISHED" and self._exception is None:
            return self._result
        return super().result(timeout)


_live_pipelines = weakref.WeakSet()


class Pipeline:
    """Runs a plan (or a model, split on the fly) with one ONNX Runtime session and one worker thread per stage.

    source: a Plan, a plan directory or a .onnx model. devices: one per stage (pipeline), exactly one (sequence), one
    per replica (replicas), each "cpu", "cpu:T", "cpu:T@C0-C1" or "cuda:K". mode: "pipeline", "sequence" or
    "replicas". max_inflight: requests admitted and not yet answered (submit blocks beyond). provider_options /
    session_options: ONNX Runtime options for every session; per_device: {"cuda:1": {"provider_options": {...},
    "session_options": {...}}}. balance, cuts, dims, split_device: how a model is split on the fly.

    A context manager: leaving it closes the pipeline (what is still queued fails with CancelledError).
    """

    def __init__(self, source, devices=("cpu",), mode="pipeline", max_inflight=8, micro_batch=0,
                 optimization_level=99, provider_options=None, session_options=None, per_device=None,
                 collect_timings=True, balance=None, cuts=None, dims=None, split_device=None):
        options = dict(devices=list(devices), mode=mode, max_inflight=max_inflight, micro_batch=micro_batch,
                       optimization_level=optimization_level, provider_options=provider_options,
                       session_options=session_options, per_device=per_device, collect_timings=collect_timings,
                       balance=balance, cuts=cuts, dims=dims, device=split_device)
        self._native = _onnxpipe._Pipeline(os.fspath(source), options)
        _live_pipelines.add(self)

    def submit(self, feeds):
        """Enqueues one request ({input name: array}) and returns its Request future, resolved with {output name:
        array}, or with the Error of the stage that failed. Blocks while max_inflight requests are in flight (Ctrl-C
        then raises KeyboardInterrupt, nothing enqueued); raises UsageError at once for inputs that do not match the
        model. A C-contiguous array is read in place: leave it unchanged until the request is done. Thread-safe;
        answers come in submission order."""
        future = Request(self._native)
        self._native.submit(feeds, future)
        return future

    def run(self, feeds_list):
        """Submits every request and waits for all; returns their outputs in order. Raises the first failure once
        every request is done. Ctrl-C closes the pipeline (cancelling what is in flight) and raises
        KeyboardInterrupt."""
        return self._native.run(list(feeds_list))

    def run_batch(self, batch, micro_batch=None):
        """Splits each input of `batch` along axis 0 into micro-batches of `micro_batch` rows (default: the
        pipeline's micro_batch; 0 = whole; C-contiguous inputs are cut into views, not copies), pipelines them and
        concatenates the outputs along axis 0. Ctrl-C closes the pipeline and raises KeyboardInterrupt."""
        return self._native.run_batch(batch, -1 if micro_batch is None else micro_batch)

    @property
    def mode(self):
        return self._native.mode

    @property
    def inputs(self):
        """The model's inputs: dicts with name, dtype, shape (ints, names of symbolic dims, None), bytes."""
        return self._native.inputs

    @property
    def outputs(self):
        return self._native.outputs

    @property
    def stage_count(self):
        return self._native.stage_count

    @property
    def lane_count(self):
        return self._native.lane_count

    def stages(self):
        """What each stage loaded and where: stage, lane, piece, device, inputs, outputs, memory (ORT's arena
        statistics, read now)."""
        return self._native.stages()

    def timings(self):
        """One row per (request, stage) as a pandas DataFrame: the seed's columns wait0, wait, copy1, run, copy2,
        ttime (microseconds), the copies' paths and bytes, and timestamps t_wait, t_begin, t_end (microseconds since
        the pipeline started)."""
        import pandas
        return pandas.DataFrame(self._native.records(), columns=_RECORD_COLUMNS)

    def requests(self):
        """One row per request, by id: submitted, admitted, answered (microseconds since the pipeline started),
        latency_us (admission to answer), failed, stages (how many it went through)."""
        import pandas
        return pandas.DataFrame(self._native.requests(), columns=_REQUEST_COLUMNS)

    def summary(self):
        """Per stage: requests, failures, total wait0 and mean wait, copy1, run, copy2, ttime, median run (us)."""
        import pandas
        return pandas.DataFrame(self._native.summary())

    def clear_timings(self):
        self._native.clear_timings()

    def now_us(self):
        """Now on the records' clock: microseconds since the pipeline was created."""
        return self._native.now_us()

    def close(self):
        """Cancels what is still queued (its futures fail with CancelledError), stops the runs, joins. Idempotent."""
        self._native.close()

    @property
    def closed(self):
        return self._native.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else f"{self.mode}, {self.stage_count} stages x {self.lane_count} lanes"
        return f"Pipeline({state})"


_RECORD_COLUMNS = ["request", "stage", "lane", "device", "wait0", "wait", "copy1", "run", "copy2", "ttime",
                   "copy_in_path", "copy_in_bytes", "copy_out_path", "copy_out_bytes", "t_wait", "t_begin", "t_end",
                   "failed"]
_REQUEST_COLUMNS = ["id", "submitted", "admitted", "answered", "latency_us", "failed", "stages"]


@atexit.register
def _shutdown():
    # Before the interpreter finalizes: no library thread may wait for the GIL then.
    for pipeline in list(_live_pipelines):
        pipeline.close()
    _onnxpipe.join_abandoned()  # calls that Ctrl-C interrupted, still finishing on their own threads
    _onnxpipe.set_log_callback(0, None)

# ---------------------------------------------------------------------------------------------------------------------
# Bench and plot


def bench(source, devices, modes=("sequence", "pipeline", "replicas"), images="1:81:2", repeat=4, warmup=1.0,
          alone_runs=100, micro_batch=0, max_inflight=8, atol=1e-3, seed=0, dims=None, parts=None, balance="time",
          profile_runs=None, trace=None, check=True):
    """The seed's experiment (`onnxpipe bench`): N images through each mode, `repeat` times; returns a pandas
    DataFrame with exactly the columns of `onnxpipe bench --format csv`, one row per (mode, N).

    images: "A:B:S" (Python's range), a range, an int or a list of ints. Other arguments as the CLI's options.
    check: raise VerifyMismatch (with the frame as .frame) when the modes' outputs differ beyond atol.
    """
    import pandas
    options = dict(devices=list(devices), modes=list(modes) if not isinstance(modes, str) else modes, images=images,
                   repeat=repeat, warmup=warmup, alone_runs=alone_runs, micro_batch=micro_batch,
                   max_inflight=max_inflight, atol=atol, seed=seed, dims=dims, parts=parts, balance=balance,
                   profile_runs=profile_runs, trace=None if trace is None else os.fspath(trace))
    columns, rows, mismatches, max_abs_diff = _onnxpipe.bench(os.fspath(source), options)
    frame = pandas.DataFrame(rows, columns=columns)
    frame.attrs["max_abs_diff"] = max_abs_diff
    if check and mismatches:
        error = VerifyMismatch(f"bench: the modes returned different outputs (atol {atol}): " + "; ".join(mismatches))
        error.frame = frame
        raise error
    return frame


def plot(frame, path, title=None):
    """Draws a bench frame (or the path of a bench CSV) as the grid of `onnxpipe plot` into PATH (.png or .svg).
    Runs the CLI's plot script with this interpreter (needs matplotlib)."""
    script = os.path.join(os.path.dirname(__file__), "_plot.py")
    with tempfile.TemporaryDirectory(prefix="onnxpipe_plot_") as tmp:
        csv = frame if isinstance(frame, (str, os.PathLike)) else os.path.join(tmp, "bench.csv")
        if csv is not frame:
            frame.to_csv(csv, index=False)
        command = [sys.executable, script, os.fspath(csv), "-o", os.fspath(path)]
        if title:
            command += ["--title", title]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"plot: {done.stderr.strip() or done.stdout.strip()}")
    return os.fspath(path)
