"""Fuzzing (issue 8): hypothesis draws the function, the SIMD target, dtypes (valid, byte-swapped and invalid
ones), shapes (empty and 0-d included), memory layouts (axes permuted in memory, steps of either sign, an
unaligned byte offset into a larger buffer, read-only), values (NaN, infinities, subnormals) and the other
arguments (out in every form, valid or not; axes valid or not; slopes valid or not). Each call must give the
reference's result within DESIGN.md's bound, or raise the exception the arguments call for, with a message
that names the function; it must never crash, write to its inputs or write outside ``out``.

test_hypothesis.py checks the numerics on valid input; this file is about what a caller might hand over.
The example counts come from conftest.py's hypothesis profiles ('ci' when CI is set, else 'dev')."""

import functools
import subprocess
import sys

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, SECOND_ARG, SOFTMAX, SOFTMAX_BACKWARD, TWO_ARGS, UNARY,
                      assert_correct, assert_same, call, result_dtype)
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastact

TARGETS = fastact.simd_targets()
AXIS_FUNCS = SOFTMAX + SOFTMAX_BACKWARD
SLOPE_FUNCS = ("leaky_relu", "leaky_relu_backward")

VALID_DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "uint64", "bool"]
SWAPPED_DTYPES = [np.dtype(t).newbyteorder("S").str for t in ("float16", "float32", "float64", "int32", "uint16")]
INVALID_DTYPES = ["complex64", "complex128", "object", "U3", "S3", "datetime64[s]", "timedelta64[ms]", "V8"]
if np.dtype(np.longdouble).itemsize > 8:
    INVALID_DTYPES.append("longdouble")


def is_valid(dt):
    return dt.kind in "biuf" and not (dt.kind == "f" and dt.itemsize > 8)


def elements(dt):
    if dt.kind == "f":
        return st.floats(width=8 * dt.itemsize, allow_nan=True, allow_infinity=True, allow_subnormal=True)
    if dt.kind == "b":
        return st.booleans()
    info = np.iinfo(dt)
    return st.integers(max(int(info.min), -(2**40)), min(int(info.max), 2**40))


@st.composite
def values(draw, dtype, shape):
    """An array of ``dtype`` and ``shape`` with drawn values (zeros for dtypes without numbers)."""
    dt = np.dtype(dtype)
    if not is_valid(dt):
        return np.zeros(shape, dt)
    native = dt.newbyteorder("=")
    a = draw(hnp.arrays(native, shape, elements=elements(native)))
    return a.astype(dt)


@st.composite
def placed(draw, a):
    """``a``'s values in a drawn memory layout: axes permuted in memory, each stepped by 1, 2 or 3 in either
    direction, at a drawn byte offset (maybe unaligned) into a uint8 buffer, maybe read-only."""
    if a.dtype.hasobject or a.ndim == 0 and draw(st.booleans()):
        return a.copy()
    nd = a.ndim
    perm = draw(st.permutations(range(nd)))
    steps = draw(st.lists(st.sampled_from([1, 2, 3, -1, -2]), min_size=nd, max_size=nd))
    offset = draw(st.sampled_from([0, 0, 1, 3, a.dtype.itemsize]))
    stored = tuple(max(1, a.shape[p] * abs(steps[p])) for p in perm)
    buf = np.zeros(int(np.prod(stored)) * a.dtype.itemsize + offset + 8, np.uint8)
    base = np.ndarray(stored, a.dtype, buffer=buf, offset=offset)
    view = base
    if nd:
        view = base[tuple(slice(None, None, steps[p]) for p in perm)][tuple(slice(0, a.shape[p]) for p in perm)]
        view = np.transpose(view, np.argsort(perm))
    view[...] = a
    if draw(st.booleans()):
        view.flags.writeable = False
    return view


@st.composite
def arrays(draw, dtypes, shape):
    dtype = draw(st.sampled_from(dtypes))
    return draw(placed(draw(values(dtype, shape))))


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)


def native_copy(a):
    a = np.asarray(a)
    return np.array(a, dtype=a.dtype.newbyteorder("=") if a.dtype.kind != "O" else a.dtype)


def as_computed(name, a):
    """DESIGN.md §1: integer and bool inputs become float64 (relu keeps integers), before any promotion with the
    other argument; so int16 grad with float32 y gives float64, as the bindings do."""
    a = native_copy(a)
    if a.dtype.kind in "biu" and not (name == "relu" and a.dtype.kind in "iu"):
        return a.astype(np.float64)
    return a


