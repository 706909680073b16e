"""DESIGN.md §2: the same inputs give the same bits whatever the thread count, on arrays big enough to
be split between threads (2M elements; softmax over many rows, along the last axis and axis 0)."""

import functools

import numpy as np
import pytest
from conftest import ALL, SOFTMAX, SOFTMAX_BACKWARD, assert_correct, assert_same, call, make_inputs

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


@pytest.mark.parametrize("name", SOFTMAX + SOFTMAX_BACKWARD)
def test_column_runs_split_between_threads_give_the_same_bits(name, target, restore_threads):
    """Along a middle axis, each thread reduces its run of 256-column items of one outer index in one
    kernel call: 1, 2 and 3 threads cut (3, 40, 700) into different runs (the last item of each outer
    index partial), with the same bits, and correct."""
    args = make_inputs(name, (3, 40, 700), "float32", seed=700, axis=1)
    results = {}
    for n in (1, 2, 3):
        fastact.set_num_threads(n)
        results[n] = call(name, *args, axis=1)
    assert_correct(name, results[1], *args, axis=1)
    for n in (2, 3):
        assert_same(results[n], results[1], f"{name}: {n} threads vs 1")


@pytest.mark.parametrize("name", SOFTMAX)
def test_slice_too_long_for_cache_is_split_the_same_way(name, target, restore_threads):
    """float32 slices of 16 MB and more: pass 1 runs in fixed chunks on the threads, so one slice (and
    each of two rows) gives the same bits on 1, 2 and 3 threads, and the same bits as the one-thread
    kernel reached along axis 0 of a narrow array (which runs the chunks in turn)."""
    n = (16 << 20) // 4 + 12345
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((2, n)) * 6).astype(np.float32)
    x[1, : n // 2] -= 40  # the second row's max arrives late
    results = {}
    for threads in (1, 2, 3):
        fastact.set_num_threads(threads)
        results[threads] = (call(name, x[0], axis=None), call(name, x))
    for threads in (2, 3):
        assert_same(results[threads][0], results[1][0], f"one slice: {threads} threads vs 1")
        assert_same(results[threads][1], results[1][1], f"two rows: {threads} threads vs 1")
    assert_same(results[1][1][0], results[1][0], "a row and the same data as one slice")
    if target == "scalar":
        return  # one lane per vector: 3 columns are not too few, and take the column kernel's three passes
    narrow = np.ascontiguousarray(np.stack([x[0], x[1], x[0]], axis=1))  # (n, 3): too few columns for a vector
    assert_same(call(name, narrow, axis=0).T, np.stack([results[1][1][0], results[1][1][1], results[1][0]]),
                "axis 0 of a narrow array")
