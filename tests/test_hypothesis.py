"""Property tests: random shapes, strides (steps, negative steps, transposes, read-only), dtypes, values
including specials, axes and out= forms; the result always matches the reference or the formula."""

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, SOFTMAX, SOFTMAX_BACKWARD, UNARY, assert_correct, assert_same,
                      call, result_dtype)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
OTHER_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.bool_]


def elements(dtype, specials=True):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        if specials:
            return st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True, allow_subnormal=True)
        return st.floats(-1e4, 1e4, width=8 * dtype.itemsize)
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max))


@st.composite
def strided(draw, array):
    """``array``'s values in a random memory layout: each axis stepped by 1, 2 or 3, either direction,
    the axes permuted in memory, optionally read-only."""
    a = array
    if a.ndim:
        steps = draw(st.lists(st.sampled_from([1, 2, 3, -1, -2]), min_size=a.ndim, max_size=a.ndim))
        perm = draw(st.permutations(range(a.ndim)))
        stored = np.transpose(a, perm)
        buf = np.zeros([max(1, n * abs(s)) for n, s in zip(stored.shape, [steps[p] for p in perm])], dtype=a.dtype)
        view = buf[tuple(slice(None, None, steps[p]) for p in perm)]
        view = view[tuple(slice(0, n) for n in stored.shape)]
        view[...] = stored
        a = np.transpose(view, np.argsort(perm))
    else:
        a = a.copy()
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


@st.composite
def arrays(draw, dtype, shape, specials=True):
    a = draw(hnp.arrays(dtype, shape, elements=elements(dtype, specials)))
    return draw(strided(a))


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)


def _axis(draw, ndim):
    if ndim == 0:
        return draw(st.sampled_from([-1, 0, None]))
    choice = draw(st.sampled_from(["int", "none", "tuple"]))
    if choice == "int":
        return draw(st.integers(-ndim, ndim - 1))
    if choice == "none":
        return None
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(ax - ndim if draw(st.booleans()) else ax for ax in axes)


def _out_form(draw, args, rdt, shape):
    """None, a fresh array (maybe of another float dtype), or in place into the first argument."""
    forms = ["none", "fresh", "fresh_other"]
    first = args[0]
    if first.flags.writeable and first.dtype == rdt and first.shape == shape:
        forms.append("inplace")
    return draw(st.sampled_from(forms))


@pytest.mark.parametrize("name", UNARY + ELEMENTWISE_BACKWARD)
@given(data=st.data())
def test_elementwise_match_formula_or_reference(name, target, data):
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES + OTHER_DTYPES), label="dtype")
    shape = data.draw(shapes, label="shape")
    x = data.draw(arrays(dtype, shape), label="x")
    args = [x]
    kwargs = {}
    if name in ELEMENTWISE_BACKWARD:
        gshape = data.draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=len(shape), min_side=0), label="grad shape")
        args = [data.draw(arrays(dtype, gshape), label="grad"), x]
    if name.startswith("leaky_relu"):
        kwargs["negative_slope"] = data.draw(st.sampled_from([0.01, 0.0, -0.3, 1.5, 1e-30, 7.0]), label="slope")
    if name == "relu" and np.dtype(dtype) == np.bool_:
        with pytest.raises(TypeError):
            call(name, *args)
        return
    _check(name, args, kwargs, data)


@pytest.mark.parametrize("name", SOFTMAX)
@given(data=st.data())
def test_softmax_matches_reference(name, target, data):
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES + [np.int16, np.uint8]), label="dtype")
    shape = data.draw(shapes, label="shape")
    x = data.draw(arrays(dtype, shape, specials=data.draw(st.booleans(), label="specials")), label="x")
    axis = _axis(data.draw, x.ndim)
    _check(name, [x], {"axis": axis}, data)


@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
@given(data=st.data())
def test_softmax_backward_matches_reference(name, target, data):
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES), label="dtype")
    shape = data.draw(shapes, label="shape")
    axis = _axis(data.draw, len(shape))
    x = data.draw(hnp.arrays(dtype, shape, elements=elements(dtype, specials=False)), label="x")
    forward = "softmax" if name == "softmax_backward" else "log_softmax"
    y = np.asarray(call(forward, x, axis=axis))
    y = data.draw(strided(np.asarray(y)), label="y")
    g = data.draw(arrays(dtype, shape, specials=False), label="grad")
    _check(name, [g, y], {"axis": axis}, data)


def _check(name, args, kwargs, data):
    before = [a.copy() for a in args]
    rdt = result_dtype(name, *args)
    shape = np.broadcast_shapes(*[a.shape for a in args])
    form = _out_form(data.draw, args, rdt, shape)
    if form == "none":
        r = call(name, *args, **kwargs)
        if shape == ():
            assert isinstance(r, np.generic)
        assert_correct(name, r, *before, **kwargs)
    else:
        # Same arrays (same layout) as the out= call below: bits may differ between layouts
        # (rows vs column kernels sum in different orders), never between out= forms.
        plain = call(name, *args, **kwargs)
        assert_correct(name, plain, *before, **kwargs)
        if form == "inplace":
            out = args[0]
        else:
            odt = rdt if form == "fresh" else (np.float32 if rdt == np.float64 else np.float64)
            out = np.empty(shape, odt)
        r = call(name, *args, out=out, **kwargs)
        assert r is out
        with np.errstate(all="ignore"):
            assert_same(out, np.asarray(plain).astype(out.dtype), f"out= ({form})")
    if form != "inplace":
        for a, b in zip(args, before):
            assert_same(a, b, "input modified")


def test_profiles_registered():
    from hypothesis import settings

    assert settings.get_profile("ci").deadline is None
    assert settings.get_profile("ci").max_examples > settings.get_profile("dev").max_examples
