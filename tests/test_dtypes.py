"""DESIGN.md §1 "Dtypes": float16 through float32, integers and bools to float64 (relu keeps integers,
rejects bool), unsupported dtypes rejected by name, ``dtype=`` on softmax, scalars and array-likes."""

import numpy as np
import pytest
from conftest import (ALL, SOFTMAX, TWO_ARGS, UNARY, assert_correct, assert_same, call, make_inputs,
                      result_dtype, values)

import fastact

INTS = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool")


@pytest.mark.parametrize("name", ALL)
def test_float16_is_float32_rounded_once(name, target):
    args = make_inputs(name, (5, 37), np.float16, seed=3)
    r = call(name, *args)
    assert r.dtype == np.float16
    with np.errstate(all="ignore"):
        via32 = np.asarray(call(name, *[a.astype(np.float32) for a in args])).astype(np.float16)
    assert_same(r, via32, "float16 vs float32 rounded once")
    assert_correct(name, r, *args)


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("name", ALL)
def test_integer_and_bool_inputs(name, dtype):
    if name in ("softmax_backward", "log_softmax_backward"):
        rng = np.random.default_rng(1)
        args = tuple(values((4, 9), dtype, rng) for _ in range(2))
    else:
        args = make_inputs(name, (4, 9), dtype, seed=1)
    if name == "relu" and dtype == "bool":
        with pytest.raises(TypeError, match="relu") as info:
            call(name, *args)
        assert "bool" in str(info.value)
        return
    r = call(name, *args)
    if name == "relu":
        assert r.dtype == np.dtype(dtype), "relu keeps integer dtypes"
        assert_same(r, np.where(args[0] < 0, args[0].dtype.type(0), args[0]), "relu of integers")
        return
    assert r.dtype == np.float64, f"{dtype} input must give float64, got {r.dtype}"
    assert_same(r, call(name, *[a.astype(np.float64) for a in args]), f"{dtype} input vs its float64 cast")


def test_relu_of_uint_and_extremes():
    for dt in (np.int8, np.int64, np.uint8, np.uint64):
        info = np.iinfo(dt)
        x = np.array([info.min, -1 if info.min < 0 else 0, 0, 1, info.max], dtype=dt)
        assert_same(fastact.relu(x), np.maximum(x, dt(0)), np.dtype(dt).name)


def _bad_arrays():
    yield "complex64", np.ones(3, np.complex64)
    yield "complex128", np.ones(3, np.complex128)
    yield "object", np.array([1.0, 2.0, 3.0], dtype=object)
    yield "str", np.array(["a", "b", "c"])
    yield "bytes", np.array([b"a", b"b", b"c"])
    yield "void", np.zeros(3, dtype="V4")
    yield "structured", np.zeros(3, dtype=[("a", "f4"), ("b", "f4")])
    yield "datetime64", np.array(["2024-01-01"] * 3, dtype="datetime64[D]")


BAD = dict(_bad_arrays())


def _names_of(dt):
    return {str(dt), dt.name, dt.str, repr(dt)}


@pytest.mark.parametrize("bad", BAD.keys())
@pytest.mark.parametrize("name", ALL)
def test_unsupported_dtypes_raise_naming_function_and_dtype(name, bad):
    x = BAD[bad]
    good = np.ones(3)
    positions = (0, 1) if name in TWO_ARGS else (0,)
    for pos in positions:
        args = [good] * len(positions)
        args[pos] = x
        with pytest.raises(TypeError) as info:
            call(name, *args)
        msg = str(info.value)
        assert name in msg, f"the message does not name {name}: {msg!r}"
        assert any(n in msg for n in _names_of(x.dtype)), f"the message does not name {x.dtype}: {msg!r}"


# -- dtype= on softmax / log_softmax --------------------------------------------------------------
@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("src, dst", [("float64", "float32"), ("float32", "float64"), ("int32", "float32"),
                                      ("uint8", "float64"), ("float32", "float16"), ("float64", "float16")])
