"""Hostile input (issue 8): every public function handed wrong types, wrong ``out``, wrong axes, odd slopes,
empty / 0-d / 32-d arrays, huge and zero strides, byte-swapped, unaligned and subclassed arrays.

Each case gives the correct result (the reference or DESIGN.md's formula) or a TypeError/ValueError whose
message names the function and the argument; nothing crashes and nothing outside ``out`` is written. Cases
that once crashed the interpreter run in a subprocess, so a regression fails one test instead of the run.

What happens to subclasses (DESIGN.md §1 "Array-likes go through np.asarray"): np.matrix, masked arrays and
other ndarray subclasses become plain ndarrays. A masked array's mask is ignored: the values under it are
computed like the others (so a NaN under the mask still makes its softmax slice NaN). An ``out`` that is a
subclass is written through and returned as is (a masked ``out`` keeps its mask).
"""

import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, SECOND_ARG, SOFTMAX, SOFTMAX_BACKWARD, TWO_ARGS, UNARY,
                      assert_correct, assert_same, call, make_inputs, result_dtype)
from numpy.lib.stride_tricks import as_strided

import fastact

AXIS_FUNCS = SOFTMAX + SOFTMAX_BACKWARD
SLOPE_FUNCS = ("leaky_relu", "leaky_relu_backward")


def arg_names(name):
    return ("grad", SECOND_ARG[name]) if name in TWO_ARGS else ("x",)


def named(name, arg):
    """The message pattern: the function's qualified name, then the argument (quoted or not)."""
    return rf"fastact\.{name}\b.*\b{arg}\b"


def with_arg(name, position, value, *, shape=(3, 4), dtype=np.float32):
    """Valid arguments for ``name`` with the one at ``position`` replaced by ``value``."""
    args = list(make_inputs(name, shape, dtype, seed=11))
    args[position] = value
    return args


