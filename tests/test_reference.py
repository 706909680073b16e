"""The oracles themselves: fastact/_reference.py against exact rational arithmetic and mpmath, and the
ULP measure and sweeps of fastact/_accuracy.py. A wrong oracle would pass wrong kernels."""

from fractions import Fraction

import numpy as np
import pytest

from fastact import _accuracy, _reference


def _correctly_rounded(v: Fraction, dtype):
    """v rounded to nearest even in dtype (float32 or float64), from exact rationals."""
    f = np.dtype(dtype).type(float(v))  # float() rounds correctly to float64; float32 needs a look around
    cands = [f, np.nextafter(f, dtype(np.inf)), np.nextafter(f, dtype(-np.inf))]
    uint = np.uint32 if dtype == np.float32 else np.uint64
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - v), int(np.array(c).view(uint)) & 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fma_emulation_is_correctly_rounded(dtype):
    rng = np.random.default_rng(0)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    one = np.array(1.0, dtype).view(uint)
    y = np.concatenate([
        rng.uniform(-1.5, 1.5, 1500).astype(dtype),
        (one - rng.integers(0, 1 << 20, 500).astype(uint)).view(dtype),  # just below 1: heavy cancellation
        np.ldexp(rng.uniform(1, 2, 300), rng.integers(-40, -5, 300)).astype(dtype),
        np.array([0.0, -0.0, 1.0, -1.0, 2.0 ** -27, 3.0], dtype),
    ] + ([np.ldexp(rng.integers(2**26, 2**27, 300).astype(np.float64), rng.integers(440, 480, 300))]
         if dtype == np.float64 else []))
    got = _reference.fma_neg_square_plus_one(y)
    assert got.dtype == dtype
    for yi, gi in zip(y.tolist(), got.tolist()):
        v = 1 - Fraction(yi) ** 2
        want = _correctly_rounded(v, dtype)
        assert gi == float(want), f"fma(-y, y, 1) for y={yi!r}: {gi!r} != {float(want)!r}"
    specials = _reference.fma_neg_square_plus_one(np.array([np.nan, np.inf, -np.inf], dtype))
    assert np.isnan(specials[0]) and specials[1] == -np.inf and specials[2] == -np.inf


def test_formula_keeps_signed_zero_nan_and_dtypes():
    x = np.array([-0.0, np.nan, -1.0, 2.0], np.float32)
    r = _reference.formula("relu", x)
    assert r.dtype == np.float32 and np.signbit(r[0]) and np.isnan(r[1]) and r[2] == 0 and r[3] == 2
    r = _reference.formula("leaky_relu", x, negative_slope=0.01)
    assert r[2] == np.float32(-1) * np.float32(0.01)
    assert _reference.formula("relu", np.array([-3, 4], np.int16)).dtype == np.int16
    assert _reference.formula("sigmoid_backward", np.ones(2, np.int8), np.ones(2, np.int8)).dtype == np.float64
    r16 = _reference.formula("leaky_relu", np.array([-1.0], np.float16), negative_slope=0.01)
    assert r16.dtype == np.float16 and r16[0] == np.float16(np.float32(-1) * np.float32(0.01))
    with pytest.raises(TypeError):
        _reference.formula("relu", np.array([True]))
    with pytest.raises(TypeError):
        _reference.result_dtype("sigmoid", np.ones(2, np.complex64))


def test_sigmoid_and_tanh_references_against_mpmath():
    mpmath = pytest.importorskip("mpmath", reason="mpmath is not installed")
    mpmath.mp.prec = 200
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-40, 40, 150), np.ldexp(rng.uniform(-1, 1, 50), rng.integers(-1070, -20, 50)),
                        rng.uniform(-740, -40, 50), [0.0, 1e-310, -1e-310, 20.0, -20.0]])
    for wide, tol in ((np.float64, 4e-16), (np.longdouble, 4e-19)):
        s = _reference.sigmoid(x, wide=wide)
        t = _reference.tanh(x, wide=wide)
        def mp(v):
            n, d = v.as_integer_ratio()  # exact, for long double too
            return mpmath.mpf(n) / d

        for xi, si, ti in zip(x.tolist(), s, t):
            ms = 1 / (1 + mpmath.exp(-mpmath.mpf(xi)))
            mt = mpmath.tanh(mpmath.mpf(xi))
            floor = mpmath.mpf(float(np.finfo(wide).smallest_subnormal)) if wide is np.float64 else 0
            assert abs(mp(si) - ms) <= tol * abs(ms) + floor, (wide, xi)
            assert abs(mp(ti) - mt) <= tol * abs(mt) + floor, (wide, xi)


