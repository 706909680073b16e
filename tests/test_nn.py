"""fastact.nn: the layers' forward and backward passes against a float64 NumPy reference, in place and
not, their saved state, their errors and their reprs."""

import doctest
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastact
from fastact import nn

DTYPES = [np.float32, np.float64]


# -- float64 references --------------------------------------------------------------------------
def _shifted(x, axis):
    # x - max in x's own dtype, then float64: DESIGN.md section 2 measures softmax from the rounded
    # float32 difference (rounding the inputs is not the kernel's error).
    return (x - x.max(axis=axis, keepdims=True)).astype(np.float64)


def ref_softmax(x, axis):
    e = np.exp(_shifted(x, axis))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis):
    shifted = _shifted(x, axis)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def ref_sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def ref_tanh(x):
    return np.tanh(np.asarray(x, np.float64))


class Case:
    """A layer, its float64 forward reference, and its float64 input gradient reference ``(x, g) -> dx``."""

    def __init__(self, name, make, forward, backward, saved_kernel, floor=None):
        self.name, self.make, self.forward, self.backward = name, make, forward, backward
        self.saved_kernel = saved_kernel  # (layer, grad) -> the backward kernel applied to the saved array
        self.floor = floor  # ULP floor of the forward check: None (relative) or 1.0 (log_softmax)


def _saved(layer):
    return layer._saved


def softmax_grad(axis):
    def grad(x, g):
        y = ref_softmax(x, axis)
        return y * (g - (g * y).sum(axis, keepdims=True))

    return grad


def leaky(slope):
    # In the array's own dtype, as the kernel and torch compute it: x * slope with the slope rounded first.
    return lambda x: np.where(x > 0, x, x * x.dtype.type(slope))


def leaky_grad(slope):
    return lambda x, g: np.where(x > 0, g, g * g.dtype.type(slope))


CASES = [
    Case("ReLU", lambda: nn.ReLU(), lambda x: np.where(x < 0, 0.0, x), lambda x, g: np.where(x > 0, g, 0.0),
         lambda m, g: fastact.relu_backward(g, _saved(m))),
    Case("ReLU-inplace", lambda: nn.ReLU(inplace=True), lambda x: np.where(x < 0, 0.0, x),
         lambda x, g: np.where(x > 0, g, 0.0), lambda m, g: fastact.relu_backward(g, _saved(m))),
    Case("LeakyReLU", lambda: nn.LeakyReLU(), leaky(0.01), leaky_grad(0.01),
         lambda m, g: fastact.leaky_relu_backward(g, _saved(m)[0], 0.01)),
    Case("LeakyReLU(0.2)-inplace", lambda: nn.LeakyReLU(0.2, inplace=True), leaky(0.2), leaky_grad(0.2),
         lambda m, g: fastact.leaky_relu_backward(g, _saved(m)[0], 0.2)),
    Case("LeakyReLU(-0.5)", lambda: nn.LeakyReLU(-0.5), leaky(-0.5), leaky_grad(-0.5),
         lambda m, g: fastact.leaky_relu_backward(g, _saved(m)[0], -0.5)),
    Case("Sigmoid", lambda: nn.Sigmoid(), ref_sigmoid, lambda x, g: g * ref_sigmoid(x) * (1 - ref_sigmoid(x)),
         lambda m, g: fastact.sigmoid_backward(g, _saved(m))),
    Case("Tanh", lambda: nn.Tanh(), ref_tanh, lambda x, g: g * (1 - np.tanh(x) ** 2),
         lambda m, g: fastact.tanh_backward(g, _saved(m))),
    Case("Softmax(dim=1)", lambda: nn.Softmax(dim=1), lambda x: ref_softmax(x, 1),
         softmax_grad(1),
         lambda m, g: fastact.softmax_backward(g, _saved(m)[0], 1)),
    Case("Softmax(dim=0)", lambda: nn.Softmax(dim=0), lambda x: ref_softmax(x, 0),
         softmax_grad(0),
         lambda m, g: fastact.softmax_backward(g, _saved(m)[0], 0)),
    Case("LogSoftmax(dim=-1)", lambda: nn.LogSoftmax(dim=-1), lambda x: ref_log_softmax(x, -1),
         lambda x, g: g - ref_softmax(x, -1) * g.sum(-1, keepdims=True),
         lambda m, g: fastact.log_softmax_backward(g, _saved(m)[0], -1), floor=1.0),
    Case("LogSoftmax(dim=0)", lambda: nn.LogSoftmax(dim=0), lambda x: ref_log_softmax(x, 0),
         lambda x, g: g - ref_softmax(x, 0) * g.sum(0, keepdims=True),
         lambda m, g: fastact.log_softmax_backward(g, _saved(m)[0], 0), floor=1.0),
]
CASE_IDS = [c.name for c in CASES]
EXACT = {"ReLU", "ReLU-inplace", "LeakyReLU", "LeakyReLU(0.2)-inplace", "LeakyReLU(-0.5)"}


