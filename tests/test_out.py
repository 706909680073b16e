"""DESIGN.md §1 "out=" and "Layouts": errors, nothing written outside ``out``, partial overlap, grad
broadcasting in the elementwise backward ops, and the result's memory order."""

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, LAYOUTS, assert_correct, assert_same, call, make_inputs,
                      result_dtype)

import fastact

SHAPE = (5, 37)


@pytest.mark.parametrize("name", ALL)
def test_out_errors(name):
    args = make_inputs(name, SHAPE, np.float32, seed=1)
    rdt = result_dtype(name, *args)
    for bad_shape in [(5, 36), (37, 5), (1, 5, 37), (5, 1), (5 * 37,)]:
        with pytest.raises(ValueError):
            call(name, *args, out=np.empty(bad_shape, rdt))
    ro = np.empty(SHAPE, rdt)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        call(name, *args, out=ro)
    with pytest.raises(TypeError):
        call(name, *args, out=np.empty(SHAPE, rdt).tolist())
    with pytest.raises(TypeError):
        call(name, *args, out=np.empty(SHAPE, rdt).tobytes())
    for unsafe in (np.int32, np.int64, np.uint8, np.bool_):  # float into int/bool: not same_kind
        with pytest.raises(TypeError):
            call(name, *args, out=np.empty(SHAPE, unsafe))


def test_relu_integer_out_casting():
    x = np.arange(-5, 6, dtype=np.int32)
    out = np.empty(x.shape, np.float64)  # int -> float is safe
    assert fastact.relu(x, out=out) is out
    assert_same(out, np.maximum(x, 0).astype(np.float64))
    out8 = np.empty(x.shape, np.int8)  # int32 -> int8 is same_kind
    assert fastact.relu(x, out=out8) is out8
    assert_same(out8, np.maximum(x, 0).astype(np.int8))
    with pytest.raises(TypeError):
        fastact.relu(x, out=np.empty(x.shape, np.bool_))  # int -> bool is unsafe
    with pytest.raises(TypeError):
        fastact.relu(np.ones(3, np.float32), out=np.empty(3, np.int32))


# Views of shape SHAPE into a larger buffer: interior, every other element, reversed, transposed.
VIEWS = [
    ("interior", (9, 80), lambda b: b[2:7, 3:40]),
    ("step2", (9, 80), lambda b: b[0:9:2, 0:74:2]),
    ("reversed", (9, 80), lambda b: b[6:1:-1, 39:2:-1]),
    ("transposed", (80, 9), lambda b: b[3:40, 2:7].T),
]


@pytest.mark.parametrize("view", [v[0] for v in VIEWS])
@pytest.mark.parametrize("name", ALL)
def test_nothing_written_outside_out(name, view, target):
    _, big_shape, make_view = next(v for v in VIEWS if v[0] == view)
    args = make_inputs(name, SHAPE, np.float32, seed=2)
    plain = call(name, *args)
    sentinel = np.float32(12345.0)
    big = np.full(big_shape, sentinel, np.float32)
    out = make_view(big)
    assert out.shape == SHAPE and np.shares_memory(out, big)
    r = call(name, *args, out=out)
    assert r is out
    assert_same(out, plain, f"out as a {view} view")
    marker = np.zeros(big_shape, bool)
    make_view(marker)[...] = True
    outside = big[~marker]
    assert np.all(outside == sentinel), f"{np.count_nonzero(outside != sentinel)} element(s) written outside out"


@pytest.mark.parametrize("shift", [1, -1, 37, -37])
@pytest.mark.parametrize("name", ALL)
def test_partial_overlap_is_as_if_copied_first(name, shift, target):
    """out shares memory with the input (by one element, or by one row of softmax), either direction."""
    args = make_inputs(name, SHAPE, np.float64, seed=3)
    plain = call(name, *args)
    n = int(np.prod(SHAPE))
    for k in range(len(args)):
        buf = np.empty(n + abs(shift))
        x_at, out_at = (shift, 0) if shift > 0 else (0, -shift)
        x = buf[x_at:x_at + n].reshape(SHAPE)
        x[...] = args[k]
        out = buf[out_at:out_at + n].reshape(SHAPE)
        call_args = list(args)
        call_args[k] = x
        r = call(name, *call_args, out=out)
        assert r is out
        assert_same(out, plain, f"out overlapping argument {k} shifted by {shift}")


@pytest.mark.parametrize("name", ALL)
def test_in_place_on_every_layout(name, target):
    for layout in ("contiguous", "fortran", "transposed", "negstride", "step2"):
        base = make_inputs(name, (4, 6, 11), np.float32, seed=4)
        args = [LAYOUTS[layout](a) for a in base]
        plain = call(name, *base)
        r = call(name, *args, out=args[0])
        assert r is args[0]
        assert_same(r, plain, f"in place, {layout}")


# -- result memory order -------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "transposed", "negstride", "step2"])
@pytest.mark.parametrize("name", ALL)
def test_result_keeps_input_memory_order(name, layout):
    base = make_inputs(name, (4, 6, 11), np.float64, seed=5)
    args = [LAYOUTS[layout](a) for a in base]
    r = call(name, *args)
    like = np.empty_like(args[-1], dtype=r.dtype)  # NumPy's order='K'
    assert r.strides == like.strides, f"{layout} input: result strides {r.strides}, order K gives {like.strides}"
    if layout == "fortran":
        assert r.flags.f_contiguous and not r.flags.c_contiguous
    assert_correct(name, r, *base)


# -- grad broadcasting in the elementwise backward ops -------------------------------------------
GRAD_SHAPES = {"col": (3, 1), "row": (4,), "0d": (), "full_1": (1, 1), "3d": (2, 1, 4)}


@pytest.mark.parametrize("gshape", GRAD_SHAPES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_grad_broadcasts_against_y(name, dtype, gshape, target):
    rng = np.random.default_rng(6)
    yshape = (3, 4)
    g = (rng.standard_normal(GRAD_SHAPES[gshape]) * 3).astype(dtype)
    _, y = make_inputs(name, yshape, dtype, seed=6)
    shape = np.broadcast_shapes(g.shape, y.shape)
    r = call(name, g, y)
    assert r.shape == shape and r.dtype == np.dtype(dtype)
    assert_correct(name, r, g, y)
    out = np.empty(shape, dtype)
    assert call(name, g, y, out=out) is out
    assert_same(out, r)


@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_python_scalar_grad(name):
    _, y = make_inputs(name, (3, 4), np.float32, seed=7)
    r = call(name, 2.0, y)
    assert isinstance(r, np.ndarray) and r.shape == (3, 4)
    assert_correct(name, r, np.asarray(2.0, r.dtype), y.astype(r.dtype))


@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_grad_not_broadcastable_raises(name):
    with pytest.raises(ValueError):
        call(name, np.ones((2,)), np.ones((3, 4)))
    with pytest.raises(ValueError):
        call(name, np.ones((3, 4)), np.ones((3, 4)), out=np.empty((3, 1)))


@pytest.mark.parametrize("name", ALL)
def test_float16_result_into_a_wider_out_is_the_float16_result_cast(name):
    """The result dtype is float16 (computed in float32, rounded once); out= then casts that result,
    as a NumPy ufunc does. Writing the float32 intermediate instead would make the value depend on
    out's dtype."""
    args = make_inputs(name, (3, 17), np.float16, seed=9)
    plain = call(name, *args)
    for odt in (np.float32, np.float64):
        out = np.empty(plain.shape, odt)
        assert call(name, *args, out=out) is out
        assert_same(out, plain.astype(odt), f"float16 result into {np.dtype(odt).name} out")
