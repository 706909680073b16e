"""Shared fixtures and helpers: the SIMD ``target`` fixture, input makers, memory layouts, and the
assertion that a result matches its reference (fastact/_accuracy.py holds the measuring itself)."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastact
from fastact import _accuracy, _reference

# -- hypothesis profiles: quick by default, thorough on CI -----------------------------------------
_HYPOTHESIS_COMMON = dict(
    deadline=None,
    print_blob=True,
    # the target fixture only switches a global kernel table: sharing it across examples is intended
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=25, **_HYPOTHESIS_COMMON)
settings.register_profile("ci", max_examples=100, **_HYPOTHESIS_COMMON)
# A long hunt for inputs nobody thought of, run by hand: HYPOTHESIS_PROFILE=deep.
settings.register_profile("deep", max_examples=3000, **_HYPOTHESIS_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config):
    # When it reports a failing example, hypothesis touches mypy_extensions.TypedDict (deprecated) if
    # mypy is installed; under filterwarnings=error that DeprecationWarning crashes pytest (INTERNALERROR)
    # instead of showing the example. Every other warning stays an error.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

# -- the functions --------------------------------------------------------------------------------
UNARY = ("relu", "leaky_relu", "sigmoid", "tanh")
SOFTMAX = ("softmax", "log_softmax")
ELEMENTWISE_BACKWARD = ("relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward")
SOFTMAX_BACKWARD = ("softmax_backward", "log_softmax_backward")
ALL = UNARY + SOFTMAX + ELEMENTWISE_BACKWARD + SOFTMAX_BACKWARD
TWO_ARGS = ELEMENTWISE_BACKWARD + SOFTMAX_BACKWARD
FLOATS = ("float16", "float32", "float64")
NATIVE = ("float32", "float64")
SECOND_ARG = {"relu_backward": "y", "leaky_relu_backward": "x", "sigmoid_backward": "y",
              "tanh_backward": "y", "softmax_backward": "y", "log_softmax_backward": "log_y"}

TARGETS = fastact.simd_targets()


@pytest.fixture(params=TARGETS, ids=TARGETS)
def target(request):
    """Run the test with each SIMD kernel set this CPU supports; restore the original afterwards."""
    original = fastact.simd_target()
    fastact._core.set_simd_target(request.param)
    assert fastact.simd_target() == request.param
    yield request.param
    fastact._core.set_simd_target(original)


@pytest.fixture
def restore_threads():
    """Restore the thread count a test changes."""
    n = fastact.get_num_threads()
    yield n
    fastact.set_num_threads(n)


def call(name, *args, **kwargs):
    return getattr(fastact, name)(*args, **kwargs)


# -- inputs ---------------------------------------------------------------------------------------
def specials(dtype):
    """The special and edge values of a float dtype (float16 overflow to inf on the way is intended)."""
    fi = np.finfo(dtype)
    vals = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, 20.0, -20.0, 100.0, -100.0, 1e30, -1e30,
            float(fi.smallest_subnormal), -float(fi.smallest_subnormal), float(fi.tiny) / 2,
            -float(fi.tiny) / 2, float(fi.tiny), float(fi.max), -float(fi.max)]
    with np.errstate(all="ignore"):
        return np.array(vals).astype(dtype)


def _cast(x, dtype):
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(dtype)


def values(shape, dtype, rng, *, special_rate=0.15, finite=False, scale=4.0):
    """Random values of ``dtype``, a fraction ``special_rate`` of them replaced by special values:
    all of them, or with ``finite=True`` only the finite ones, or with ``finite="neg_inf"`` the
    finite ones and -inf."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        lo, hi = (0, 200) if dtype.kind == "u" else (-100, 100)
        return rng.integers(lo, hi, shape).astype(dtype)
    x = _cast(rng.standard_normal(shape) * scale, dtype)
    if special_rate and x.size:
        pool = specials(dtype)
        if finite is True:
            pool = pool[np.isfinite(pool) & (np.abs(pool) < 1e4)]
        elif finite == "neg_inf":
            pool = np.concatenate([pool[np.isfinite(pool) & (np.abs(pool) < 1e4)], _cast([-np.inf], dtype)])
        mask = rng.random(shape) < special_rate
        x[mask] = rng.choice(pool, int(mask.sum()))
    return x