def is_inplace(case):
    return case.name.endswith("-inplace")


def data(dtype, shape=(6, 37), seed=0, low=-6.0, high=6.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, g


def assert_ulp(actual, expected64, dtype, max_ulp, floor=None):
    """|actual - expected| <= max_ulp ULPs of the expected value (of max(|expected|, floor) if given)."""
    assert actual.dtype == dtype
    scale = np.abs(expected64) if floor is None else np.maximum(np.abs(expected64), floor)
    ulp = np.spacing(scale.astype(dtype)).astype(np.float64)
    err = np.abs(actual.astype(np.float64) - expected64)
    worst = np.max(err / ulp)
    assert worst <= max_ulp, f"{worst:.2f} ULP > {max_ulp}"


# -- forward ------------------------------------------------------------------------------------
# `target` (tests/conftest.py) reruns a test on every SIMD kernel set this CPU supports.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_reference(case, dtype, target):
    x, _ = data(dtype)
    x_before = x.copy()
    y = case.make()(x)
    assert y.shape == x.shape and y.dtype == dtype
    if case.name in EXACT:
        np.testing.assert_array_equal(y, case.forward(x_before))  # exact, in the array's dtype
    else:
        # float32: DESIGN.md section 2's bounds; float64: a few ULPs (the float64 reference has its own).
        bound = (4 if case.name.startswith("Softmax") else 2) if dtype == np.float32 else 8
        assert_ulp(y, case.forward(x_before), dtype, bound, case.floor)
    if is_inplace(case):
        assert y is x, "an in-place layer returns its input"
    else:
        np.testing.assert_array_equal(x, x_before)  # the input is left alone


# -- backward -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_reference(case, dtype, target):
    x, g = data(dtype, seed=1)
    x_before, x64 = x.copy(), x.astype(np.float64)
    layer = case.make()
    layer(x)
    dx = layer.backward(g)
    assert dx.shape == x.shape and dx.dtype == dtype
    if case.name in EXACT:
        np.testing.assert_array_equal(dx, case.backward(x_before, g))  # exact, in the array's dtype
    else:
        expected = case.backward(x64, g.astype(np.float64))
        # The forward output carries a few ULPs into the derivative formula: bound that absolutely.
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(dx, expected, rtol=16 * eps, atol=16 * eps * np.abs(g).max())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_is_the_kernel_on_the_saved_array(case, dtype):
    x, g = data(dtype, seed=2)
    layer = case.make()
    layer(x)
    np.testing.assert_array_equal(layer.backward(g), case.saved_kernel(layer, g))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_finite_differences(case):
    # Central differences of sum(w * layer(x)) in float64, away from the kinks of the ReLUs.
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 2.0, (3, 5)) * rng.choice([-1.0, 1.0], (3, 5))
    w = rng.standard_normal((3, 5))
    layer = case.make()
    layer(x.copy())
    analytic = layer.backward(w)
    h = 1e-6
    numeric = np.empty_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += h
        minus[index] -= h
        numeric[index] = (np.sum(w * case.make()(plus)) - np.sum(w * case.make()(minus))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_backward_out_and_repeat():
    x, g = data(np.float64, seed=4)
    layer = nn.Tanh()
    layer(x)
    first = layer.backward(g)
    assert np.array_equal(layer.backward(g), first), "backward can be called again after one forward"
    buffer = g.copy()
    assert layer.backward(buffer, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, first)
    layer(2 * x)  # a new forward pass replaces what was saved
    assert not np.array_equal(layer.backward(g), first)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_non_contiguous_input(case, dtype):
    base, gbase = data(dtype, shape=(12, 37), seed=5)
    x = base[::2].T  # strided and transposed: (37, 6)
    g = gbase[1::2].T
    contiguous = case.make()
    y_ref = contiguous(np.ascontiguousarray(x))
    dx_ref = contiguous.backward(np.ascontiguousarray(g))
    layer = case.make()
    y = layer(x)
    if case.name in EXACT or case.name in ("Sigmoid", "Tanh"):  # elementwise: the same bits
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(layer.backward(g), dx_ref)
    else:  # a reduction may sum in another order along a strided axis
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(y, y_ref, rtol=4 * eps, atol=4 * eps)
        np.testing.assert_allclose(layer.backward(g), dx_ref, rtol=16 * eps, atol=16 * eps * np.abs(g).max())
    if is_inplace(case):
        assert y is x
        np.testing.assert_array_equal(base[::2].T, y_ref)  # written through the view


def test_special_values():
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, np.inf, np.nan])
    y = nn.ReLU()(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, -0.0, 0.0, 1.0, np.inf, np.nan])
    assert np.signbit(y[2]), "relu(-0.0) is -0.0"
    np.testing.assert_array_equal(nn.Sigmoid()(x), [0.0, ref_sigmoid(-1.0), 0.5, 0.5, ref_sigmoid(1.0), 1.0, np.nan])
    lrelu = nn.LeakyReLU(0.5)
    lrelu(x)
    np.testing.assert_array_equal(lrelu.backward(np.ones_like(x)), [0.5, 0.5, 0.5, 0.5, 1, 1, 0.5])


