"""Reference implementations of every fastact function, in plain NumPy, for tests and accuracy reports.

Two kinds of reference live here:

* Mathematical references, computed from the input's exact values in float64 (or, for checking float64
  results, in long double: the ``*_longdouble`` functions and ``reference(..., wide=np.longdouble)``).
  They take the public signatures minus ``out=`` and return arrays of the wide dtype (0-d arrays for
  0-d input). They are written for clarity and accuracy, not speed.
* ``formula``: DESIGN.md §1's formula for each elementwise function (relu, leaky_relu and the four
  elementwise backward ops), evaluated in the dtype fastact computes in and following its dtype rules
  (``result_dtype``). fastact's results must be bitwise equal to these.

Nothing here imports scipy or torch, and nothing emits floating-point warnings.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

try:
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # NumPy < 2.0
    from numpy.core.numeric import normalize_axis_tuple  # type: ignore[no-redef]

__all__ = [
    "ELEMENTWISE",
    "EXACT",
    "SOFTMAX_FAMILY",
    "formula",
    "fma_neg_square_plus_one",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_backward_longdouble",
    "log_softmax_longdouble",
    "reference",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "result_dtype",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_longdouble",
    "softmax",
    "softmax_backward",
    "softmax_backward_longdouble",
    "softmax_longdouble",
    "tanh",
    "tanh_backward",
    "tanh_longdouble",
]

#: Functions whose result must be bitwise equal to ``formula``.
EXACT = ("relu", "leaky_relu", "relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward")
#: Functions that reduce along axes.
SOFTMAX_FAMILY = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")
#: Functions applied element by element (the backward ones broadcast ``grad``).
ELEMENTWISE = ("relu", "leaky_relu", "sigmoid", "tanh",
               "relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward")


# --------------------------------------------------------------------------------------------------
# dtype rules (DESIGN.md §1, "Dtypes")

def result_dtype(name: str, *args, dtype=None) -> np.dtype:
    """The dtype fastact's ``name`` returns for these arguments, or TypeError if it rejects them."""
    dts = [np.asarray(a).dtype for a in args]
    for dt in dts:
        if dt.kind not in "biuf":
            raise TypeError(f"{name}: unsupported dtype {dt}")
    if dtype is not None:
        dts = [np.dtype(dtype)]
    if name == "relu":
        if dts[0].kind == "b":
            raise TypeError("relu: unsupported dtype bool")
        return dts[0]
    # Integer and bool inputs count as float64 (DESIGN.md), also when mixed with a float16/32 one.
    dt = np.result_type(*[np.dtype(np.float64) if d.kind in "biu" else d for d in dts])
    return dt


def _compute_dtype(dt: np.dtype) -> np.dtype:
    """float16 is computed in float32 and rounded once; everything else in its own dtype."""
    return np.dtype(np.float32) if dt == np.float16 else dt


# --------------------------------------------------------------------------------------------------
# Exact fused multiply-add 1 - y*y, correctly rounded in y's dtype (float32 or float64)

def _two_sum(a, b):
    """Knuth's TwoSum: s + err == a + b exactly, s = fl(a + b)."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


def _split(a):
    """Veltkamp's split of a float64 into two 26-bit halves: a == hi + lo exactly."""
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """Dekker's TwoProduct: p + err == a * b exactly, p = fl(a * b) (float64, no over/underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, err


def _round_to_odd(s, err):
    """Given s = RN(v) and err = v - s exactly, return v rounded to odd (the neighbour with an odd
    last bit when v is not representable). Rounding that once more to a format with at most
    p - 2 bits gives the correctly rounded result (Boldo & Melquiond)."""
    uint = np.uint64 if s.dtype == np.float64 else np.uint32
    even = (s.view(uint) & 1) == 0
    fix = (err != 0) & even & np.isfinite(s)
    return np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)


def _fma64(a, b, c):
    """fl(a*b + c) for float64 arrays, exactly rounded (Boldo & Melquiond's emulation by rounding to
    odd). Valid when a*b neither overflows nor underflows and |a|, |b| < 2**500."""
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, ve = _two_sum(tl, ul)
    return th + _round_to_odd(v, ve)


def fma_neg_square_plus_one(y: np.ndarray) -> np.ndarray:
    """fma(-y, y, 1): 1 - y*y rounded once, in y's dtype (float32 or float64)."""
    y = np.asarray(y)
    with np.errstate(all="ignore"):
        if y.dtype == np.float32:
            y64 = y.astype(np.float64)
            p = y64 * y64  # exact: at most 48 significant bits, in float64's range
            s, err = _two_sum(np.float64(1.0), -p)
            return _round_to_odd(np.asarray(s), np.asarray(err)).astype(np.float32)
        if y.dtype != np.float64:
            raise TypeError(f"fma_neg_square_plus_one: float32 or float64, not {y.dtype}")
        ay = np.abs(y)
        out = 1.0 - y * y  # right for NaN and +-inf
        small = ay <= 2.0**-27  # y*y <= 2**-54: 1 - y*y rounds to 1 (a tie at 2**-54 goes to even 1)
        mid = (ay > 2.0**-27) & (ay < 2.0**500)
        big = (ay >= 2.0**500) & (ay < 2.0**512)  # above, y*y >= 2**1024: -inf
        out = np.where(small, 1.0, out)
        if mid.any():
            ym = y[mid]
            out[mid] = _fma64(-ym, ym, np.float64(1.0))
        if big.any():
            # 1 - y*y == 2**1000 * (2**-1000 - q*q) with q = y * 2**-500 (both scalings exact)
            q = y[big] * 2.0**-500
            out[big] = _fma64(-q, q, np.float64(2.0**-1000)) * 2.0**1000
        return out


