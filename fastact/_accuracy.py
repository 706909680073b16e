"""Accuracy sweeps and ULP measurement, shared by the tests and ``python -m fastact accuracy``.

``ulp_error`` measures a result in units in the last place of its own dtype against a wider reference
(float32 against float64, float64 against long double). ``sweep`` gives the standard inputs, ``BOUNDS``
the bounds of DESIGN.md §2, ``measure`` one function x dtype on the current SIMD target and ``report``
every function x dtype x target.

How each function is measured (``METRICS``):

* relu, leaky_relu and the elementwise backward ops are exact: bitwise equal to DESIGN.md's formula
  (``_reference.formula``); any other result counts as at least 1 ULP, so their bound is 0.
* sigmoid, tanh: ULP against the reference; for sigmoid only where the reference result is a normal
  number (a subnormal result must still lie in [0, 2 * smallest normal]).
* softmax: ULP against the reference computed in the wide dtype from ``x - max`` rounded to the
  input's dtype (rounding the inputs is not the kernel's error).
* log_softmax: absolute error in ULP of max(|y|, 1), y from the same shifted input.
* softmax_backward / log_softmax_backward (no bound in DESIGN.md §2; ours): absolute error in ULP of
  the sum of the magnitudes of the terms, |y| * (|g| + sum |g * y|), and |g| + exp(log_y) * sum |g|.
* float16 results (any function) must equal the float32 result rounded once.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from . import _reference as ref

__all__ = [
    "BOUNDS",
    "DTYPES",
    "FUNCTIONS",
    "METRICS",
    "SOFTMAX_AXES",
    "SOFTMAX_LENGTHS",
    "bitwise_equal",
    "cases",
    "describe_worst",
    "error",
    "errors",
    "expected",
    "format_report",
    "measure",
    "report",
    "sweep",
    "ulp_error",
]

FUNCTIONS = (
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward",
    "softmax_backward", "log_softmax_backward",
)
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: The bound of DESIGN.md §2 per function, in the unit of ``METRICS``.
BOUNDS: dict[str, float] = {
    "relu": 0,
    "leaky_relu": 0,
    "relu_backward": 0,
    "leaky_relu_backward": 0,
    "sigmoid_backward": 0,
    "tanh_backward": 0,
    "sigmoid": 2,
    "tanh": 2,
    "softmax": 4,
    "log_softmax": 2,
    "softmax_backward": 8,
    "log_softmax_backward": 8,
}
METRICS: dict[str, str] = {
    **{name: "exact (bitwise equal to the DESIGN.md formula)" for name in ref.EXACT},
    "sigmoid": "ULP, where the reference result is a normal number",
    "tanh": "ULP, everywhere",
    "softmax": "ULP vs the reference from x - max rounded to the input dtype",
    "log_softmax": "absolute error in ULP of max(|y|, 1)",
    "softmax_backward": "absolute error in ULP of |y| * (|g| + sum|g*y|)",
    "log_softmax_backward": "absolute error in ULP of |g| + exp(log_y) * sum|g|",
}

SOFTMAX_LENGTHS = (1, 10, 1000, 100000)
SOFTMAX_AXES = (-1, 0)

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _wide_for(dt: np.dtype):
    return np.float64 if dt.itemsize < 8 else np.longdouble


# --------------------------------------------------------------------------------------------------
# Measuring

def bitwise_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: same bits, any NaN matching any NaN. Integer arrays compare by value."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.dtype.kind != "f":
        return np.asarray(a == b)
    uint = _UINT[a.dtype.itemsize]
    return np.asarray((a.view(uint) == b.view(uint)) | (np.isnan(a) & np.isnan(b)))


def _error_in_units(actual, reference, unit, dt) -> np.ndarray:
    """|actual - reference| / unit with the special values settled: both NaN, or an infinity that the
    reference rounds to, count 0; a NaN or an infinity on one side only counts inf."""
    wide = _wide_for(dt)
    a = np.asarray(actual)
    r = np.asarray(reference).astype(wide)
    with np.errstate(all="ignore"):
        aw = a.astype(wide)
        err = np.abs(aw - r) / unit
        r_rounded = r.astype(dt)
        an, rn = np.isnan(a), np.isnan(r)
        err = np.where(an | rn, np.where(an & rn, 0.0, np.inf), err)
        a_inf = np.isinf(a) & ~rn
        err = np.where(a_inf, np.where(a == r_rounded, 0.0, np.inf), err)
        r_inf = np.isinf(r) & ~an & ~np.isinf(a)
        err = np.where(r_inf, np.inf, err)
        err = np.where(np.isnan(err), np.inf, err)
    return np.asarray(err, dtype=np.float64)


def _unit(value, dt) -> np.ndarray:
    """The ULP of ``value`` rounded to ``dt`` (smallest subnormal for subnormals and zero; the ULP of
    the largest finite number where the rounding overflows)."""
    wide = _wide_for(dt)
    with np.errstate(all="ignore"):
        v = np.abs(np.asarray(value).astype(wide))
        vr = v.astype(dt)
        u = np.spacing(vr)
        u = np.where(np.isinf(vr) & np.isfinite(v), np.spacing(np.finfo(dt).max), u)
    return np.asarray(u).astype(wide)


def ulp_error(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Error of ``actual`` in units in the last place of its dtype.

    ``reference`` should be wider (float64 for float16/float32 results, long double for float64).
    The unit is the ULP of the reference rounded to the actual dtype (the smallest subnormal for
    subnormals and zero). Both NaN, or equal infinities, count 0; NaN or inf on one side only, inf.
    Returns float64 errors of the broadcast shape.
    """
    a = np.asarray(actual)
    if a.dtype.kind != "f":
        raise TypeError(f"ulp_error: actual must be a float array, not {a.dtype}")
    dt = a.dtype
    r = np.asarray(reference)
    a, r = np.broadcast_arrays(a, r)
    return _error_in_units(a, r, _unit(r, dt), dt)