def same_contents(a, b):
    """Byte-for-byte equality of two arrays' values (any dtype; float128 and object included)."""
    a, b = np.ascontiguousarray(native_copy(a)), np.ascontiguousarray(native_copy(b))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def use_target(data):
    t = data.draw(st.sampled_from(TARGETS), label="target")
    fastact._core.set_simd_target(t)


@pytest.fixture(autouse=True)
def _restore_target():
    original = fastact.simd_target()
    yield
    fastact._core.set_simd_target(original)


# -- what the arguments call for -----------------------------------------------------------------------
def input_errors(name, args):
    """The exception types the inputs call for (an empty list when they are valid)."""
    errs = []
    dts = [np.asarray(a).dtype for a in args]
    if any(not is_valid(dt) for dt in dts) or (name == "relu" and dts[0].kind == "b"):
        errs.append(TypeError)
    shapes_ = [np.shape(a) for a in args]
    if name in ELEMENTWISE_BACKWARD:
        try:
            np.broadcast_shapes(*shapes_)
        except ValueError:
            errs.append(ValueError)
    if name in SOFTMAX_BACKWARD and shapes_[0] != shapes_[1]:
        errs.append(ValueError)
    return errs


def axis_errors(axis, ndim):
    if axis is None:
        return []
    items = axis if isinstance(axis, (tuple, list)) else [axis]
    errs = []
    bound = max(ndim, 1)
    norm = []
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            return [TypeError]
        if not -bound <= int(a) < bound:
            errs.append(np.exceptions.AxisError)
        else:
            norm.append(int(a) % bound)
    if ndim and len(set(norm)) != len(norm):
        errs.append(ValueError)
    return errs


AXES_BAD = [1.0, "0", (0, 0.5), True, [None], 10, -10, (0, 0), 2**70]


@st.composite
def axes(draw, ndim):
    """Mostly valid axes (int, negative int, None, tuple, list, NumPy integers), sometimes invalid ones."""
    kind = draw(st.sampled_from(["int", "int", "none", "tuple", "numpy", "bad"]))
    if kind == "bad":
        return draw(st.sampled_from(AXES_BAD))
    if kind == "none":
        return None
    bound = max(ndim, 1)
    if kind == "int":
        return draw(st.integers(-bound, bound - 1))
    if kind == "numpy":
        return np.int64(draw(st.integers(-bound, bound - 1)))
    picked = draw(st.lists(st.integers(0, bound - 1), max_size=bound, unique=True))
    picked = [p - bound if draw(st.booleans()) else p for p in picked]
    return tuple(picked) if draw(st.booleans()) else list(picked)


SLOPES_OK = [0.01, 0.0, -0.0, -0.3, 1.5, 1e-30, 1e300, float("nan"), float("inf"), -float("inf"), 7,
             np.float32(0.2), np.float16(2.0), np.int8(-3), np.array(0.5)]
SLOPES_BAD = [None, "0.1", 1j, True, [0.1], np.array([0.1, 0.2])]


@st.composite
def out_forms(draw, rdt, shape, args):
    """(out, exception it calls for or None). Forms: none, fresh (same, wider, narrower, complex dtype), a tuple
    of one, an unaligned, byte-swapped or strided view, in place, and invalid ones."""
    forms = ["none", "fresh", "fresh_f64", "fresh_f16", "tuple1", "strided", "unaligned", "swapped",
             "wrong_shape", "int", "readonly", "list", "tuple2"]
    if rdt is not None and any(a.flags.writeable and a.dtype == rdt and a.shape == shape for a in args):
        forms.append("inplace")
    form = draw(st.sampled_from(forms))
    rdt = np.dtype(rdt if rdt is not None else np.float64)
    if form == "none":
        return form, None, None
    if form == "fresh":
        return form, np.zeros(shape, rdt), None
    if form in ("fresh_f64", "fresh_f16"):
        odt = np.dtype(np.float64 if form == "fresh_f64" else np.float16)
        bad = odt.kind != rdt.kind and not np.can_cast(rdt, odt, "same_kind")
        return form, np.zeros(shape, odt), TypeError if bad else None
    if form == "tuple1":
        return form, (np.zeros(shape, rdt),), None
    if form == "strided":
        if not shape:
            return form, np.zeros(3, rdt)[1:2].reshape(()), None
        big = np.zeros(tuple(2 * n + 1 for n in shape), rdt)
        return form, big[tuple(slice(None, None, -2) for _ in shape)][tuple(slice(0, n) for n in shape)], None
    if form == "unaligned":
        buf = np.zeros(int(np.prod(shape)) * rdt.itemsize + 1, np.uint8)
        return form, np.ndarray(shape, rdt, buffer=buf, offset=1), None
    if form == "swapped":
        return form, np.zeros(shape, rdt.newbyteorder("S")), None
    if form == "inplace":
        return form, next(a for a in args if a.flags.writeable and a.dtype == rdt and a.shape == shape), None
    if form == "wrong_shape":
        return form, np.zeros(tuple(shape) + (2,), rdt), ValueError
    if form == "int":
        bad = rdt.kind == "f"
        return form, np.zeros(shape, np.int16), TypeError if bad else None
    if form == "readonly":
        o = np.zeros(shape, rdt)
        o.flags.writeable = False
        return form, o, ValueError
    if form == "list":
        return form, np.zeros(shape, rdt).tolist(), TypeError
    return form, (np.zeros(shape, rdt), np.zeros(shape, rdt)), ValueError