def test_softmax_reference_special_slices_and_axes():
    x = np.array([[1.0, np.nan], [1.0, np.inf], [-np.inf, -np.inf], [0.0, -np.inf], [2.0, 2.0]])
    y = _reference.softmax(x)
    assert np.all(np.isnan(y[:3])) and list(y[3]) == [1.0, 0.0] and list(y[4]) == [0.5, 0.5]
    ly = _reference.log_softmax(x)
    assert np.all(np.isnan(ly[:3])) and ly[3, 0] == 0 and ly[3, 1] == -np.inf
    z = np.arange(24.0).reshape(2, 3, 4)
    for axis in (None, (0, 2), -1, 1):
        s = _reference.softmax(z, axis)
        assert np.allclose(s.sum(axis=axis), 1)
    assert _reference.softmax(np.float64(3.0)) == 1.0 and _reference.log_softmax(5) == 0.0
    with pytest.raises(np.exceptions.AxisError):
        _reference.softmax(z, 3)
    u = _reference.softmax(np.array([0, 255], np.uint8))
    assert u[1] == 1.0 and 0 < u[0] < 1e-100


def test_ulp_error():
    one = np.float32(1.0)
    up = np.nextafter(one, np.float32(2))
    assert _accuracy.ulp_error(np.array([up]), np.array([1.0]))[0] == 1.0
    assert _accuracy.ulp_error(np.array([one]), np.array([1.0 + 2.0 ** -25]))[0] == 0.25
    sub = np.float32(np.finfo(np.float32).smallest_subnormal)
    assert _accuracy.ulp_error(np.array([3 * sub]), np.array([float(sub)]))[0] == 2.0
    assert _accuracy.ulp_error(np.array([np.float32(0)]), np.array([float(sub)]))[0] == 1.0
    e = _accuracy.ulp_error(np.array([np.nan, np.inf, -np.inf, np.nan, 1.0, np.inf], np.float32),
                            np.array([np.nan, np.inf, np.inf, 1.0, np.nan, 1e300]))
    assert list(e) == [0.0, 0.0, np.inf, np.inf, np.inf, 0.0]  # 1e300 rounds to float32 inf
    d = np.float64(0.1)
    ld = np.longdouble(1) / 10
    e64 = _accuracy.ulp_error(np.array([d]), np.array([ld]))[0]
    assert 0 < e64 <= 0.5
    with pytest.raises(TypeError):
        _accuracy.ulp_error(np.array([1]), np.array([1.0]))


def test_sweeps():
    x = _accuracy.sweep(np.float32)
    assert x.dtype == np.float32 and 2_000_000 <= x.size <= 4_000_000 and not x.flags.writeable
    assert np.count_nonzero(np.abs(x) <= 20) > 2_000_000
    exps = set(np.unique((x.view(np.uint32) >> 23) & 0xFF).tolist())
    assert exps == set(range(256)), "every binade, subnormals, inf/NaN"
    for v in (0.0, np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal):
        assert np.any(x == np.float32(v))
    assert np.any(np.signbit(x) & (x == 0)) and np.any(np.isnan(x))
    assert np.any((x > 20) & (x < 128)) and np.any(x > 1e37)
    y = _accuracy.sweep(np.float64)
    assert y.dtype == np.float64 and 500_000 <= y.size and y is _accuracy.sweep("float64")
    assert np.any((y != 0) & (np.abs(y) < np.finfo(np.float64).tiny)) and np.any(y < 0) and np.any(np.isnan(y))
    assert set(_accuracy.BOUNDS) == set(_accuracy.FUNCTIONS)
    assert {c.length for c in _accuracy.cases("softmax", np.float32)} == set(_accuracy.SOFTMAX_LENGTHS)