class Expected(NamedTuple):
    """What a result is checked against: ``kind`` is "exact" (bitwise ``value``), "ulp" (ULP against
    the wide ``value``) or "scaled" (absolute error in ULP of ``scale``)."""

    kind: str
    value: np.ndarray
    dtype: np.dtype
    scale: np.ndarray | None = None
    normal_only: bool = False


def _shift(x: np.ndarray, axis) -> np.ndarray:
    """x - max along ``axis`` in x's own dtype (the value the kernels exponentiate)."""
    with np.errstate(all="ignore"):
        if x.ndim == 0:
            return x - x
        if x.size == 0:
            return x
        axes = ref._axes(axis, x.ndim)
        return x - np.max(x, axis=axes, keepdims=True)


def expected(name: str, *args, axis=-1, negative_slope: float = 0.01, dtype=None) -> Expected:
    """What fastact's ``name(*args, ...)`` is checked against (see the module docstring)."""
    arrays = [np.asarray(a) for a in args]
    rdt = ref.result_dtype(name, *arrays, dtype=dtype)
    family = name in ref.SOFTMAX_FAMILY
    if name in ref.EXACT:
        return Expected("exact", ref.formula(name, *arrays, negative_slope=negative_slope), rdt)
    with np.errstate(all="ignore"):
        arrays = [a.astype(dtype) if dtype is not None else a for a in arrays]
        arrays = [a.astype(rdt) for a in arrays]
    if rdt == np.float16:
        import fastact

        kwargs = {"axis": axis} if family else {}
        f32 = [a.astype(np.float32) for a in arrays]
        with np.errstate(all="ignore"):
            value = np.asarray(getattr(fastact, name)(*f32, **kwargs)).astype(np.float16)
        return Expected("exact", value, rdt)
    wide = _wide_for(rdt)
    if name in ("sigmoid", "tanh"):
        return Expected("ulp", ref.reference(name, arrays[0], wide=wide), rdt, normal_only=name == "sigmoid")
    if name in ("softmax", "log_softmax"):
        value = ref.reference(name, _shift(arrays[0], axis), axis, wide=wide)
        if name == "softmax":
            return Expected("ulp", value, rdt)
        with np.errstate(all="ignore"):
            scale = np.maximum(np.abs(value), wide(1))
        return Expected("scaled", value, rdt, scale)
    g, y = (a.astype(wide) for a in arrays)
    value = ref.reference(name, g, y, axis, wide=wide)
    axes = ref._axes(axis, y.ndim)
    with np.errstate(all="ignore"):
        if name == "softmax_backward":
            scale = np.abs(y) * (np.abs(g) + np.sum(np.abs(g * y), axis=axes, keepdims=True))
        elif name == "log_softmax_backward":
            scale = np.abs(g) + np.exp(y) * np.sum(np.abs(g), axis=axes, keepdims=True)
        else:
            raise ValueError(f"unknown function {name!r}")
    return Expected("scaled", value, rdt, scale)