def run_isolated(code, timeout=120):
    """Runs ``code`` in a fresh interpreter and returns its output. A crash (a signal, or a sanitizer's report
    when run by tools/run_sanitizers.sh) fails the test with the start of the report."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    report = re.search(r"(runtime error:|ERROR: AddressSanitizer|Fatal Python error)", r.stderr)
    if r.returncode < 0 or report:
        how = f"signal {signal.Signals(-r.returncode).name}" if r.returncode < 0 else f"exit code {r.returncode}"
        start = r.stderr.rfind("\n", 0, report.start()) + 1 if report else 0  # the report's whole first line
        pytest.fail(f"the interpreter crashed ({how})\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[start:start + 3000]}")
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


# -- wrong types ---------------------------------------------------------------------------------
BAD_TYPES = {
    "None": None,
    "str": "abc",
    "dict": {"a": 1},
    "set": {1.0, 2.0},
    "object": object(),
    "object_array": np.array([1.0, "x", None], dtype=object),
    "numeric_object_array": np.array([1.0, 2.0], dtype=object),  # numbers, but dtype object: still rejected
    "complex": np.array([1 + 2j, 3 - 1j]),
    "complex_scalar": 1 + 2j,
    "datetime": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
    "bytes": b"\x01\x02",
    "str_array": np.array(["1.0", "2.0"]),
    "structured": np.zeros(2, dtype=[("a", "f4"), ("b", "f4")]),
    "void": np.zeros(2, dtype="V4"),
    "huge_python_int": [2**70, 1],  # NumPy makes an object array of it
}
if np.dtype(np.longdouble).itemsize > 8:  # long double: no kernels (float64 where long double is double)
    BAD_TYPES["longdouble"] = np.array([1.0, -1.0], dtype=np.longdouble)


@pytest.mark.parametrize("bad", list(BAD_TYPES), ids=str)
@pytest.mark.parametrize("name", ALL)
def test_wrong_input_type_is_a_named_type_error(name, bad):
    value = BAD_TYPES[bad]
    for position, arg in enumerate(arg_names(name)):
        args = with_arg(name, position, value)
        with pytest.raises(TypeError, match=named(name, arg)):
            call(name, *args)


@pytest.mark.parametrize("name", ALL)
def test_bool_input(name):
    """bool becomes float64 everywhere except relu, which keeps integer dtypes and rejects bool."""
    b = np.array([[True, False, True]])
    if name == "relu":
        with pytest.raises(TypeError, match=named(name, "x")):
            fastact.relu(b)
        return
    args = [b] * len(arg_names(name))
    r = call(name, *args)
    assert r.dtype == np.float64
    assert_correct(name, r, *args)


@pytest.mark.parametrize("name", ALL)
def test_ragged_sequence_is_a_named_value_error(name):
    """NumPy cannot make an array of a ragged list: a ValueError that says which function and argument."""
    for position, arg in enumerate(arg_names(name)):
        args = with_arg(name, position, [[1.0, 2.0], [3.0]])
        with pytest.raises(ValueError, match=named(name, arg)):
            call(name, *args)


@pytest.mark.parametrize("name", ALL)
def test_array_like_whose_conversion_raises_propagates_its_error(name):
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("broken __array__")

    for position in range(len(arg_names(name))):
        with pytest.raises(RuntimeError, match="broken __array__"):
            call(name, *with_arg(name, position, Broken()))


@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("dtype", ["int32", "complex64", "bool", "datetime64[s]", object, "U3", "longdouble"])
def test_softmax_dtype_argument_rejects_non_floats(name, dtype):
    if dtype == "longdouble" and np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is double here")
    with pytest.raises(TypeError, match=named(name, "dtype")):
        call(name, np.ones(3), dtype=dtype)


@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("dtype", ["not a dtype", 5, 1.5])
def test_softmax_dtype_argument_not_a_dtype(name, dtype):
    with pytest.raises(TypeError, match=named(name, "dtype")):
        call(name, np.ones(3), dtype=dtype)


# -- wrong out ------------------------------------------------------------------------------------
SHAPE = (3, 4)


def bad_outs(rdt):
    ro = np.zeros(SHAPE, rdt)
    ro.flags.writeable = False
    return {
        "list": (TypeError, np.zeros(SHAPE, rdt).tolist()),
        "tuple_of_two": (ValueError, (np.zeros(SHAPE, rdt), np.zeros(SHAPE, rdt))),
        "empty_tuple": (ValueError, ()),
        "tuple_of_list": (TypeError, ([0.0] * 4,)),
        "str": (TypeError, "out"),
        "int": (TypeError, 3),
        "wrong_shape": (ValueError, np.zeros((4, 3), rdt)),
        "wrong_ndim": (ValueError, np.zeros((1, 3, 4), rdt)),
        "flat": (ValueError, np.zeros(12, rdt)),
        "broadcastable_but_smaller": (ValueError, np.zeros((1, 4), rdt)),
        "0d": (ValueError, np.zeros((), rdt)),
        "int_dtype": (TypeError, np.zeros(SHAPE, np.int32)),
        "uint_dtype": (TypeError, np.zeros(SHAPE, np.uint8)),
        "bool_dtype": (TypeError, np.zeros(SHAPE, np.bool_)),
        "datetime_dtype": (TypeError, np.zeros(SHAPE, "datetime64[s]")),
        "read_only": (ValueError, ro),
        "read_only_broadcast": (ValueError, np.broadcast_to(np.zeros(4, rdt), SHAPE)),
    }


@pytest.mark.parametrize("bad", list(bad_outs(np.float32)), ids=str)
@pytest.mark.parametrize("name", ALL)
def test_wrong_out_is_a_named_error(name, bad):
    args = make_inputs(name, SHAPE, np.float32, seed=12)
    exc, out = bad_outs(result_dtype(name, *args))[bad]
    before = [a.copy() for a in args]
    with pytest.raises(exc, match=named(name, "out")):
        call(name, *args, out=out)
    for a, b in zip(args, before):
        assert_same(a, b, "input modified by a call that raised")


# out forms NumPy's ufuncs accept: each gets the plain result, cast (same_kind) to its dtype.
def good_outs(rdt):
    u8 = np.zeros(np.dtype(rdt).itemsize * 12 + 1, np.uint8)
    return {
        "tuple_of_one": lambda: (np.zeros(SHAPE, rdt),),
        "fortran": lambda: np.zeros(SHAPE, rdt, order="F"),
        "negative_strides": lambda: np.zeros((6, 8), rdt)[::-2, ::-2],
        "byteswapped": lambda: np.zeros(SHAPE, np.dtype(rdt).newbyteorder("S")),
        "unaligned": lambda: u8[1:].view(rdt).reshape(SHAPE),
        "float64": lambda: np.zeros(SHAPE, np.float64),
        "float16": lambda: np.zeros(SHAPE, np.float16),
        "complex": lambda: np.zeros(SHAPE, np.complex128),
        "object": lambda: np.zeros(SHAPE, object),
        "matrix": lambda: np.asmatrix(np.zeros(SHAPE, rdt)),
        "masked": lambda: np.ma.array(np.zeros(SHAPE, rdt), mask=np.eye(3, 4, dtype=bool)),
    }


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("form", list(good_outs(np.float32)), ids=str)
@pytest.mark.parametrize("name", ALL)
def test_out_forms_numpy_accepts(name, form):
    args = make_inputs(name, SHAPE, np.float32, seed=13)
    plain = call(name, *args)
    out = good_outs(plain.dtype)[form]()
    target = out[0] if isinstance(out, tuple) else out  # out=(a,) returns a, as a ufunc does
    r = call(name, *args, out=out)
    assert r is target, "the call must return out itself"
    if form == "object":
        np.testing.assert_array_equal(target.astype(np.float64), plain.astype(np.float64))
        return
    native = target.dtype.newbyteorder("=")
    with np.errstate(all="ignore"):
        assert_same(np.asarray(target).astype(native), plain.astype(native), f"out={form}")
    if form == "masked":
        np.testing.assert_array_equal(target.mask, np.eye(3, 4, dtype=bool))  # the mask is kept


# out views that overlap an input in ways the shift-by-k cases of test_out.py do not: reversed, transposed,
# interleaved, and sharing memory with both inputs at once.
OVERLAPS = ["reversed", "transposed", "interleaved", "strided_window"]


def overlapping_pair(kind, values):
    """(x, out): x holds ``values`` (square 6x6), out is a view sharing x's memory."""
    n = values.shape[0]
    if kind == "reversed":
        x = values.copy()
        return x, x[::-1, ::-1]
    if kind == "transposed":
        x = values.copy()
        return x, x.T
    if kind == "interleaved":  # x on the even elements, out on the odd ones: extents overlap, elements don't
        buf = np.zeros(2 * n * n, values.dtype)
        x = buf[0::2].reshape(n, n)
        x[...] = values
        return x, buf[1::2].reshape(n, n)
    buf = np.zeros((2 * n, 2 * n), values.dtype)  # out: the same window with a step, shifted by one row
    x = buf[0:n, 0:n]
    x[...] = values
    return x, buf[1:2 * n:2, 0:n]


