"""numpy in (C-contiguous arrays borrowed, others copied once) and out (the array owns the result's buffer), for
every dtype."""
import numpy as np
import pytest

import onnxpipe
from conftest import DTYPES


def sample(name):
    if name == "str":
        return np.array([["a", "bé", ""], ["ccc", "d", "日本"]])
    if name == "bool":
        return np.array([[True, False, True], [False, False, True]])
    return (np.arange(6).reshape(2, 3) + 1).astype(name)


@pytest.mark.parametrize("name", list(DTYPES))
def test_every_dtype_round_trips_through_a_pipeline(identity_models, name):
    value = sample(name)
    with onnxpipe.Pipeline(identity_models[name], devices=["cpu:1"], mode="sequence") as pipe:
        [out] = pipe.run([{"x": value}])
    y = out["y"]
    if name == "str":
        assert y.dtype == object and y.tolist() == value.tolist()
    else:
        assert y.dtype == value.dtype and y.shape == value.shape
        np.testing.assert_array_equal(y, value)


@pytest.mark.parametrize("name", ["float32", "float16", "complex64", "int64", "bool"])
def test_round_trip_keeps_dtype_and_values(name):
    value = sample("int8").astype(name) if name != "bool" else sample("bool")
    out = onnxpipe._onnxpipe.round_trip(value)
    assert out.dtype == value.dtype
    np.testing.assert_array_equal(out, value)


def test_output_array_owns_the_result_buffer_without_a_copy():
    out = onnxpipe._onnxpipe.round_trip(np.ones((4, 5), np.float32))
    assert not out.flags.owndata and type(out.base).__name__ == "PyCapsule"  # the Tensor itself, moved
    assert out.flags.c_contiguous and out.flags.writeable


@pytest.mark.parametrize("layout", ["c", "fortran", "strided", "big-endian"])
def test_c_contiguous_inputs_are_borrowed_and_others_copied_once(layout):
    base = np.arange(48, dtype=np.float32).reshape(6, 8)
    value = {"c": base, "fortran": np.asfortranarray(base), "strided": base[::2, ::2],
             "big-endian": base.astype(">f4")}[layout]
    before = onnxpipe._onnxpipe.input_bytes_copied()
    address, borrowed = onnxpipe._onnxpipe.input_view(value)
    copied = onnxpipe._onnxpipe.input_bytes_copied() - before
    assert copied == (0 if layout == "c" else value.nbytes)
    assert borrowed == (layout in ("c", "big-endian"))  # a big-endian array is converted, then its copy borrowed
    assert (address == value.ctypes.data) == (layout == "c")
    np.testing.assert_array_equal(onnxpipe._onnxpipe.round_trip(value), value)


def test_an_output_never_aliases_a_borrowed_input():
    value = np.ones((2, 3), np.float32)
    out = onnxpipe._onnxpipe.round_trip(value)
    value[0, 0] = 5
    assert out[0, 0] == 1 and out.ctypes.data != value.ctypes.data


def test_big_endian_and_lists_are_accepted():
    np.testing.assert_array_equal(onnxpipe._onnxpipe.round_trip(np.arange(4, dtype=">i4")), np.arange(4))
    assert onnxpipe._onnxpipe.round_trip([[1.5, 2.5]]).dtype == np.float64