def test_relu_keeps_integer_dtype():
    x = np.array([-3, 0, 5], dtype=np.int32)
    layer = nn.ReLU()
    y = layer(x)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [0, 0, 5])
    np.testing.assert_array_equal(layer.backward(np.array([1.0, 1.0, 1.0])), [0.0, 0.0, 1.0])
    z = x.copy()
    assert nn.ReLU(inplace=True)(z) is z and z.tolist() == [0, 0, 5]


def test_array_likes_and_scalars():
    layer = nn.Sigmoid()
    assert layer([0.0, 0.0]).tolist() == [0.5, 0.5]
    assert float(layer(0.0)) == 0.5
    assert float(layer.backward(4.0)) == 1.0


# -- in place -----------------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, 3.0])
def test_leaky_relu_inplace_gradient_equals_out_of_place(slope):
    x = np.array([-np.inf, -2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0, np.inf, np.nan])
    g = np.arange(1.0, 10.0)
    ref = nn.LeakyReLU(slope)
    y_ref = ref(x)
    inplace = nn.LeakyReLU(slope, inplace=True)
    z = x.copy()
    assert inplace(z) is z
    np.testing.assert_array_equal(z, y_ref)
    np.testing.assert_array_equal(inplace.backward(g), ref.backward(g))


@pytest.mark.parametrize("slope", [-0.1, -2.0, float("nan")])
def test_leaky_relu_inplace_negative_slope_forward_works_backward_raises(slope):
    x = np.array([-2.0, 3.0])
    layer = nn.LeakyReLU(slope, inplace=True)
    y = layer(x)
    assert y is x and x[1] == 3.0
    with pytest.raises(RuntimeError, match="negative slope.*inplace=False"):
        layer.backward(np.ones(2))


def test_leaky_relu_slope_is_the_forward_passes():
    layer = nn.LeakyReLU(0.5)
    layer(np.array([-1.0]))
    layer.negative_slope = 0.25  # changed after the forward pass: the gradient is still the pass's
    assert layer.backward(np.array([1.0]))[0] == 0.5