def make_inputs(name, shape, dtype, seed=0, *, axis=-1):
    """C-contiguous arguments for ``name``: forward inputs with specials (softmax: finite and -inf only);
    backward ops get realistic y / log_y for the softmax family."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if name in UNARY:
        return (values(shape, dtype, rng),)
    if name in SOFTMAX:
        return (values(shape, dtype, rng, finite="neg_inf", special_rate=0.05),)
    if name in ELEMENTWISE_BACKWARD:
        return values(shape, dtype, rng), values(shape, dtype, rng)
    x = values(shape, dtype, rng, special_rate=0)
    forward = "softmax" if name == "softmax_backward" else "log_softmax"
    wide = np.longdouble if dtype == np.float64 else np.float64
    y = _cast(_reference.reference(forward, x, axis, wide=wide), dtype)
    g = values(shape, dtype, rng, special_rate=0, scale=1.0)
    return g, y


# -- memory layouts with the same logical values --------------------------------------------------
def _every(a, step):
    return tuple(slice(None, None, step) for _ in range(a.ndim))


def lay_contiguous(a):
    return a.copy()


def lay_fortran(a):
    return np.array(a, order="F", copy=True)


def lay_transposed(a):
    """The last two axes swapped in memory (the last axis strided)."""
    if a.ndim < 2:
        return a.copy()
    return np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2)


def lay_negative(a):
    """Every axis reversed in memory: all strides negative."""
    if a.ndim == 0:
        return a.copy()
    return a[_every(a, -1)].copy()[_every(a, -1)]


def lay_step2(a):
    """Every other element of a buffer twice as large on every axis; the gaps hold NaN (or 99)."""
    if a.ndim == 0:
        return a.copy()
    fill = np.nan if a.dtype.kind == "f" else 99
    buf = np.full([2 * n for n in a.shape], fill, dtype=a.dtype)
    view = buf[_every(a, 2)]
    view[...] = a
    return view


def lay_readonly(a):
    b = a.copy()
    b.flags.writeable = False
    return b


LAYOUTS = {
    "contiguous": lay_contiguous,
    "fortran": lay_fortran,
    "transposed": lay_transposed,
    "negstride": lay_negative,
    "step2": lay_step2,
    "readonly": lay_readonly,
}


# -- assertions -----------------------------------------------------------------------------------
def same_bits(a, b):
    """True when a and b have the same dtype, shape and bits (any NaN matching any NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.all(_accuracy.bitwise_equal(a, b)))


def assert_same(actual, expected, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    eq = _accuracy.bitwise_equal(actual, expected)
    if not np.all(eq):
        i = np.argwhere(~eq)[0]
        pytest.fail(f"{what}: {np.count_nonzero(~eq)} element(s) differ, first at {tuple(i)}: "
                    f"{actual[tuple(i)]!r} != {expected[tuple(i)]!r}")


def assert_correct(name, result, *args, **kwargs):
    """``result`` of ``name(*args, **kwargs)`` is within DESIGN.md §2's bound of the reference
    (bitwise equal to the formula for the exact functions; float16: the float32 result rounded)."""
    exp = _accuracy.expected(name, *args, **kwargs)
    result = np.asarray(result)
    assert result.dtype == exp.dtype, f"{name}: result dtype {result.dtype}, expected {exp.dtype}"
    err = _accuracy.errors(result, exp)
    bound = _accuracy.BOUNDS[name]
    if err.size and err.max() > bound:
        pytest.fail(f"{_accuracy.describe_worst(name, result, args, err, exp)} "
                    f"[{fastact.simd_target()}, bound {bound}: {_accuracy.METRICS[name]}]")


def result_dtype(name, *args, **kwargs):
    return _reference.result_dtype(name, *args, **kwargs)
