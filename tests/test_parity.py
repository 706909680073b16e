"""Every function against its reference on every SIMD target: over shapes (0-d, empty, every tail
length), memory layouts and forms of ``out=``. The exact functions must be bitwise equal to DESIGN.md's
formulas; the others within DESIGN.md §2's bounds (see fastact/_accuracy.py)."""

import numpy as np
import pytest
from conftest import (ALL, FLOATS, LAYOUTS, NATIVE, TWO_ARGS, assert_correct, assert_same, call,
                      make_inputs, result_dtype)

SHAPES = {
    "0d": (),
    "empty": (0,),
    "0x3": (0, 3),
    "3x0": (3, 0),
    "len1": (1,),
    "len3": (3,),
    "len7": (7,),
    "len8": (8,),
    "len9": (9,),
    "len16": (16,),
    "len17": (17,),
    "len31": (31,),
    "len33": (33,),
    "3d": (3, 4, 5),
    "3d_tail": (2, 3, 19),
}


def check_kind(result, shape, dtype):
    """0-d in gives a NumPy scalar out; anything else an ndarray of the input's shape."""
    if shape == ():
        assert isinstance(result, np.generic) and not isinstance(result, np.ndarray), type(result)
    else:
        assert isinstance(result, np.ndarray), type(result)
    assert np.shape(result) == shape
    assert np.asarray(result).dtype == dtype


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ALL)
def test_shapes(name, dtype, shape, target):
    args = make_inputs(name, shape, dtype, seed=len(shape) * 100 + sum(shape))
    before = [a.copy() for a in args]
    r = call(name, *args)
    check_kind(r, shape, result_dtype(name, *args))
    assert_correct(name, r, *args)
    for a, b in zip(args, before):
        assert_same(a, b, "input modified")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ALL)
def test_every_tail_length(name, dtype, target):
    """Lengths 0..33 cover every tail 0..2*width-1 of every vector width up to 16 lanes."""
    for n in range(34):
        args = make_inputs(name, (n,), dtype, seed=n)
        r = call(name, *args)
        assert r.shape == (n,)
        assert_correct(name, r, *args)


# -- layouts x out= forms -------------------------------------------------------------------------
OUT_FORMS = ("none", "fresh", "inplace", "inplace_y", "cast", "overlap_ahead", "overlap_behind")


def _cases():
    for name in ALL:
        for dtype in NATIVE:
            for layout in LAYOUTS:
                for form in OUT_FORMS:
                    if form == "inplace_y" and name not in TWO_ARGS:
                        continue
                    if form.startswith("inplace") and layout == "readonly":
                        continue  # a read-only out is an error: see test_out.py
                    if form.startswith("overlap") and layout != "contiguous":
                        continue
                    yield pytest.param(name, dtype, layout, form, id=f"{name}-{dtype}-{layout}-out_{form}")


LAYOUT_SHAPE = (3, 4, 19)


@pytest.mark.parametrize("name, dtype, layout, form", list(_cases()))
def test_layouts_and_out(name, dtype, layout, form, target):
    base = make_inputs(name, LAYOUT_SHAPE, dtype, seed=7)
    args = [LAYOUTS[layout](a) for a in base]
    rdt = result_dtype(name, *args)
    # out=None: the reference check, the result's memory order, inputs untouched
    plain = call(name, *args)
    assert isinstance(plain, np.ndarray) and plain.dtype == rdt and plain.shape == LAYOUT_SHAPE
    assert_correct(name, plain, *base)
    for a, b in zip(args, base):
        assert_same(a, b, "input modified")
    if form == "none":
        like = np.empty_like(args[-1], dtype=rdt)  # NumPy's order='K'
        assert plain.strides == like.strides, f"result strides {plain.strides}, order K gives {like.strides}"
        return
    # every out= form gives the bits of out=None, and returns out itself
    if form == "fresh":
        out = np.full_like(args[-1], np.nan, dtype=rdt)
        r = call(name, *args, out=out)
        assert r is out
        assert_same(out, plain, "out=fresh")
    elif form in ("inplace", "inplace_y"):
        k = 0 if form == "inplace" else 1
        out = args[k]
        r = call(name, *args, out=out)
        assert r is out
        assert_same(out, plain, f"out is argument {k}")
    elif form == "cast":
        odt = np.float64 if rdt != np.float64 else np.float32
        out = np.zeros(LAYOUT_SHAPE, odt)
        r = call(name, *args, out=out)
        assert r is out
        with np.errstate(all="ignore"):
            assert_same(out, plain.astype(odt), f"out of dtype {np.dtype(odt).name}")
    else:
        # out and the first argument share memory, one element apart
        n = int(np.prod(LAYOUT_SHAPE))
        buf = np.empty(n + 1, dtype=args[0].dtype)
        x_at, out_at = (1, 0) if form == "overlap_ahead" else (0, 1)
        x = buf[x_at:x_at + n].reshape(LAYOUT_SHAPE)
        x[...] = args[0]
        out = buf[out_at:out_at + n].reshape(LAYOUT_SHAPE)
        r = call(name, x, *args[1:], out=out)
        assert r is out
        assert_same(out, plain, f"partly overlapping out ({form})")
