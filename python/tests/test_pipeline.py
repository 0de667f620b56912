"""Pipelines from Python: futures in order from many threads, the GIL released, cancellation and Ctrl-C."""
import _thread
import concurrent.futures
import threading
import time
import weakref

import numpy as np
import pytest

import onnxpipe


@pytest.fixture
def small_plan(small_chain, tmp_path):
    return onnxpipe.split(small_chain, 2, balance="flops", out_dir=tmp_path / "plan")


def expected(plan, x):
    return onnxpipe.run_pieces(plan, {"x": x})["y"]


def test_futures_from_8_threads_answer_each_in_order(small_plan):
    inputs = [np.full((1, 16), i, np.float32) for i in range(8 * 6)]
    with onnxpipe.Pipeline(small_plan, devices=["cpu:1", "cpu:1"], max_inflight=4) as pipe:
        def client(k):
            return [(pipe.submit({"x": x}), x) for x in inputs[k::8]]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            submitted = [f for part in pool.map(client, range(8)) for f in part]
        for future, x in submitted:
            np.testing.assert_array_equal(future.result(timeout=30)["y"], expected(small_plan, x))
        ids = sorted(future.request_id for future, _ in submitted)
        assert ids == list(range(len(inputs)))
        requests = pipe.requests()
        assert list(requests["id"]) == ids and not requests["failed"].any()
        timings = pipe.timings()
        assert {"wait0", "wait", "copy1", "run", "copy2", "ttime"} <= set(timings.columns)
        assert len(timings) == 2 * len(inputs)


def test_requests_behave_as_futures_whether_waited_on_before_or_after_their_answer(small_plan):
    x = np.ones((1, 16), np.float32)
    want = expected(small_plan, x)
    with onnxpipe.Pipeline(small_plan, devices=["cpu:1", "cpu:1"]) as pipe:
        called = []
        early = pipe.submit({"x": x})
        early.add_done_callback(lambda f: called.append(f.request_id))  # a Condition before the answer
        futures = [pipe.submit({"x": x}) for _ in range(16)]
        done, not_done = concurrent.futures.wait(futures, timeout=30)
        assert not not_done and all(f.done() and not f.running() for f in futures)
        assert [f.request_id for f in concurrent.futures.as_completed(futures, timeout=30)] != []
        for f in futures + [early]:
            np.testing.assert_array_equal(f.result(timeout=30)["y"], want)
            assert f.exception() is None
        late = pipe.submit({"x": x})
        while not late.done():  # answered before anyone waits: no Condition until done() made one
            time.sleep(0.001)
        np.testing.assert_array_equal(late.result()["y"], want)
        assert called == [early.request_id]
    with pytest.raises(onnxpipe.UsageError):
        pipe.submit({"x": x})


def test_run_and_run_batch_match_the_pieces(small_plan):
    x = np.random.default_rng(1).random((6, 16), dtype=np.float32)
    with onnxpipe.Pipeline(small_plan, devices=["cpu:1", "cpu:1"]) as pipe:
        outs = pipe.run([{"x": x[i:i + 1]} for i in range(6)])
        batch = pipe.run_batch({"x": x}, micro_batch=2)["y"]
        assert [s["device"] for s in pipe.stages()] == ["cpu:1", "cpu:1"]
    np.testing.assert_array_equal(np.concatenate([o["y"] for o in outs]), expected(small_plan, x))
    np.testing.assert_allclose(batch, expected(small_plan, x), rtol=1e-6)


def test_the_gil_is_released_while_a_run_is_in_flight(slow_chain):
    x = np.ones((256, 384), np.float32)
    with onnxpipe.Pipeline(slow_chain, devices=["cpu:1"], mode="sequence") as pipe:
        pipe.run([{"x": x}])  # warm
        ticks, stop = [0], threading.Event()

        def spin():
            while not stop.is_set():
                ticks[0] += 1
        spinner = threading.Thread(target=spin)
        spinner.start()
        before = ticks[0]
        pipe.run([{"x": x}] * 4)
        during = ticks[0] - before
        stop.set()
        spinner.join()
    assert during > 1000  # with the GIL held, the spinner would not run at all until run() returned


def test_close_cancels_what_is_queued_and_nothing_hangs(slow_chain):
    x = np.ones((256, 384), np.float32)
    pipe = onnxpipe.Pipeline(slow_chain, devices=["cpu:1"], mode="sequence", max_inflight=16)
    futures = [pipe.submit({"x": x}) for _ in range(16)]
    pipe.close()
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done
    failures = [f.exception() for f in futures if f.exception() is not None]
    assert failures and all(isinstance(e, onnxpipe.Error) for e in failures)
    assert any(isinstance(e, onnxpipe.CancelledError) for e in failures)
    assert pipe.closed


def test_ctrl_c_during_run_cancels_cleanly(slow_chain):
    x = np.ones((2048, 384), np.float32)  # 100 requests: tens of seconds, so that the interrupt comes during the run
    pipe = onnxpipe.Pipeline(slow_chain, devices=["cpu:1"], mode="sequence")
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        pipe.run([{"x": x}] * 100)
    timer.join()
    assert pipe.closed


def test_the_pipeline_reads_the_array_buffer_in_place(slow_chain):
    with onnxpipe.Pipeline(slow_chain, devices=["cpu:1"], mode="sequence") as pipe:
        [want] = pipe.run([{"x": np.full((1, 384), 2, np.float32)}])
        for _ in range(3):  # a second or so ahead of the next one
            pipe.submit({"x": np.ones((2048, 384), np.float32)})
        x = np.ones((1, 384), np.float32)
        future = pipe.submit({"x": x})
        x[:] = 2  # written while the request waits: the stage reads the array itself, not a copy made at submit
        np.testing.assert_array_equal(future.result(timeout=60)["y"], want["y"])


def test_a_borrowed_array_lives_until_its_request_is_done(slow_chain):
    with onnxpipe.Pipeline(slow_chain, devices=["cpu:1"], mode="sequence") as pipe:
        [want] = pipe.run([{"x": np.full((1, 384), 3, np.float32)}])
        for _ in range(3):
            pipe.submit({"x": np.ones((2048, 384), np.float32)})
        x = np.full((1, 384), 3, np.float32)
        alive = weakref.ref(x)
        future = pipe.submit({"x": x})
        del x  # the last reference of the caller's: freed here, were it not for the request
        assert alive() is not None  # the caller dropped it; the request in flight keeps it
        np.testing.assert_array_equal(future.result(timeout=60)["y"], want["y"])
        for _ in range(500):  # the stage drops its input after answering; the reference then goes (no leak)
            onnxpipe._onnxpipe.release_arrays()
            if alive() is None:
                break
            time.sleep(0.01)
        assert alive() is None


def test_a_model_is_split_on_the_fly_and_matches_sequence(small_chain):
    x = np.random.default_rng(3).random((2, 16), dtype=np.float32)
    with onnxpipe.Pipeline(small_chain, devices=["cpu:1", "cpu:1"], balance="flops") as pipe, \
            onnxpipe.Pipeline(small_chain, devices=["cpu:1"], mode="sequence") as sequence:
        assert pipe.stage_count == 2 and sequence.stage_count == 1 and pipe.mode == "pipeline"
        np.testing.assert_allclose(pipe.run([{"x": x}])[0]["y"], sequence.run([{"x": x}])[0]["y"], rtol=1e-6)