def test_softmax_dtype_keyword_casts_first(name, src, dst, target):
    rng = np.random.default_rng(5)
    x = values((6, 21), src, rng, finite=True)
    r = call(name, x, dtype=dst)
    assert r.dtype == np.dtype(dst)
    with np.errstate(all="ignore"):
        cast = x.astype(dst)
    assert_same(r, call(name, cast), f"{name}(x, dtype={dst}) vs {name}(x.astype({dst}))")
    assert_correct(name, r, x, dtype=dst)


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_of_uint8_does_not_wrap_around(name):
    x = np.array([[0, 255], [255, 0], [10, 200]], dtype=np.uint8)
    r = call(name, x)
    assert r.dtype == np.float64
    assert_correct(name, r, x)
    if name == "softmax":
        assert r[0, 1] == 1.0 and 0 < r[0, 0] < 1e-100
    else:
        assert r[0, 0] == pytest.approx(-255.0, abs=1e-12)
    r32 = call(name, x, dtype=np.float32)
    assert_correct(name, r32, x, dtype=np.float32)
    signed = np.array([-128, 127, 0], dtype=np.int8)
    assert_correct(name, call(name, signed), signed)


# -- scalars and array-likes ----------------------------------------------------------------------
def _scalar_args(name, value):
    return (value,) if name in UNARY + SOFTMAX else (value, value)


@pytest.mark.parametrize("name", ALL)
def test_python_and_numpy_scalars_give_numpy_scalars(name):
    cases = [(0.75, np.float64), (-2.5, np.float64), (np.float32(0.75), np.float32),
             (np.array(-1.5, np.float32), np.float32), (np.float16(0.5), np.float16),
             (3, np.int64 if name == "relu" else np.float64),
             (np.array(-3, np.int8), np.int8 if name == "relu" else np.float64)]
    for value, dt in cases:
        args = _scalar_args(name, value)
        r = call(name, *args)
        assert isinstance(r, np.generic) and not isinstance(r, np.ndarray), f"{name}({value!r}) gave {type(r)}"
        assert r.dtype == np.dtype(dt), f"{name}({value!r}).dtype is {r.dtype}, expected {np.dtype(dt)}"
        assert_correct(name, r, *[np.asarray(a) for a in args])
        out = np.empty((), dtype=r.dtype)
        r2 = call(name, *args, out=out)
        assert r2 is out, "with out= given, out itself is returned, even for 0-d"
        assert_same(out, r)
    if name == "relu":
        with pytest.raises(TypeError):
            fastact.relu(True)
    else:
        r = call(name, *_scalar_args(name, True))
        assert isinstance(r, np.generic) and r.dtype == np.float64


@pytest.mark.parametrize("name", ALL)
def test_array_likes_go_through_asarray(name):
    rng = np.random.default_rng(2)
    args = make_inputs(name, (3, 5), np.float64, seed=4)
    for convert in (lambda a: a.tolist(), lambda a: tuple(map(tuple, a.tolist()))):
        r = call(name, *[convert(a) for a in args])
        assert isinstance(r, np.ndarray) and r.dtype == np.float64
        assert_same(r, call(name, *args), "array-like vs ndarray")
    ints = [[1, -2, 3], [4, 5, -6]]
    r = call(name, *([ints] * len(args)))
    assert r.dtype == (np.dtype(np.int64) if name == "relu" else np.float64)
    del rng


def test_result_dtype_rules_match_reference():
    """The dtype rules our reference assumes are the library's (a cross-check of both)."""
    for name in ALL:
        for dt in ("float16", "float32", "float64", "int16", "uint32"):
            args = make_inputs(name, (4,), dt) if name not in ("softmax_backward", "log_softmax_backward") \
                else (np.ones(4, dt), np.ones(4, dt))
            assert call(name, *args).dtype == result_dtype(name, *args), (name, dt)