@pytest.mark.parametrize("kind", OVERLAPS)
@pytest.mark.parametrize("name", ALL)
def test_overlapping_out_is_as_if_the_inputs_were_copied_first(name, kind, target):
    args = make_inputs(name, (6, 6), np.float64, seed=14)
    plain = call(name, *args)
    for k in range(len(args)):
        x, out = overlapping_pair(kind, args[k])
        assert np.shares_memory(x, out) or kind == "interleaved"
        call_args = list(args)
        call_args[k] = x
        assert call(name, *call_args, out=out) is out
        assert_same(out, plain, f"out {kind} over argument {k}")


@pytest.mark.parametrize("name", TWO_ARGS)
def test_out_aliasing_both_inputs(name, target):
    """grad and y interleaved in one buffer (their extents overlap, their elements do not); out is grad
    itself, then y itself: the other input must be read before it is overwritten."""
    g0, y0 = make_inputs(name, (5, 8), np.float64, seed=15)
    plain = call(name, g0, y0)
    for which in (0, 1):
        buf = np.zeros((5, 16))
        g, y = buf[:, 0::2], buf[:, 1::2]
        g[...] = g0
        y[...] = y0
        out = (g, y)[which]
        assert call(name, g, y, out=out) is out
        assert_same(out, plain, f"out = {('grad', 'y')[which]}, the other input interleaved with it")


# -- nothing written outside out -----------------------------------------------------------------
# (dtype of out, byte offset, strides in elements): plain, unaligned, byte-swapped, reversed, cast on the way
SENTINEL_VIEWS = {
    "aligned": ("float32", 64, (9, 1)),
    "unaligned": ("float32", 65, (9, 1)),
    "step2_reversed": ("float32", 64 + 4 * (2 * 9 * 2 + 6), (-2 * 9, -2)),
    "byteswapped": (">f4", 64, (9, 1)),
    "float64_cast": ("float64", 64, (9, 1)),
    "float16_cast_unaligned": ("float16", 63, (11, 1)),
    "fortran": ("float32", 64, (1, 5)),
}


@pytest.mark.parametrize("view", list(SENTINEL_VIEWS))
@pytest.mark.parametrize("name", ALL)
def test_nothing_written_outside_out(name, view, target):
    dtype, offset, estrides = SENTINEL_VIEWS[view]
    dtype = np.dtype(dtype)
    shape = (3, 4) if view != "fortran" else (5, 4)
    args = make_inputs(name, shape, np.float32, seed=16)
    plain = call(name, *args)
    buf = np.frombuffer(np.random.default_rng(16).bytes(4096), np.uint8).copy()
    orig = buf.copy()
    strides = tuple(s * dtype.itemsize for s in estrides)
    out = np.ndarray(shape, dtype, buffer=buf, offset=offset, strides=strides)
    # the bytes out covers: a marker buffer viewed the same way, every byte of every element set
    marker = np.zeros_like(buf)
    np.ndarray(shape, np.dtype(f"V{dtype.itemsize}"), buffer=marker, offset=offset, strides=strides)[...] = \
        np.frombuffer(b"\xff" * dtype.itemsize, f"V{dtype.itemsize}")[0]
    assert call(name, *args, out=out) is out
    outside = marker == 0
    changed = np.flatnonzero(outside & (buf != orig))
    assert changed.size == 0, f"{changed.size} byte(s) written outside out, first at byte {changed[0]}"
    with np.errstate(all="ignore"):
        assert_same(out.astype(dtype.newbyteorder("=")), plain.astype(dtype.newbyteorder("=")), f"out {view}")