def check_call(name, args, kwargs, out_form, out, out_error, errs):
    """Calls ``name`` and checks the result or the exception."""
    before = [np.array(a, copy=True) for a in args]
    errs = list(errs) + ([out_error] if out_error else [])
    call_kwargs = dict(kwargs)
    if out_form != "none":
        call_kwargs["out"] = out
    note(f"{name}({', '.join(f'{np.asarray(a).dtype.str}{np.shape(a)}' for a in args)}, {kwargs}, out={out_form}); "
         f"expecting {[e.__name__ for e in errs] or 'a result'}")
    if errs:
        with pytest.raises(tuple(errs)) as info:
            call(name, *args, **call_kwargs)
        assert f"fastact.{name}" in str(info.value), f"the message does not name the function: {info.value}"
    else:
        r = call(name, *args, **call_kwargs)
        plain_args = [as_computed(name, a) for a in before]
        ref_kwargs = {k: (float(v) if k == "negative_slope" else v) for k, v in kwargs.items()}
        if isinstance(kwargs.get("axis"), (tuple, list)):
            # a list is a tuple; a 0-d array reduces its one element (fastact._reference's axis handling takes
            # only (), 0, -1 and None there)
            ref_kwargs["axis"] = tuple(kwargs["axis"]) if np.ndim(args[-1]) else None
        if out_form == "none":
            if all(np.ndim(a) == 0 for a in args):
                assert isinstance(r, np.generic)
            assert_correct(name, r, *plain_args, **ref_kwargs)
        else:
            target = out[0] if out_form == "tuple1" else out
            assert r is target
            plain = np.asarray(call(name, *plain_args, **kwargs))
            assert_correct(name, plain, *plain_args, **ref_kwargs)
            native = target.dtype.newbyteorder("=")
            with np.errstate(all="ignore"):
                assert_same(np.asarray(target).astype(native), plain.astype(native), f"out={out_form}")
    if out_form != "inplace" or errs:
        for a, b in zip(args, before):
            assert same_contents(a, b), "an input was modified"


@functools.lru_cache(maxsize=None)
def axis_array_crashes():
    """Whether an ndarray of more than one element as ``axis`` kills the interpreter (it did: a null pointer
    after a failed PyNumber_Index). Asked once, in a subprocess."""
    code = "import numpy as np, fastact\ntry:\n    fastact.softmax(np.ones(3), axis=np.array([0, 1]))\nexcept Exception:\n    pass"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return r.returncode != 0


# -- the tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", UNARY + ELEMENTWISE_BACKWARD)
@given(data=st.data())
def test_fuzz_elementwise(name, data):
    use_target(data)
    dtypes = VALID_DTYPES + SWAPPED_DTYPES + (INVALID_DTYPES if data.draw(st.integers(0, 9), label="p") == 0 else [])
    shape = data.draw(shapes, label="shape")
    x = data.draw(arrays(dtypes, shape), label="x")
    args = [x]
    if name in ELEMENTWISE_BACKWARD:
        if data.draw(st.integers(0, 9), label="mismatch") == 0:
            gshape = data.draw(shapes, label="grad shape")
        else:
            gshape = data.draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=len(shape) + 1, min_side=0),
                               label="grad shape")
        args = [data.draw(arrays(dtypes, gshape), label="grad"), x]
    kwargs = {}
    errs = input_errors(name, args)
    if name in SLOPE_FUNCS:
        if data.draw(st.integers(0, 9), label="bad slope") == 0:
            kwargs["negative_slope"] = data.draw(st.sampled_from(SLOPES_BAD), label="slope")
            errs.append(TypeError)
        else:
            kwargs["negative_slope"] = data.draw(st.sampled_from(SLOPES_OK), label="slope")
    rdt = None if errs else result_dtype(name, *[as_computed(name, a) for a in args])
    try:
        shape_out = np.broadcast_shapes(*[np.shape(a) for a in args])
    except ValueError:
        shape_out = shape
    form, out, out_error = data.draw(out_forms(rdt, shape_out, args), label="out")
    if rdt is not None and rdt.kind in "iu" and form == "int":
        out_error = None  # relu of an integer array into an int16 out: same_kind
    check_call(name, args, kwargs, form, out, out_error, errs)


