"""Parity with PyTorch (CPU), where it is installed: relu, leaky_relu and the elementwise backward ops
bitwise (DESIGN.md: PyTorch's definitions, same operation order); sigmoid, tanh, softmax, log_softmax
and the softmax backward ops within DESIGN.md §2's bounds of torch's float64 results."""

import numpy as np
import pytest
from conftest import ELEMENTWISE_BACKWARD, assert_same, call, make_inputs, specials

from fastact import _accuracy

torch = pytest.importorskip("torch", reason="PyTorch is not installed; .ci/run installs torch==2.13.0 for these")
F = torch.nn.functional
aten = torch.ops.aten

SLOPES = (0.01, 0.2, -0.5, 0.0, 2.5)
SHAPE = (7, 149)  # long rows (torch's vector loop) with tails


@pytest.fixture(scope="module", autouse=True)
def torch_one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _with_specials(dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(SHAPE) * 4).astype(dtype).ravel()
    sp = specials(dtype)
    x[: 3 * sp.size] = np.tile(sp, 3)
    return rng.permutation(x).reshape(SHAPE)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_bitwise(dtype, target):
    x = _with_specials(dtype, 1)
    assert_same(call("relu", x), torch.relu(T(x)).numpy(), "relu vs torch.relu")


@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_bitwise(dtype, slope, target):
    x = _with_specials(dtype, 2)
    assert_same(call("leaky_relu", x, slope), F.leaky_relu(T(x), slope).numpy(), f"leaky_relu({slope}) vs torch")


def _torch_backward(name, g, y, slope):
    if name == "relu_backward":
        return aten.threshold_backward(T(g), T(y), 0)
    if name == "leaky_relu_backward":
        return aten.leaky_relu_backward(T(g), T(y), slope, False)
    if name == "sigmoid_backward":
        return aten.sigmoid_backward(T(g), T(y))
    return aten.tanh_backward(T(g), T(y))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ELEMENTWISE_BACKWARD)
def test_elementwise_backward_bitwise(name, dtype, target):
    g = _with_specials(dtype, 3)
    rng = np.random.default_rng(4)
    if name in ("sigmoid_backward", "tanh_backward"):  # y in the function's range, plus specials
        lo = 0.0 if name == "sigmoid_backward" else -1.0
        y = rng.uniform(lo, 1.0, SHAPE).astype(dtype)
        y.flat[:40] = _with_specials(dtype, 5).flat[:40]
    else:
        y = _with_specials(dtype, 5)
    slopes = SLOPES if name == "leaky_relu_backward" else (None,)
    for slope in slopes:
        args = (g, y) if slope is None else (g, y, slope)
        mine = call(name, *args)
        theirs = _torch_backward(name, g, y, slope).numpy()
        assert_same(mine, theirs, f"{name} vs torch (slope {slope})")


def _bound_check(name, mine, reference, *args, **kwargs):
    """Measure ``mine`` with _accuracy's metric for ``name`` but torch's float64 result as reference."""
    exp = _accuracy.expected(name, *args, **kwargs)
    exp = exp._replace(value=np.asarray(reference, dtype=np.float64))
    err = _accuracy.errors(mine, exp)
    bound = _accuracy.BOUNDS[name]
    assert err.max() <= bound, _accuracy.describe_worst(name, mine, args, err, exp) + f" (torch float64; bound {bound})"


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_tanh_within_bounds_of_torch_float64(name, target):
    x = np.concatenate([_accuracy.sweep(np.float32)[::7], _with_specials(np.float32, 6).ravel()])
    ref = getattr(torch, name)(T(x.astype(np.float64))).numpy()
    _bound_check(name, call(name, x), ref, x)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("length", [1, 10, 1000])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_within_bounds_of_torch_float64(name, length, axis, target):
    rng = np.random.default_rng(length)
    shape = (64, length) if axis == -1 else (length, 64)
    x = (rng.standard_normal(shape) * 8 + rng.uniform(-50, 50)).astype(np.float32)
    shifted = (x - x.max(axis=axis, keepdims=True)).astype(np.float64)  # DESIGN.md §2: from float32 x - max
    ref = getattr(torch, name)(T(shifted), dim=axis).numpy()
    _bound_check(name, call(name, x, axis=axis), ref, x, axis=axis)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
def test_softmax_backward_within_bounds_of_torch_float64(name, axis, target):
    g, y = make_inputs(name, (40, 300), np.float32, seed=8, axis=axis)
    op = aten._softmax_backward_data if name == "softmax_backward" else aten._log_softmax_backward_data
    ref = op(T(g.astype(np.float64)), T(y.astype(np.float64)), axis % 2, torch.float64).numpy()
    _bound_check(name, call(name, g, y, axis=axis), ref, g, y, axis=axis)