# -- wrong axis -----------------------------------------------------------------------------------
AXIS_ERRORS = {
    "out_of_range": (np.exceptions.AxisError, 2),
    "out_of_range_negative": (np.exceptions.AxisError, -3),
    "out_of_range_in_tuple": (np.exceptions.AxisError, (0, 2)),
    "beyond_int64": (np.exceptions.AxisError, 2**64),
    "beyond_int64_negative": (np.exceptions.AxisError, -(2**70)),
    "float": (TypeError, 1.0),
    "float_in_tuple": (TypeError, (0, 1.0)),
    "bool": (TypeError, True),
    "str": (TypeError, "1"),
    "nested_tuple": (TypeError, ((0,),)),
    "set": (TypeError, {0}),
    "duplicate": (ValueError, (1, 1)),
    "duplicate_via_negative": (ValueError, (0, -2)),
}


@pytest.mark.parametrize("bad", list(AXIS_ERRORS), ids=str)
@pytest.mark.parametrize("name", AXIS_FUNCS)
def test_wrong_axis_is_a_named_error(name, bad):
    exc, axis = AXIS_ERRORS[bad]
    args = make_inputs(name, (3, 4), np.float64, seed=17)
    with pytest.raises(exc, match=named(name, "axis")):
        call(name, *args, axis=axis)


def test_axis_error_is_a_value_error_and_an_index_error():
    with pytest.raises(ValueError):
        fastact.softmax(np.ones((2, 3)), axis=5)
    with pytest.raises(IndexError):
        fastact.softmax(np.ones((2, 3)), axis=5)


@pytest.mark.parametrize("name", AXIS_FUNCS)
def test_axis_as_numpy_integers_and_lists(name):
    args = make_inputs(name, (3, 4, 5), np.float64, seed=18)
    want = call(name, *args, axis=(0, 2))
    for axis in [(np.int64(0), np.int8(-1)), [0, 2], (np.uint16(2), 0), np.array([0, 2]).tolist()]:
        assert_same(call(name, *args, axis=axis), want, f"axis={axis!r}")
    assert_same(call(name, *args, axis=np.int32(1)), call(name, *args, axis=1), "axis=np.int32(1)")
    assert_same(call(name, *args, axis=np.array(1)), call(name, *args, axis=1), "axis=np.array(1) (0-d)")


# Objects whose __index__ raises. These crashed the interpreter (a null pointer after PyNumber_Index
# failed), so they run in a subprocess.
CRASHERS = """
    import numpy as np, fastact
    class BadIndex:
        def __index__(self):
            raise TypeError("no index here")
    class Boom:
        def __index__(self):
            raise ZeroDivisionError("boom")
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    cases = {{"ndarray_2": np.array([0, 1]), "ndarray_1": np.array([1]), "ndarray_in_tuple": (np.array([0, 1]),),
             "bad_index": BadIndex(), "boom": Boom()}}
    for label, value in cases.items():
        try:
            {call}
            print(label, "returned")
        except Exception as e:
            print(label, type(e).__name__, str(e).replace("\\n", " "))
"""


@pytest.mark.parametrize("name", AXIS_FUNCS)
def test_axis_whose_index_raises_does_not_crash(name):
    fn = f"fastact.{name}(" + ("x" if name in SOFTMAX else "x, x") + ", axis=value)"
    lines = dict(line.split(" ", 1) for line in run_isolated(CRASHERS.format(call=fn)).splitlines())
    for label in ("ndarray_2", "ndarray_1", "ndarray_in_tuple", "bad_index"):
        assert re.match(rf"TypeError .*fastact\.{name}\b.*\baxis\b", lines[label]), f"axis={label}: {lines[label]}"
    assert lines["boom"].startswith("ZeroDivisionError boom"), lines["boom"]  # the object's own error passes


def test_set_num_threads_whose_index_raises_does_not_crash():
    out = run_isolated(CRASHERS.format(call="fastact.set_num_threads(value)"))
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    for label in ("ndarray_2", "ndarray_1", "bad_index"):
        assert re.match(r"TypeError .*fastact\.set_num_threads\b", lines[label]), f"n={label}: {lines[label]}"


@pytest.mark.parametrize("n", [2**63, 2**100], ids=["2**63", "2**100"])
def test_set_num_threads_beyond_int64(n, restore_threads):
    """A count beyond int64 is capped like any count above the limit (not a C++ cast error)."""
    fastact.set_num_threads(n)
    assert fastact.get_num_threads() >= 1
    with pytest.raises(ValueError, match=r"set_num_threads"):
        fastact.set_num_threads(-n)