def errors(actual, exp: Expected) -> np.ndarray:
    """Per-element error of ``actual`` in the unit of ``exp`` (float64, same shape)."""
    a = np.asarray(actual)
    if a.dtype != exp.dtype:
        raise TypeError(f"result dtype {a.dtype}, expected {exp.dtype}")
    if a.shape != np.shape(exp.value):
        raise ValueError(f"result shape {a.shape}, expected {np.shape(exp.value)}")
    if exp.kind == "exact":
        same = bitwise_equal(a, exp.value)
        err = np.zeros(a.shape)
        if not same.all():
            if a.dtype.kind == "f":
                diff = ulp_error(a[~same], np.asarray(exp.value)[~same])
            else:
                diff = np.abs(a[~same].astype(np.float64) - np.asarray(exp.value)[~same])
            err[~same] = np.maximum(diff, 1.0)
        return err
    dt = exp.dtype
    if exp.kind == "ulp":
        err = ulp_error(a, exp.value)
        if exp.normal_only:
            tiny = np.finfo(dt).tiny
            r = np.asarray(exp.value)
            with np.errstate(all="ignore"):
                sub = (r != 0) & (np.abs(r) < tiny)
                ok = (a >= 0) & (a <= 2 * tiny)
            err = np.where(sub, np.where(ok, 0.0, np.inf), err)
        return err
    return _error_in_units(a, exp.value, _unit(exp.scale, dt), dt)


def error(name: str, actual, *args, axis=-1, negative_slope: float = 0.01, dtype=None) -> np.ndarray:
    """Per-element error of fastact's result ``actual`` of ``name(*args, ...)`` (see METRICS)."""
    return errors(actual, expected(name, *args, axis=axis, negative_slope=negative_slope, dtype=dtype))


def describe_worst(name: str, actual, args, err: np.ndarray, exp: Expected) -> str:
    """A line naming the worst element: its index, the inputs there, the result and the expected."""
    if err.size == 0:
        return "no elements"
    i = int(np.argmax(err))
    idx = np.unravel_index(i, err.shape)
    a = np.asarray(actual)
    shape = err.shape
    ins = []
    for k, arg in enumerate(args):
        arg = np.asarray(arg)
        if name in ref.SOFTMAX_FAMILY or arg.shape == ():
            v = arg[idx] if arg.shape == shape else arg
        else:
            v = np.broadcast_to(arg, shape)[idx]
        ins.append(f"arg{k}={v!r}")
    exp_v = np.asarray(exp.value)[idx]
    return (f"{name} worst error {err[idx]:.3g} at {tuple(int(j) for j in idx)}: {', '.join(ins)}; "
            f"got {a[idx]!r}, expected {exp_v!r}")


# --------------------------------------------------------------------------------------------------
# Sweeps

def _bits_of(value, dt) -> int:
    return int(np.array(value, dt).view(_UINT[np.dtype(dt).itemsize]))


def _sweep_float32() -> np.ndarray:
    u = np.uint32
    f = np.float32
    b20, b128 = _bits_of(20.0, f), _bits_of(128.0, f)
    bmax = _bits_of(np.finfo(f).max, f)
    parts = [
        np.arange(0, b20 + 1, 1021, dtype=u),  # every binade from the subnormals up to 20, odd stride
        np.arange(b20, b128 + 1, 1021, dtype=u),  # 20..128: where sigmoid(-x) goes subnormal, then 0
        np.arange(b128, bmax + 1, 16381, dtype=u),  # 128..FLT_MAX
    ]
    rng = np.random.default_rng(20240611)
    mant_max = (1 << 23) - 1
    fixed = np.array([0, 1, 2, 3, mant_max - 1, mant_max], dtype=u)
    for e in range(0, 127):  # every binade below 1, subnormals (exponent field 0) included
        mant = np.concatenate([fixed, rng.integers(0, mant_max, 60, dtype=u)])
        parts.append((u(e) << u(23)) | mant)
    specials = [0.0, 1.0, 0.5, 20.0, 128.0, np.finfo(f).max, np.finfo(f).tiny,
                np.finfo(f).smallest_subnormal, np.inf]
    parts.append(np.array([_bits_of(s, f) for s in specials], dtype=u))
    pos = np.concatenate(parts)
    bits = np.concatenate([pos, pos | u(0x80000000), np.array([0x7FC00000, 0xFFC00000], dtype=u)])
    return bits.view(f)


