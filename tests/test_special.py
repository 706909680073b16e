"""DESIGN.md §1 special values on every SIMD target, in the vector body and in the scalar tail alike
(specials tiled over every lane position, and alone in arrays of every short length), and no
floating-point warnings ever."""

import warnings

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, FLOATS, SOFTMAX, UNARY, assert_correct, assert_same, call,
                      make_inputs, specials)

import fastact

LENGTHS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33)


def _layouts_of(dtype):
    """Specials tiled so each lands on every lane position (len(specials) is odd), then each special
    alone in arrays of every short length (tail only, then body plus tail)."""
    sp = specials(dtype)
    yield "tiled", np.tile(sp, 9)
    for v in sp:
        for n in LENGTHS:
            yield f"{v!r}x{n}", np.full(n, v, dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", UNARY)
def test_unary_specials_everywhere(name, dtype, target):
    for label, x in _layouts_of(dtype):
        r = call(name, x)
        assert_correct(name, r, x)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_backward_specials_everywhere(name, dtype, target):
    sp = specials(dtype)
    # every (grad, y) pair of specials, in an array long enough for the vector body
    g, y = np.meshgrid(sp, sp)
    g, y = g.ravel(), y.ravel()
    assert_correct(name, call(name, g, y), g, y)
    for n in LENGTHS:
        for v in sp:
            gg, yy = np.full(n, v, dtype), np.full(n, sp[n % len(sp)], dtype)
            assert_correct(name, call(name, gg, yy), gg, yy)
            assert_correct(name, call(name, yy, gg), yy, gg)


def _vals(dtype, *xs):
    with np.errstate(all="ignore"):
        return np.array(xs).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_documented_special_values(dtype, target):
    """The special cases DESIGN.md spells out, asserted one by one (on a body-and-tail length)."""
    def on(name, v, n=19):
        r = call(name, np.full(n, v, dtype=dtype))
        assert np.all(_bits_equal_each(r)), f"{name}({v}): lanes disagree: {r}"
        return r[0]

    nan, inf = np.nan, np.inf
    # relu: NaN passes through, -0.0 stays -0.0
    assert np.isnan(on("relu", nan))
    assert on("relu", -0.0) == 0 and np.signbit(on("relu", -0.0))
    assert on("relu", 0.0) == 0 and not np.signbit(on("relu", 0.0))
    assert on("relu", -inf) == 0 and on("relu", inf) == inf
    sub = np.finfo(dtype).smallest_subnormal
    assert on("relu", sub) == sub and on("relu", -sub) == 0
    # leaky_relu: NaN, -0.0 (x * slope), -inf * slope
    assert np.isnan(on("leaky_relu", nan))
    assert np.signbit(on("leaky_relu", -0.0)) and on("leaky_relu", -0.0) == 0
    assert on("leaky_relu", -inf) == -inf and on("leaky_relu", inf) == inf
    # sigmoid
    assert on("sigmoid", inf) == 1 and on("sigmoid", -inf) == 0 and np.isnan(on("sigmoid", nan))
    assert on("sigmoid", 0.0) == 0.5 and on("sigmoid", -0.0) == 0.5
    assert on("sigmoid", 1000.0) == 1 and on("sigmoid", -1e4) == 0
    # tanh: signed zeros, +-1 at +-inf, NaN, subnormals come out exactly
    for z in (0.0, -0.0):
        t = on("tanh", z)
        assert t == 0 and np.signbit(t) == np.signbit(z), f"tanh({z}) = {t!r}"
    assert on("tanh", inf) == 1 and on("tanh", -inf) == -1 and np.isnan(on("tanh", nan))
    for s in (sub, -sub, 3 * sub, np.finfo(dtype).tiny * 0.75, -np.finfo(dtype).tiny * 0.5):
        s = _vals(dtype, s)[()]
        assert on("tanh", s) == s and np.signbit(on("tanh", s)) == np.signbit(s)
    # relu_backward: a select, NaN/inf grad passes where y > 0, y = NaN passes grad
    g = np.full(19, nan, dtype)
    assert np.all(np.isnan(fastact.relu_backward(g, np.ones(19, dtype))))
    assert np.all(fastact.relu_backward(g, np.zeros(19, dtype)) == 0)
    assert np.all(fastact.relu_backward(np.full(19, inf, dtype), np.full(19, 2.0, dtype)) == inf)
    assert np.all(fastact.relu_backward(np.full(19, 3.0, dtype), np.full(19, nan, dtype)) == 3)
    assert np.all(fastact.relu_backward(np.full(19, 3.0, dtype), np.full(19, -0.0, dtype)) == 0)
    # leaky_relu_backward: the gradient at 0 (and -0) is the slope
    for z in (0.0, -0.0):
        r = fastact.leaky_relu_backward(np.ones(19, dtype), np.full(19, z, dtype), 0.25)
        assert np.all(r == 0.25)


def _bits_equal_each(r):
    """Every element has the bits of the first (NaN: any NaN)."""
    r = np.asarray(r)
    first = np.full_like(r, r.flat[0])
    from fastact import _accuracy
    return _accuracy.bitwise_equal(r, first)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tanh_of_every_subnormal_is_exact(dtype, target):
    """tanh(x) == x for subnormal x (float32: every 7th subnormal of both signs; float64: a sample)."""
    if dtype == "float32":
        bits = np.arange(1, 1 << 23, 7, dtype=np.uint32)
        x = np.concatenate([bits, bits | np.uint32(0x80000000)]).view(np.float32)
    else:
        rng = np.random.default_rng(3)
        bits = rng.integers(1, 1 << 52, 500_000, dtype=np.uint64)
        x = np.concatenate([bits, bits | np.uint64(1 << 63)]).view(np.float64)
    assert_same(call("tanh", x), x, "tanh of subnormals")


def test_no_floating_point_warnings_ever(target):
    """Every function on specials, overflowing and underflowing inputs, all float dtypes, with
    NumPy's error state set to raise and warnings turned into errors: nothing may be raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            for dtype in FLOATS:
                sp = specials(dtype)
                big = np.full(19, np.finfo(dtype).max, dtype)
                for name in ALL:
                    if name in UNARY or name in SOFTMAX:
                        call(name, sp)
                        call(name, np.tile(sp, 3).reshape(-1, 3), axis=0) if name in SOFTMAX else None
                    else:
                        g, y = make_inputs(name, (len(sp),), dtype)
                        call(name, sp, sp) if name in ELEMENTWISE_BACKWARD else call(name, g, y)
                        call(name, big, big)
                call("leaky_relu", big, 1e30)  # overflow to inf in the slope multiply
                call("leaky_relu", -big, 1e30)
                call("sigmoid_backward", big, -big)
                call("tanh_backward", big, big)
                call("softmax", np.array([-np.inf, -np.inf], dtype))
                call("log_softmax", np.array([-np.inf, -np.inf], dtype))
                call("softmax", np.array([1e4, -1e4], dtype))
                out16 = np.empty(3, np.float16)
                call("relu", np.array([1e30, -1.0, 1e10]), out=out16)  # float64 into float16: overflow
                call("sigmoid", np.array([1e30, -1e30, 1e-30]), out=out16)


def test_no_floating_point_warnings_with_dtype_keyword(target):
    """softmax's dtype= cast (which may overflow float16) warns no more than the kernels."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            for name in SOFTMAX:
                call(name, np.array([1.0, 2.0, 1e30, -1e30]), dtype=np.float16)
                call(name, np.array([0, 60000, 70000], np.int32), dtype=np.float16)
                call(name, np.array([1e300, 1.0]), dtype=np.float32)