# -- slopes ---------------------------------------------------------------------------------------
SLOPES = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "-0.0": -0.0, "0": 0, "huge": 1e300, "tiny": 1e-300,
          "float32_max": float(np.finfo(np.float32).max), "negative": -3.5, "np.float16": np.float16(0.25),
          "np.int8": np.int8(-2), "0d_array": np.array(0.5), "uint64_max": np.uint64(2**64 - 1)}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int16"])
@pytest.mark.parametrize("slope", list(SLOPES), ids=str)
@pytest.mark.parametrize("name", SLOPE_FUNCS)
def test_any_real_slope_follows_the_formula(name, slope, dtype, target):
    """x > 0 ? x : x * slope (backward: x > 0 ? g : g * slope), evaluated in the compute dtype with the slope
    rounded to it: a NaN slope makes every non-positive x NaN; an infinite one gives -+inf for negative x and
    NaN for +-0 (0 * inf); a slope beyond float32's range is inf in float32."""
    rng = np.random.default_rng(19)
    if np.dtype(dtype).kind == "f":
        specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 1e-30, -1e-30, 3e38, -3e38])
        with np.errstate(all="ignore"):
            x = np.concatenate([specials, rng.standard_normal(53) * 4]).astype(dtype)
    else:
        x = rng.integers(-100, 100, 64).astype(dtype)
    args = (x,) if name == "leaky_relu" else (rng.standard_normal(64).astype(dtype), x)
    s = SLOPES[slope]
    r = call(name, *args, negative_slope=s)
    assert_correct(name, r, *args, negative_slope=float(s))


BAD_SLOPES = {"None": (TypeError, None), "str": (TypeError, "0.1"), "complex": (TypeError, 1 + 1j),
              "bool": (TypeError, True), "np.bool_": (TypeError, np.True_), "list": (TypeError, [0.1]),
              "1d_array": (TypeError, np.array([0.1])), "complex64": (TypeError, np.complex64(1)),
              "datetime": (TypeError, np.datetime64(1, "s")), "huge_int": (ValueError, 2**2000)}


@pytest.mark.parametrize("bad", list(BAD_SLOPES), ids=str)
@pytest.mark.parametrize("name", SLOPE_FUNCS)
def test_wrong_slope_is_a_named_error(name, bad):
    exc, s = BAD_SLOPES[bad]
    args = make_inputs(name, (3, 4), np.float32, seed=20)
    with pytest.raises(exc, match=named(name, "negative_slope")):
        call(name, *args, negative_slope=s)