@pytest.mark.parametrize("make", [lambda: nn.ReLU(inplace=True), lambda: nn.LeakyReLU(inplace=True)],
                         ids=["ReLU", "LeakyReLU"])
def test_inplace_needs_an_array(make):
    with pytest.raises(TypeError, match="inplace=True.*NumPy array"):
        make()([1.0, -1.0])


def test_inplace_read_only_array_raises():
    x = np.array([-1.0, 2.0])
    x.flags.writeable = False
    with pytest.raises(ValueError):
        nn.ReLU(inplace=True)(x)


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_before_forward_raises(case):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        case.make().backward(np.ones(3))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_grad_shape_must_match(case):
    layer = case.make()
    layer(np.ones((2, 3)))
    for bad in (np.ones(3), np.ones((1, 3)), np.ones((3, 2))):
        with pytest.raises(ValueError, match=r"grad has shape .* forward output had shape \(2, 3\)"):
            layer.backward(bad)


def test_softmax_axis_out_of_range():
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
        nn.Softmax(dim=2)(np.ones((2, 3)))


# -- dim=None: PyTorch's deprecated implicit axis ---------------------------------------------------
@pytest.mark.parametrize("cls, ref", [(nn.Softmax, ref_softmax), (nn.LogSoftmax, ref_log_softmax)],
                         ids=["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("ndim, axis", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_implicit_dim_warns_and_picks_torchs_axis(cls, ref, ndim, axis):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)[:ndim])
    layer = cls()
    with pytest.warns(UserWarning, match="Implicit dimension choice for (log_)?softmax has been deprecated"):
        y = layer(x)
    np.testing.assert_allclose(y, ref(x, axis), rtol=1e-13, atol=1e-15)
    g = np.ones_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backward pass uses the saved axis, no second warning
        layer.backward(g)


# -- repr and attributes ------------------------------------------------------------------------
REPRS = [
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.LeakyReLU(0.1), "LeakyReLU(negative_slope=0.1)"),
    (lambda: nn.LeakyReLU(0.2, True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Tanh(), "Tanh()"),
    (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
    (lambda: nn.Softmax(), "Softmax(dim=None)"),
    (lambda: nn.LogSoftmax(-1), "LogSoftmax(dim=-1)"),
]


@pytest.mark.parametrize("make, text", REPRS, ids=[t for _, t in REPRS])
def test_repr(make, text):
    assert repr(make()) == text


def test_repr_equals_torchs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: nothing to compare the reprs with")
    namespace = {"nn": torch.nn}
    for _, text in REPRS:
        assert repr(eval("nn." + text, namespace)) == text


def test_defaults_and_attributes():
    assert nn.ReLU().inplace is False
    leaky = nn.LeakyReLU()
    assert (leaky.negative_slope, leaky.inplace) == (0.01, False)
    assert nn.Softmax().dim is None and nn.LogSoftmax(2).dim == 2
    assert all(isinstance(c(), nn.Activation) for c in (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh))
    assert not isinstance(nn.LogSoftmax(), nn.Softmax)


def test_docstring_examples():
    result = doctest.testmod(nn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20 and result.failed == 0


def test_importing_fastact_never_imports_torch(tmp_path):
    code = (
        "import sys, fastact, fastact.nn, fastact.torch\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "fastact.nn.Tanh()(0.5)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    # Run outside the repository so the source folder cannot shadow the installed package.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=dict(os.environ), timeout=120)


def test_fastact_torch_without_torch_says_so(tmp_path):
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError('No module named torch', name='torch')\n"
        "sys.meta_path.insert(0, NoTorch)\n"
        "import fastact.torch as fat\n"
        "try:\n"
        "    fat.Tanh\n"
        "except ImportError as error:\n"
        "    assert 'fastact.torch needs PyTorch' in str(error) and 'fastact.nn' in str(error), error\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=dict(os.environ), timeout=120)