def _sweep_float64() -> np.ndarray:
    u = np.uint64
    f = np.float64
    rng = np.random.default_rng(20240612)

    def signed(bits):
        return (bits | (rng.integers(0, 2, bits.size, dtype=u) << u(63))).view(f)

    b1000 = _bits_of(1000.0, f)
    bmax = _bits_of(np.finfo(f).max, f)
    mant_max = (1 << 52) - 1
    per_binade = []
    for e in range(0, 1023):  # every binade below 1, subnormals included
        mant = np.concatenate([np.array([0, 1, mant_max], dtype=u), rng.integers(0, mant_max, 8, dtype=u)])
        per_binade.append((u(e) << u(52)) | mant)
    binades = np.concatenate(per_binade)
    specials = np.array([0.0, 1.0, 0.5, 20.0, 40.0, 710.0, 745.0, 1000.0, np.finfo(f).max,
                         np.finfo(f).tiny, np.finfo(f).smallest_subnormal, np.inf], dtype=f)
    parts = [
        signed(rng.integers(0, b1000, 200_000, dtype=u)),  # log-uniform magnitudes, subnormals to 1000
        rng.uniform(-40.0, 40.0, 300_000),
        rng.uniform(-750.0, -20.0, 100_000),  # sigmoid's tail, down past float64's underflow
        signed(rng.integers(b1000, bmax, 20_000, dtype=u)),
        binades.view(f), (binades | u(1 << 63)).view(f),
        specials, -specials, np.array([np.nan, -np.nan]),
    ]
    return np.concatenate(parts)


@functools.lru_cache(maxsize=None)
def _sweep(dt: np.dtype) -> np.ndarray:
    if dt == np.float32:
        x = _sweep_float32()
    elif dt == np.float64:
        x = _sweep_float64()
    else:
        raise TypeError(f"sweep: float32 or float64, not {dt}")
    x.flags.writeable = False
    return x


def sweep(dtype) -> np.ndarray:
    """The standard accuracy inputs for ``dtype`` (read-only, cached).

    float32 (about 2.3M values): every float32 in [-20, 20] at a fixed bit-pattern stride of 1021
    (every binade, subnormals included, with varied low mantissa bits), the same stride on 20..128,
    a stride of 16381 on 128..FLT_MAX, 66 mantissas of every binade below 1, the specials (+-0,
    +-smallest subnormal, +-tiny, +-max, +-inf, NaN), all with both signs.
    float64 (about 640K values): a seeded random sweep: log-uniform magnitudes from the subnormals to
    1000 and up to DBL_MAX, uniform on [-40, 40] and [-750, -20], 11 mantissas of every binade below 1,
    the specials, both signs.
    """
    return _sweep(np.dtype(dtype))


class Case(NamedTuple):
    """One input set of ``measure``: the arguments and keywords of the call."""

    label: str
    args: tuple
    kwargs: dict
    length: int | None = None
    axis: int | None = None