# -- empty, 0-d, many dimensions -------------------------------------------------------------------
EMPTY_SHAPES = [(0,), (0, 3), (3, 0), (2, 0, 4), (0, 0), (1, 0, 1)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("name", ALL)
def test_empty_arrays(name, shape):
    axes = [None]
    if name in AXIS_FUNCS:
        axes = list(range(-len(shape), len(shape))) + [None, tuple(range(len(shape)))]
    for dtype in ("float16", "float32", "float64", "int32"):
        args = [np.zeros(shape, dtype)] * len(arg_names(name))
        rdt = result_dtype(name, *args)
        for axis in axes:
            kwargs = {} if name not in AXIS_FUNCS else {"axis": axis}
            r = call(name, *args, **kwargs)
            assert type(r) is np.ndarray and r.shape == shape and r.dtype == rdt, (dtype, axis, r.shape, r.dtype)
            out = np.zeros(shape, rdt)
            assert call(name, *args, out=out, **kwargs) is out


@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_empty_broadcasts(name):
    r = call(name, np.ones((0, 1)), np.ones((1, 5)))
    assert r.shape == (0, 5)
    r = call(name, np.float64(1.0), np.ones((3, 0)))
    assert r.shape == (3, 0)


@pytest.mark.parametrize("name", ALL)
def test_zero_dimensional(name, target):
    """0-d arrays, NumPy scalars and Python numbers give NumPy scalars (an ``out`` of shape () is filled)."""
    for dtype in ("float16", "float32", "float64", "int64"):
        args = [a.reshape(()) for a in make_inputs(name, (1,), dtype, seed=21)]
        axes = [-1, 0, None, ()] if name in AXIS_FUNCS else [None]
        for axis in axes:
            kwargs = {} if name not in AXIS_FUNCS else {"axis": axis}
            r = call(name, *args, **kwargs)
            assert isinstance(r, np.generic) and r.dtype == result_dtype(name, *args), (dtype, axis, type(r))
            assert_correct(name, r, *args, **kwargs)
            out = np.zeros((), r.dtype)
            assert call(name, *args, out=out, **kwargs) is out
            assert_same(out, r)
            if dtype == "float64":
                r2 = call(name, *[a.dtype.type(a) for a in args], **kwargs)  # NumPy scalars
                assert_same(r2, r)
                r3 = call(name, *[float(a) for a in args], **kwargs)  # Python floats
                assert_same(r3, r)
    if name in SOFTMAX:
        assert call(name, np.float32(3.0)) == (1.0 if name == "softmax" else 0.0)
    if name in AXIS_FUNCS:
        args = [np.float32(0.5)] * len(arg_names(name))
        for axis in (1, -2, (0, 1)):
            with pytest.raises(np.exceptions.AxisError):
                call(name, *args, axis=axis)


def _many_dims(ndim, rng):
    """A shape of ``ndim`` axes, mostly 1 with a few 2s and 3s (at most a few hundred elements)."""
    shape = [1] * ndim
    for i in rng.choice(ndim, 5, replace=False):
        shape[i] = int(rng.integers(2, 4))
    return tuple(shape)


@pytest.mark.parametrize("ndim", [32, 64])
@pytest.mark.parametrize("name", ALL)
def test_many_dimensions(name, ndim):
    try:
        np.empty((1,) * ndim)
    except ValueError:
        pytest.skip(f"this NumPy caps ndim below {ndim}")
    rng = np.random.default_rng(ndim)
    shape = _many_dims(ndim, rng)
    base = make_inputs(name, shape, np.float64, seed=22)
    perm = rng.permutation(ndim)  # memory order shuffled: every axis' stride is out of order
    args = [np.transpose(np.ascontiguousarray(np.transpose(a, perm)), np.argsort(perm)) for a in base]
    axes = [None]
    if name in AXIS_FUNCS:
        big = [d for d in range(ndim) if shape[d] > 1]
        axes = [-1, 0, None, tuple(big[::2]), (big[0], big[-1]), tuple(rng.choice(ndim, 7, replace=False))]
    keep = [d for d in range(ndim) if shape[d] > 1]
    squeezed = [a.reshape([shape[d] for d in keep]) for a in base]
    for axis in axes:
        kwargs = {} if name not in AXIS_FUNCS else {"axis": axis}
        r = call(name, *args, **kwargs)
        assert r.shape == shape and r.dtype == np.float64
        # the same as over the squeezed array (axes of extent 1 change nothing); NumPy's broadcast_arrays, which
        # the reference uses, stops at 32 dimensions
        small = {}
        if name in AXIS_FUNCS:
            ax = tuple(range(ndim)) if axis is None else np.atleast_1d(axis) % ndim
            small = {"axis": tuple(keep.index(d) for d in ax if d in keep)}
        want = call(name, *squeezed, **small)
        np.testing.assert_allclose(r.reshape(want.shape), want, rtol=1e-12, atol=1e-13, err_msg=f"axis={axis}")
        assert_correct(name, want, *squeezed, **small)


@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_broadcasting_beyond_32_dimensions(name):
    """NumPy arrays have up to 64 dimensions; np.broadcast_shapes stops at 32, fastact must not."""
    try:
        np.empty((1,) * 64)
    except ValueError:
        pytest.skip("this NumPy caps ndim at 32")
    y = np.linspace(-2, 2, 6).reshape((2,) + (1,) * 31 + (3,) + (1,) * 2)  # 35 dimensions
    g = np.full((1,) * 35, 0.5)
    r = call(name, g, y)
    assert r.shape == y.shape
    assert_same(r.reshape(2, 3), call(name, g.reshape(1, 1), y.reshape(2, 3)))


# -- non-finite gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
def test_infinite_grad_in_a_slice_follows_the_formula(name, dtype, axis, target):
    """An infinite grad makes the slice's sum infinite: y * (g - inf) is -inf (or NaN where g is inf too),
    g - p * inf likewise; the other slices are untouched. The float64 sums are compensated (TwoSum), whose
    error term is inf - inf = NaN once the sum is infinite: that NaN must not replace the infinite sum."""
    rows, cols = 3, 37
    y = np.full((rows, cols), 1.0 / cols, dtype)
    if name == "log_softmax_backward":
        y = np.log(y)
    g = np.tile(np.linspace(-1, 1, cols, dtype=dtype), (rows, 1))
    g[1, 5] = np.inf
    g[2, 7] = -np.inf
    if axis == 0:
        g, y = np.ascontiguousarray(g.T), np.ascontiguousarray(y.T)
    r = call(name, g, y, axis=axis)
    with np.errstate(all="ignore"):
        s = g.sum(axis=axis, keepdims=True) if name == "log_softmax_backward" else (g * y).sum(axis=axis, keepdims=True)
        want = g - np.exp(y) * s if name == "log_softmax_backward" else y * (g - s)
    np.testing.assert_array_equal(np.isnan(r), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(r) & (r > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(r) & (r < 0), np.isinf(want) & (want < 0))
    clean = 0 if axis == -1 else 1  # the slice without infinities is finite and right
    finite = np.take(r, [0], axis=clean)
    assert np.isfinite(finite).all()
    assert_correct(name, finite, np.take(g, [0], axis=clean), np.take(y, [0], axis=clean), axis=axis)


# -- strides --------------------------------------------------------------------------------------
def _strided_views(dtype):
    """Views with large, negative, zero and odd strides over small buffers, each with its own values."""
    rng = np.random.default_rng(23)
    dtype = np.dtype(dtype)
    big = (rng.standard_normal(1 << 16) * 3).astype(dtype)  # 64K elements
    it = dtype.itemsize
    views = {
        "huge_steps": as_strided(big, shape=(4, 3), strides=(it * 16000, it * 5000)),
        "huge_negative": as_strided(big[-1:], shape=(3, 5), strides=(-it * 20000, -it * 1000)),
        "huge_mixed_sign": as_strided(big[30000:], shape=(4, 4), strides=(it * 7000, -it * 7000)),
        "broadcast_rows": np.broadcast_to(big[:5], (4, 5)),
        "broadcast_scalar": np.broadcast_to(big[7], (3, 4)),
        "zero_stride_middle": as_strided(big, shape=(3, 4, 2), strides=(it * 100, 0, it)),
        "step_7_transposed": big[:7 * 30:7].reshape(5, 6).T,
    }
    raw = np.zeros(64 * it, np.uint8)  # strides that are not multiples of the item size (elements do not overlap)
    odd = np.ndarray((4, 3), dtype, buffer=raw, offset=1, strides=(it * 11 + 1, it * 3 + 2))
    odd[...] = big[:12].reshape(4, 3)
    views["odd_byte_stride"] = odd
    return views


STRIDED = list(_strided_views(np.float32))


@pytest.mark.parametrize("view", STRIDED)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ALL)
def test_odd_strides(name, dtype, view, target):
    v = _strided_views(dtype)[view]
    if name in TWO_ARGS:  # the view as grad, as y, and as both (the formulas hold for any y)
        other = (np.random.default_rng(5).standard_normal(v.shape) * 0.3).astype(dtype)
        args_list = [(v, other), (other, v), (v, v)]
    else:
        args_list = [(v,)]
    for args in args_list:
        kwargs = {"axis": 0} if name in AXIS_FUNCS else {}
        r = call(name, *args, **kwargs)
        assert_correct(name, r, *[np.array(a) for a in args], **kwargs)
        assert r.flags.writeable and r.flags.aligned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/sys/vm/overcommit_memory")
@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "relu_backward"])
def test_broadcast_view_too_large_to_copy_is_a_memory_error(name):
    """A zero-stride view of 2**40 elements (4 TiB if copied): a MemoryError, not a crash."""
    with open("/proc/sys/vm/overcommit_memory") as f:
        if f.read().strip() == "1":
            pytest.skip("overcommit_memory=1: the allocation would succeed and be touched")
    x = np.broadcast_to(np.float32(1.0), (2**20, 2**20))
    args = (x,) if name not in TWO_ARGS else (np.float32(1.0), x)
    with pytest.raises(MemoryError):
        call(name, *args)


