"""DESIGN.md §2: the same inputs give the same bits whatever the thread count, on arrays big enough to
be split between threads (2M elements; softmax over many rows, along the last axis and axis 0)."""

import functools

import numpy as np
import pytest
from conftest import ALL, SOFTMAX, SOFTMAX_BACKWARD, assert_same, call, make_inputs

import fastact

N = 2_000_000


@functools.lru_cache(maxsize=None)
def _inputs(name, dtype, axis):
    """Cheap inputs (the values need not be realistic: only the bits across thread counts matter)."""
    shape = (N,) if axis is None else ((2000, 1000) if axis == -1 else (1000, 2000))
    rng = np.random.default_rng(21)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if name in ("softmax_backward", "log_softmax_backward"):
        y = rng.random(shape).astype(dtype) * np.asarray(2.0 / shape[axis], dtype)
        args = (x, y if name == "softmax_backward" else np.log(y))
    elif name in SOFTMAX or name in ("relu", "leaky_relu", "sigmoid", "tanh"):
        args = (x,)
    else:
        args = (x, make_inputs(name, (N,), dtype, seed=22)[1])
    for a in args:
        a.flags.writeable = False
    return args


def test_thread_count_round_trip(restore_threads):
    for n in (1, 2, 3, 1):
        fastact.set_num_threads(n)
        assert fastact.get_num_threads() == n
    assert restore_threads >= 1


def _cases():
    for name in ALL:
        axes = (-1, 0) if name in SOFTMAX + SOFTMAX_BACKWARD else (None,)
        for axis in axes:
            dtypes = ("float32", "float64") if axis is not None else ("float32",)
            for dtype in dtypes:
                label = "" if axis is None else f"-axis{axis}"
                yield pytest.param(name, dtype, axis, id=f"{name}-{dtype}{label}")


@pytest.mark.parametrize("name, dtype, axis", list(_cases()))
def test_bitwise_identical_for_any_thread_count(name, dtype, axis, target, restore_threads):
    args = _inputs(name, dtype, axis)
    kwargs = {} if axis is None else {"axis": axis}
    results = {}
    counts = (1, 2, 3) if axis is not None else (1, 2)  # 3: uneven chunks of the rows
    for n in counts:
        fastact.set_num_threads(n)
        results[n] = call(name, *args, **kwargs)
    for n in counts[1:]:
        assert_same(results[n], results[1], f"{name}: {n} threads vs 1")
