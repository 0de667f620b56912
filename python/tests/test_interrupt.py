"""Ctrl-C during every blocking call: SIGINT sent to a subprocess by itself while the call blocks; the call raises
KeyboardInterrupt and the process then exits cleanly (nothing hangs). split and verify stop rather than go on in the
background, and an interrupted split leaves nothing behind."""
import os
import subprocess
import sys
import textwrap

import pytest

# Each scenario arms a SIGINT 0.3 s ahead, then makes a call that blocks far longer; prints "NAME ok" when the call
# raised KeyboardInterrupt and what must hold afterwards holds.
SCRIPT = textwrap.dedent("""
    import faulthandler, os, signal, sys, threading, time
    import numpy as np
    import pandas  # bench imports it first thing: imported here, the SIGINT lands in bench, not in pandas' import
    import onnxpipe

    model, plan_dir = sys.argv[1], sys.argv[2]
    faulthandler.dump_traceback_later(100, exit=True)  # a call that ignores its SIGINT: every thread's traceback
    slow = np.ones((2048, 384), np.float32)  # several hundred milliseconds per request

    def interrupted(name, call, after=lambda: True):
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            call()
        except KeyboardInterrupt:
            timer.join()
            print(name, "ok" if after() else "interrupted, but it goes on", flush=True)
        else:
            timer.join()
            print(name, "finished without an interrupt", flush=True)

    def threads():  # native ones too: a call left running keeps its thread and its sessions' threads
        return len(os.listdir("/proc/self/task"))

    def threads_back_to(count):  # a joined thread can stay listed a moment while the kernel tears it down
        deadline = time.monotonic() + 1
        while threads() != count and time.monotonic() < deadline:
            time.sleep(0.01)
        return threads() == count

    with onnxpipe.Pipeline(model, devices=["cpu:1"], mode="sequence", max_inflight=1) as pipe:
        pipe.submit({"x": slow})
        interrupted("submit", lambda: [pipe.submit({"x": slow}) for _ in range(8)])  # held by back-pressure
        assert not pipe.closed
        interrupted("result", lambda: [pipe.submit({"x": slow}).result() for _ in range(8)])
    batch = {"x": np.ones((8 * 2048, 384), np.float32)}  # made before the timer starts, so that it interrupts the run
    with onnxpipe.Pipeline(model, devices=["cpu:1"], mode="sequence") as pipe:
        interrupted("run_batch", lambda: pipe.run_batch(batch, 2048))
        assert pipe.closed
    # split and verify stop (their threads gone when KeyboardInterrupt comes), split leaving what it was to replace.
    root = os.path.dirname(plan_dir)
    out = os.path.join(root, "kept")
    os.makedirs(out)
    with open(os.path.join(out, "mine.txt"), "w") as mine:
        mine.write("mine")
    listing, before = sorted(os.listdir(root)), threads()
    unchanged = lambda: (sorted(os.listdir(root)) == listing and os.listdir(out) == ["mine.txt"]
                         and threads_back_to(before))
    interrupted("split", lambda: onnxpipe.split(model, 2, balance="time", dims={"batch": 512}, profile_runs=10,
                                                out_dir=out, force=True), unchanged)
    interrupted("verify", lambda: onnxpipe.verify(model, plan_dir, dims={"batch": 8192}),
                lambda: threads_back_to(before))
    interrupted("bench", lambda: onnxpipe.bench(model, ["cpu:1"], modes="sequence", images=range(1, 400),
                                                 repeat=20, warmup=0, alone_runs=1, dims={"batch": 16}))
    print("exit", flush=True)
""")
SCENARIOS = ["submit", "result", "run_batch", "split", "verify", "bench"]


@pytest.fixture(scope="module")
def interrupted_run(slow_chain, tmp_path_factory):
    import onnxpipe
    plan = onnxpipe.split(slow_chain, 2, balance="flops", out_dir=tmp_path_factory.mktemp("interrupt") / "plan")
    done = subprocess.run([sys.executable, "-c", SCRIPT, slow_chain, plan.dir], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    return done


@pytest.mark.parametrize("name", SCENARIOS)
def test_ctrl_c_interrupts_the_blocking_call(interrupted_run, name):
    assert f"{name} ok" in interrupted_run.stdout.splitlines(), interrupted_run.stdout + interrupted_run.stderr


def test_the_process_exits_cleanly_after_the_interrupts(interrupted_run):
    assert interrupted_run.returncode == 0, interrupted_run.stderr
    assert interrupted_run.stdout.splitlines()[-1] == "exit"