# -- byte order and alignment ---------------------------------------------------------------------
SWAPPED = ["float16", "float32", "float64", "int16", "int32", "int64", "uint16", "uint32"]


def swapped(a):
    return a.astype(a.dtype.newbyteorder("S"))


@pytest.mark.parametrize("dtype", SWAPPED)
@pytest.mark.parametrize("name", ALL)
def test_non_native_byte_order(name, dtype, target):
    """A byte-swapped argument gives the result of its native copy, in the native dtype."""
    native = list(make_inputs(name, (5, 7), dtype, seed=24))
    if np.dtype(dtype).kind in "iu":  # values whose swapped bytes change sign: 128 -> 0x80000000, -256 -> 0x00ffffff
        flat = native[-1].reshape(-1)
        flat[:4] = [1, 127, 128, 300] if np.dtype(dtype).kind == "u" else [128, -256, 300, -129]
    want = call(name, *native)
    for k in range(len(native)):
        args = list(native)
        args[k] = swapped(native[k])
        r = call(name, *args)
        assert r.dtype.isnative, f"result dtype {r.dtype.str} is not native"
        assert_same(r, want, f"argument {k} byte-swapped")
    r = call(name, *[swapped(a) for a in native])
    assert_same(r, want, "every argument byte-swapped")
    out = np.zeros(want.shape, want.dtype.newbyteorder("S"))
    assert call(name, *[swapped(a) for a in native], out=out) is out
    assert_same(out.astype(want.dtype), want, "byte-swapped in and out")
    if name == "relu" and np.dtype(dtype).kind in "iu":
        assert_same(fastact.relu(swapped(native[0]), out=np.zeros(want.shape, want.dtype)), want, "native out")