# --------------------------------------------------------------------------------------------------
# Exact formulas (DESIGN.md §1 "Values"), in the dtype fastact computes in

def _f_relu(x, slope):
    return np.where(x < 0, x.dtype.type(0), x)


def _f_leaky_relu(x, slope):
    return np.where(x > 0, x, x * x.dtype.type(slope))


def _f_relu_backward(g, y, slope):
    g, y = np.broadcast_arrays(g, y)
    return np.where(y <= 0, g.dtype.type(0), g)


def _f_leaky_relu_backward(g, x, slope):
    g, x = np.broadcast_arrays(g, x)
    return np.where(x > 0, g, g * g.dtype.type(slope))


def _f_sigmoid_backward(g, y, slope):
    return g * (y.dtype.type(1) - y) * y


def _f_tanh_backward(g, y, slope):
    return g * fma_neg_square_plus_one(y)


_FORMULAS: dict[str, Callable[..., Any]] = {
    "relu": _f_relu,
    "leaky_relu": _f_leaky_relu,
    "relu_backward": _f_relu_backward,
    "leaky_relu_backward": _f_leaky_relu_backward,
    "sigmoid_backward": _f_sigmoid_backward,
    "tanh_backward": _f_tanh_backward,
}


def formula(name: str, *args, negative_slope: float = 0.01) -> np.ndarray:
    """DESIGN.md's formula for ``name`` (one of EXACT) evaluated the way fastact must: in the result
    dtype (float16 through float32, rounded once; integers and bools as float64, except relu, which
    keeps integers), with NumPy's left-to-right operation order and the slope rounded to the compute
    dtype. Returns an array (0-d for 0-d input) of ``result_dtype(name, *args)``."""
    arrays = [np.asarray(a) for a in args]
    rdt = result_dtype(name, *arrays)
    wdt = _compute_dtype(rdt)
    with np.errstate(all="ignore"):
        arrays = [a.astype(wdt) for a in arrays]
        return np.asarray(_FORMULAS[name](*arrays, negative_slope)).astype(rdt)


# --------------------------------------------------------------------------------------------------
# Mathematical references

def _wide(x, wide) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"reference: unsupported dtype {x.dtype}")
    return x.astype(wide)


def _axes(axis, ndim):
    """The reduction axes as a tuple (None for all); AxisError/ValueError as NumPy raises them."""
    if ndim == 0:
        if axis is None or (not isinstance(axis, tuple) and axis in (0, -1)):
            return None
        return normalize_axis_tuple(axis, 1)  # a 0-d array behaves as one element along one axis
    if axis is None:
        return None
    return normalize_axis_tuple(axis, ndim)


def relu(x, *, wide=np.float64):
    """x < 0 ? 0 : x."""
    x = _wide(x, wide)
    return np.where(x < 0, wide(0), x)


def leaky_relu(x, negative_slope=0.01, *, wide=np.float64):
    """x > 0 ? x : x * slope."""
    x = _wide(x, wide)
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * wide(negative_slope))


def sigmoid(x, *, wide=np.float64):
    """1 / (1 + exp(-x)), in the form that never overflows: with e = exp(-|x|) in (0, 1],
    1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0."""
    x = _wide(x, wide)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x, *, wide=np.float64):
    """tanh(x) = sign(x) * (1 - exp(-2|x|)) / (1 + exp(-2|x|)), through expm1 so that small and
    subnormal x come out as x and the sign of zero is kept."""
    x = _wide(x, wide)
    with np.errstate(all="ignore"):
        m = np.expm1(-2 * np.abs(x))  # in [-1, 0]
        return np.copysign(-m / (2 + m), x)


def _softmax_parts(x, axis, dtype, wide):
    """x cast (to ``dtype`` first, then to ``wide``), the reduction axes, the shifted x - max, the sum
    of exp(x - max), and the mask of slices that must come out NaN (a NaN or +inf, or all -inf)."""
    x = np.asarray(x)
    if dtype is not None:
        with np.errstate(all="ignore"):
            x = x.astype(dtype)
    x = _wide(x, wide)
    axes = _axes(axis, x.ndim)
    if x.size == 0:
        return x, axes, None, None, None
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axes, keepdims=True)
        bad = ~np.isfinite(m)  # NaN in the slice, +inf in it, or every entry -inf
        d = x - np.where(bad, wide(0), m)
        s = np.sum(np.exp(d), axis=axes, keepdims=True)
    return x, axes, d, s, bad


