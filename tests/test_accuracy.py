"""DESIGN.md §2 on every SIMD target, with the standard sweeps of fastact/_accuracy.py: the dense
float32 sweep and the random float64 sweep for the elementwise functions, softmax slices of lengths
1, 10, 1000 and 100000 along the last axis and along axis 0."""

import numpy as np
import pytest
from conftest import SOFTMAX, SOFTMAX_BACKWARD

import fastact
from fastact import _accuracy

ELEMENTWISE = ("sigmoid", "tanh", "relu", "leaky_relu",
               "relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward")


def _assert_passed(row):
    assert row["passed"], (f"{row['function']} {row['dtype']} on {row['target']}: max {row['max_ulp']:.3g} > "
                           f"bound {row['bound']} ({_accuracy.METRICS[row['function']]}); {row['worst']}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_sweep(name, dtype, target):
    row = _accuracy.measure(name, dtype)
    assert row["target"] == target and row["count"] >= (2_000_000 if dtype == "float32" else 500_000)
    _assert_passed(row)


def _softmax_cases():
    for name in SOFTMAX + SOFTMAX_BACKWARD:
        for dtype in ("float32", "float64"):
            for length in _accuracy.SOFTMAX_LENGTHS:
                for axis in _accuracy.SOFTMAX_AXES:
                    yield pytest.param(name, dtype, length, axis, id=f"{name}-{dtype}-len{length}-axis{axis}")


@pytest.mark.parametrize("name, dtype, length, axis", list(_softmax_cases()))
def test_softmax_slices(name, dtype, length, axis, target):
    row = _accuracy.measure(name, dtype, length=length, axis=axis)
    _assert_passed(row)


def test_sigmoid_and_tanh_stay_in_range(target):
    """sigmoid in [0, 1], tanh in [-1, 1] over the whole float32 sweep (no overshoot at the ends)."""
    x = _accuracy.sweep(np.float32)
    s = fastact.sigmoid(x)
    t = fastact.tanh(x)
    finite = ~np.isnan(x)
    assert np.all((s[finite] >= 0) & (s[finite] <= 1))
    assert np.all((t[finite] >= -1) & (t[finite] <= 1))


def test_report_covers_every_function_and_restores_the_target():
    original = fastact.simd_target()
    other = fastact.simd_targets()[-1]
    rows = _accuracy.report(targets=[other], functions=("relu", "sigmoid"), dtypes=(np.dtype(np.float32),))
    assert fastact.simd_target() == original
    assert [(r["function"], r["dtype"], r["target"]) for r in rows] == [("relu", "float32", other),
                                                                        ("sigmoid", "float32", other)]
    for r in rows:
        assert set(r) >= {"function", "dtype", "target", "max_ulp", "mean_ulp", "bound", "passed"}
        assert r["bound"] == _accuracy.BOUNDS[r["function"]]
    assert set(_accuracy.BOUNDS) == set(fastact.__all__) - {"__version__", "set_num_threads", "get_num_threads",
                                                            "simd_target", "simd_targets"}
    assert "scalar" in _accuracy.format_report(rows) or other in _accuracy.format_report(rows)