def unaligned(a, offset=1):
    """A copy of ``a`` at ``offset`` bytes into a uint8 buffer (so misaligned for its dtype)."""
    buf = np.zeros(a.nbytes + offset, np.uint8)
    u = buf[offset:offset + a.nbytes].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert a.ndim == 0 or a.size == 0 or a.dtype.itemsize == 1 or not u.flags.aligned
    return u


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
@pytest.mark.parametrize("name", ALL)
def test_unaligned(name, dtype, target):
    native = list(make_inputs(name, (6, 9), dtype, seed=25))
    want = call(name, *native)
    views = {"plain": (lambda a: unaligned(a), lambda a: a),
             "fortran_offset3": (lambda a: unaligned(np.asfortranarray(a), 3), lambda a: a),
             "step2": (lambda a: unaligned(a)[:, ::2], lambda a: a[:, ::2]),
             "reversed": (lambda a: unaligned(a)[::-1], lambda a: a[::-1])}
    for k in range(len(native)):
        for label, (make, same_view) in views.items():
            args = [same_view(a) for a in native]
            args[k] = make(native[k])
            r = call(name, *args)
            assert_same(r, call(name, *[np.array(a) for a in args]), f"argument {k} unaligned ({label})")
            if label == "plain":
                assert_same(r, want, f"argument {k} unaligned")
    out = unaligned(np.zeros(want.shape, want.dtype), 1)
    assert call(name, *[unaligned(a) for a in native], out=out) is out
    assert_same(out, want, "unaligned in and out")


def test_unaligned_in_place():
    x = unaligned(np.linspace(-3, 3, 101, dtype=np.float32))
    want = fastact.sigmoid(np.array(x))
    assert fastact.sigmoid(x, out=x) is x
    assert_same(x, want)


# -- subclasses -----------------------------------------------------------------------------------
class Tagged(np.ndarray):
    """An ndarray subclass with an attribute, to see that it is not carried over."""

    tag = "tagged"


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("name", ALL)
def test_subclasses_become_plain_ndarrays(name):
    base = make_inputs(name, (3, 4), np.float64, seed=26)
    want = call(name, *base)
    subclassed = {
        "matrix": [np.asmatrix(a) for a in base],
        "masked_no_mask": [np.ma.array(a) for a in base],
        "tagged": [a.view(Tagged) for a in base],
        "recarray_float_view": [a.view(np.recarray) for a in base],
    }
    for label, args in subclassed.items():
        r = call(name, *args)
        assert type(r) is np.ndarray, f"{label}: result is {type(r).__name__}"
        assert_same(r, want, label)
        mixed = [args[0]] + list(base[1:])
        assert type(call(name, *mixed)) is np.ndarray


@pytest.mark.parametrize("name", ALL)
def test_masked_arrays_mask_is_ignored(name):
    """The data under the mask are computed like the rest (np.asarray drops the mask)."""
    base = list(make_inputs(name, (3, 4), np.float64, seed=27))
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    base[-1][1, 2] = np.nan if name not in SOFTMAX_BACKWARD else base[-1][1, 2]
    masked = [np.ma.array(a, mask=mask) for a in base]
    r = call(name, *masked)
    assert type(r) is np.ndarray and not isinstance(r, np.ma.MaskedArray)
    assert_same(r, call(name, *[m.data for m in masked]), "masked == its data")
    if name in SOFTMAX:
        assert np.isnan(r[1]).all(), "the NaN under the mask makes its slice NaN"
        assert not np.isnan(r[0]).any()


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_matrix_rows_and_columns():
    m = np.asmatrix(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert_same(fastact.softmax(m, axis=0), fastact.softmax(np.asarray(m), axis=0))
    r = fastact.relu_backward(np.matrix([[1.0, 2.0, 3.0]]), m)  # a (1, 3) matrix grad broadcasts
    assert type(r) is np.ndarray and r.shape == (2, 3)


@pytest.mark.parametrize("name", UNARY + SOFTMAX)
def test_other_array_likes(name):
    import array

    cases = {"memoryview": memoryview(np.array([1.5, -2.0, 0.25])), "array.array": array.array("f", [1.5, -2.0]),
             "range": range(-2, 3), "tuple": (1.0, -1.0, 0.0), "nested_list": [[1.0, 2.0], [3.0, 4.0]]}
    for label, value in cases.items():
        r = call(name, value)
        assert type(r) is np.ndarray, label
        assert_correct(name, r, np.asarray(value))