def softmax(x, axis=-1, *, dtype=None, wide=np.float64):
    """exp(x - max) / sum(exp(x - max)) along ``axis``; a NaN slice where the slice holds a NaN or
    +inf or is all -inf."""
    x, axes, d, s, bad = _softmax_parts(x, axis, dtype, wide)
    if d is None:
        return x.copy()
    with np.errstate(all="ignore"):
        return np.where(bad, wide(np.nan), np.exp(d) / s)


def log_softmax(x, axis=-1, *, dtype=None, wide=np.float64):
    """x - max - log(sum(exp(x - max))) along ``axis``; same special cases as softmax."""
    x, axes, d, s, bad = _softmax_parts(x, axis, dtype, wide)
    if d is None:
        return x.copy()
    with np.errstate(all="ignore"):
        return np.where(bad, wide(np.nan), d - np.log(s))


def relu_backward(grad, y, *, wide=np.float64):
    """y <= 0 ? 0 : grad."""
    g, y = np.broadcast_arrays(_wide(grad, wide), _wide(y, wide))
    return np.where(y <= 0, wide(0), g)


def leaky_relu_backward(grad, x, negative_slope=0.01, *, wide=np.float64):
    """x > 0 ? grad : grad * slope."""
    g, x = np.broadcast_arrays(_wide(grad, wide), _wide(x, wide))
    with np.errstate(all="ignore"):
        return np.where(x > 0, g, g * wide(negative_slope))


def sigmoid_backward(grad, y, *, wide=np.float64):
    """grad * y * (1 - y)."""
    g, y = _wide(grad, wide), _wide(y, wide)
    with np.errstate(all="ignore"):
        return g * ((1 - y) * y)


def tanh_backward(grad, y, *, wide=np.float64):
    """grad * (1 - y**2)."""
    g, y = _wide(grad, wide), _wide(y, wide)
    with np.errstate(all="ignore"):
        return g * (1 - y * y)


def _same_shape(name, grad, y, second):
    if grad.shape != y.shape:
        raise ValueError(f"{name}: grad and {second} must have the same shape, got {grad.shape} and {y.shape}")


def softmax_backward(grad, y, axis=-1, *, wide=np.float64):
    """y * (grad - sum(grad * y)) along ``axis``."""
    g, y = _wide(grad, wide), _wide(y, wide)
    _same_shape("softmax_backward", g, y, "y")
    axes = _axes(axis, y.ndim)
    with np.errstate(all="ignore"):
        return y * (g - np.sum(g * y, axis=axes, keepdims=True))


def log_softmax_backward(grad, log_y, axis=-1, *, wide=np.float64):
    """grad - exp(log_y) * sum(grad) along ``axis``."""
    g, ly = _wide(grad, wide), _wide(log_y, wide)
    _same_shape("log_softmax_backward", g, ly, "log_y")
    axes = _axes(axis, ly.ndim)
    with np.errstate(all="ignore"):
        return g - np.exp(ly) * np.sum(g, axis=axes, keepdims=True)


def sigmoid_longdouble(x):
    """sigmoid in long double (80-bit on x86), for checking float64 results."""
    return sigmoid(x, wide=np.longdouble)


def tanh_longdouble(x):
    """tanh in long double, for checking float64 results."""
    return tanh(x, wide=np.longdouble)


def softmax_longdouble(x, axis=-1, *, dtype=None):
    """softmax in long double, for checking float64 results."""
    return softmax(x, axis, dtype=dtype, wide=np.longdouble)


def log_softmax_longdouble(x, axis=-1, *, dtype=None):
    """log_softmax in long double, for checking float64 results."""
    return log_softmax(x, axis, dtype=dtype, wide=np.longdouble)


def softmax_backward_longdouble(grad, y, axis=-1):
    """softmax_backward in long double."""
    return softmax_backward(grad, y, axis, wide=np.longdouble)


def log_softmax_backward_longdouble(grad, log_y, axis=-1):
    """log_softmax_backward in long double."""
    return log_softmax_backward(grad, log_y, axis, wide=np.longdouble)


_REFERENCES: dict[str, Callable[..., Any]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "relu_backward": relu_backward,
    "leaky_relu_backward": leaky_relu_backward,
    "sigmoid_backward": sigmoid_backward,
    "tanh_backward": tanh_backward,
    "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward,
}


def reference(name: str, *args, wide=np.float64, **kwargs) -> np.ndarray:
    """The reference of fastact function ``name`` in dtype ``wide`` (np.float64 or np.longdouble)."""
    return _REFERENCES[name](*args, wide=wide, **kwargs)