def _logits(dt: np.dtype, length: int, axis: int, seed: int) -> np.ndarray:
    """Rows of ``length`` logits (rows along axis 0 when ``axis`` is 0), varied in scale and offset."""
    rng = np.random.default_rng(seed)
    rows = max(2, min(2000, 200_000 // length))
    scales = np.array([0.01, 1.0, 4.0, 16.0, 50.0])[np.arange(rows) % 5]
    offsets = rng.uniform(-100.0, 100.0, rows)
    x = rng.standard_normal((rows, length)) * scales[:, None] + offsets[:, None]
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    return x.astype(dt)


@functools.lru_cache(maxsize=None)
def _cases(name: str, dt: np.dtype) -> tuple[Case, ...]:
    if name in ("relu", "leaky_relu", "sigmoid", "tanh"):
        return (Case("sweep", (sweep(dt),), {}),)
    if name in ref.ELEMENTWISE:  # the backward ops: y (or x) the sweep, grad a permutation of it
        x = sweep(dt)
        g = np.random.default_rng(7).permutation(x)
        g.flags.writeable = False
        return (Case("sweep", (g, x), {}),)
    out = []
    for length in SOFTMAX_LENGTHS:
        for axis in SOFTMAX_AXES:
            seed = length * 10 + (axis + 1)
            x = _logits(dt, length, axis, seed)
            label = f"len{length}-axis{axis}"
            args: tuple[np.ndarray, ...]
            if name in ("softmax", "log_softmax"):
                args = (x,)
            else:
                forward = "softmax" if name == "softmax_backward" else "log_softmax"
                with np.errstate(all="ignore"):
                    y = ref.reference(forward, x, axis, wide=_wide_for(dt)).astype(dt)
                g = np.random.default_rng(seed + 1).standard_normal(x.shape).astype(dt)
                args = (g, y)
            for a in args:
                a.flags.writeable = False
            out.append(Case(label, args, {"axis": axis}, length, axis))
    return tuple(out)


def cases(name: str, dtype) -> tuple[Case, ...]:
    """The input sets ``measure`` runs for ``name`` and ``dtype`` (cached, read-only arrays)."""
    if name not in BOUNDS:
        raise ValueError(f"unknown function {name!r}")
    return _cases(name, np.dtype(dtype))


@functools.lru_cache(maxsize=None)
def _expected_for(name: str, dt: np.dtype, label: str) -> Expected:
    case = next(c for c in _cases(name, dt) if c.label == label)
    return expected(name, *case.args, **case.kwargs)


def measure(function_name: str, dtype, **select: Any) -> dict:
    """Run ``function_name`` over its standard inputs for ``dtype`` on the current SIMD target.

    ``select`` keeps only the cases whose fields match (``length=1000, axis=0`` for the softmax family).
    Returns {function, dtype, target, max_ulp, mean_ulp, bound, passed, count, worst}: errors in the
    unit of ``METRICS[function_name]``, ``worst`` a line describing the worst element.
    """
    import fastact

    dt = np.dtype(dtype)
    f = getattr(fastact, function_name)
    chosen = [c for c in cases(function_name, dt) if all(getattr(c, k) == v for k, v in select.items())]
    if not chosen:
        raise ValueError(f"measure: no case of {function_name} matches {select}")
    max_err, total, count, worst = 0.0, 0.0, 0, ""
    for case in chosen:
        exp = _expected_for(function_name, dt, case.label)
        actual = f(*case.args, **case.kwargs)
        err = errors(actual, exp)
        if err.size == 0:
            continue
        finite = err[np.isfinite(err)]
        total += float(finite.sum())
        count += err.size
        top = float(err.max())
        if top > max_err or not worst:
            max_err = top
            worst = f"[{case.label}] " + describe_worst(function_name, actual, case.args, err, exp)
    bound = BOUNDS[function_name]
    return {
        "function": function_name,
        "dtype": dt.name,
        "target": fastact.simd_target(),
        "max_ulp": max_err,
        "mean_ulp": total / count if count else 0.0,
        "bound": bound,
        "passed": bool(max_err <= bound),
        "count": count,
        "worst": worst,
    }


def report(targets=None, functions=FUNCTIONS, dtypes=DTYPES) -> list[dict]:
    """``measure`` for every function x dtype x target (default: every target this CPU runs).

    Switches targets with ``fastact._core.set_simd_target`` and restores the original afterwards.
    """
    import importlib

    import fastact

    core = importlib.import_module("fastact._core")
    original = fastact.simd_target()
    rows = []
    try:
        for target in targets if targets is not None else fastact.simd_targets():
            core.set_simd_target(target)
            for name in functions:
                for dt in dtypes:
                    rows.append(measure(name, dt))
    finally:
        core.set_simd_target(original)
    return rows


def format_report(rows: list[dict]) -> str:
    """The rows of ``report`` as a text table."""
    head = f"{'target':8} {'function':22} {'dtype':8} {'max':>10} {'mean':>10} {'bound':>6}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['target']:8} {r['function']:22} {r['dtype']:8} {r['max_ulp']:10.3g} "
                     f"{r['mean_ulp']:10.3g} {r['bound']:6g}  {'yes' if r['passed'] else 'NO'}")
    return "\n".join(lines)