@pytest.mark.parametrize("name", AXIS_FUNCS)
@given(data=st.data())
def test_fuzz_softmax_family(name, data):
    use_target(data)
    dtypes = ["float16", "float32", "float64", "int16", "uint8"] + SWAPPED_DTYPES[:3]
    if data.draw(st.integers(0, 9), label="p") == 0:
        dtypes = dtypes + INVALID_DTYPES
    shape = data.draw(shapes, label="shape")
    if name in SOFTMAX:
        args = [data.draw(arrays(dtypes, shape), label="x")]
    else:
        x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-30, 30)), label="logits")
        forward = "softmax" if name == "softmax_backward" else "log_softmax"
        y = np.asarray(call(forward, x)).astype(data.draw(st.sampled_from(dtypes), label="y dtype"))
        gshape = shape if data.draw(st.integers(0, 9), label="mismatch") else data.draw(shapes, label="grad shape")
        args = [data.draw(arrays(dtypes, gshape), label="grad"), data.draw(placed(y), label="y")]
    axis = data.draw(axes(len(shape)), label="axis")
    kwargs = {"axis": axis}
    errs = input_errors(name, args) + axis_errors(axis, len(shape))
    if name in SOFTMAX and data.draw(st.integers(0, 4), label="dtype=") == 0:
        dt = data.draw(st.sampled_from(["float32", "float64", "float16", "int32", "complex64", "bogus"]),
                       label="dtype=")
        kwargs["dtype"] = dt
        if dt in ("int32", "complex64", "bogus"):
            errs.append(TypeError)
    rdt = None if errs else result_dtype(name, *[as_computed(name, a) for a in args], dtype=kwargs.get("dtype"))
    form, out, out_error = data.draw(out_forms(rdt, shape, args), label="out")
    check_call(name, args, kwargs, form, out, out_error, errs)


JUNK = [None, "x", b"x", 1j, object(), {}, [[1.0], [1.0, 2.0]], np.array(["a"]), np.ones(2, "M8[s]"),
        np.ones(2, complex), (1.0, "a"), 2**80, float("nan"), True, np.float128(1) if hasattr(np, "float128") else 1.0]


@pytest.mark.parametrize("name", ALL)
@given(data=st.data())
def test_fuzz_junk_arguments(name, data):
    """Junk in any argument position or keyword: a TypeError/ValueError naming the function, or (when the
    junk happens to be a valid array-like, e.g. nan or a Python int) a result; never anything else."""
    n_args = 2 if name in TWO_ARGS else 1
    args = [np.linspace(-2, 2, 6).reshape(2, 3) for _ in range(n_args)]
    slots = list(range(n_args)) + ["out"] + (["axis"] if name in AXIS_FUNCS else []) + \
        (["negative_slope"] if name in SLOPE_FUNCS else []) + (["dtype"] if name in SOFTMAX else [])
    slot = data.draw(st.sampled_from(slots), label="slot")
    junk = data.draw(st.sampled_from(JUNK), label="junk")
    if slot == "axis" and isinstance(junk, np.ndarray) and axis_array_crashes():
        pytest.fail("an ndarray as axis crashes this build (see test_hostile.py::test_axis_whose_index_raises_"
                    "does_not_crash); not called, so that the run goes on")
    kwargs = {}
    if isinstance(slot, int):
        args[slot] = junk
    else:
        kwargs[slot] = junk
    try:
        r = call(name, *args, **kwargs)
    except (TypeError, ValueError) as e:
        assert f"fastact.{name}" in str(e), f"{slot}={junk!r}: the message does not name the function: {e}"
        arg = SECOND_ARG.get(name, "x") if slot == 1 else ("grad" if slot == 0 and n_args == 2 else slot)
        arg = "x" if slot == 0 and n_args == 1 else arg
        assert arg in str(e), f"{slot}={junk!r}: the message does not name the argument {arg!r}: {e}"
    else:
        assert isinstance(r, (np.ndarray, np.generic))
