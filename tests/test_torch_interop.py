"""fastact.torch: gradcheck of every function, parity with torch's own ops, layouts, modules, errors."""

import doctest
import pickle
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: fastact.torch needs it")
F = torch.nn.functional

import fastact
import fastact.torch as fat


def _clone_then(fn):
    # In-place variants are differentiated through a clone: an in-place op on a leaf is an error.
    return lambda t: fn(t.clone())


# name -> (fastact.torch function, torch's own function). Every entry is differentiable.
FUNCTIONS = {
    "relu": (fat.relu, torch.relu),
    "relu-inplace": (_clone_then(lambda t: fat.relu(t, inplace=True)), _clone_then(lambda t: F.relu(t, inplace=True))),
    "leaky_relu": (fat.leaky_relu, F.leaky_relu),
    "leaky_relu(0.2)-inplace": (_clone_then(lambda t: fat.leaky_relu(t, 0.2, True)),
                                _clone_then(lambda t: F.leaky_relu(t, 0.2, True))),
    "leaky_relu(0)-inplace": (_clone_then(lambda t: fat.leaky_relu(t, 0.0, True)),
                              _clone_then(lambda t: F.leaky_relu(t, 0.0, True))),
    "leaky_relu(-0.3)": (lambda t: fat.leaky_relu(t, -0.3), lambda t: F.leaky_relu(t, -0.3)),
    "leaky_relu(1.5)": (lambda t: fat.leaky_relu(t, 1.5), lambda t: F.leaky_relu(t, 1.5)),
    "sigmoid": (fat.sigmoid, torch.sigmoid),
    "tanh": (fat.tanh, torch.tanh),
    "softmax(dim=-1)": (lambda t: fat.softmax(t, -1), lambda t: F.softmax(t, -1)),
    "softmax(dim=0)": (lambda t: fat.softmax(t, 0), lambda t: F.softmax(t, 0)),
    "log_softmax(dim=1)": (lambda t: fat.log_softmax(t, 1), lambda t: F.log_softmax(t, 1)),
    "log_softmax(dim=0)": (lambda t: fat.log_softmax(t, 0), lambda t: F.log_softmax(t, 0)),
    "ReLU()": (lambda t: fat.ReLU()(t), lambda t: torch.nn.ReLU()(t)),
    "LeakyReLU(0.1)": (lambda t: fat.LeakyReLU(0.1)(t), lambda t: torch.nn.LeakyReLU(0.1)(t)),
    "Sigmoid()": (lambda t: fat.Sigmoid()(t), lambda t: torch.nn.Sigmoid()(t)),
    "Tanh()": (lambda t: fat.Tanh()(t), lambda t: torch.nn.Tanh()(t)),
    "Softmax(dim=1)": (lambda t: fat.Softmax(dim=1)(t), lambda t: torch.nn.Softmax(dim=1)(t)),
    "LogSoftmax(dim=1)": (lambda t: fat.LogSoftmax(dim=1)(t), lambda t: torch.nn.LogSoftmax(dim=1)(t)),
}
NAMES = list(FUNCTIONS)
PIECEWISE_LINEAR = {name for name in NAMES if "relu" in name.lower()}  # bitwise equal to torch
ELEMENTWISE = PIECEWISE_LINEAR | {"sigmoid", "tanh", "Sigmoid()", "Tanh()"}


def away_from_kinks(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(shape, generator=g, dtype=dtype) * 2 + 0.1
    sign = torch.randint(0, 2, shape, generator=g).to(dtype) * 2 - 1
    return magnitude * sign


def bits(t):
    return t.detach().contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


# -- gradcheck ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    fn, _ = FUNCTIONS[name]
    x = away_from_kinks((4, 6)).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "softmax(dim=0)", "log_softmax(dim=1)"])
def test_gradcheck_non_contiguous(name):
    fn, _ = FUNCTIONS[name]
    x = away_from_kinks((10, 7), seed=1)[::2].t().requires_grad_()  # (7, 5), strided and transposed
    assert not x.is_contiguous()
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax(dim=-1)"])
def test_double_backward_is_refused(name):
    fn, _ = FUNCTIONS[name]
    x = away_from_kinks((3, 4)).requires_grad_()
    v = torch.ones(3, 4, dtype=x.dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(fn(x), x, grad_outputs=v, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
    # Through the saved output alone there is no graph at all: an error too, never a silent zero.
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad.sum().backward()


# -- parity with torch's own ops in float32 ---------------------------------------------------------
def max_ulp(actual, expected, floor=None):
    a, e = actual.detach().double(), expected.detach().double()
    scale = e.abs() if floor is None else e.abs().clamp_min(floor)
    ulp = torch.from_numpy(np.spacing(scale.float().numpy()).astype(np.float64))
    return ((a - e).abs() / ulp).max().item()


def run(fn, x, grad):
    x = x.clone().requires_grad_()
    y = fn(x)
    y.backward(grad)
    return y, x.grad


def reference(name, x):
    """float64 reference of a smooth function on a float32 tensor, and the ULP bounds that apply:
    (expected, floor, bound against the reference (DESIGN.md section 2), bound against torch)."""
    if name in ("sigmoid", "Sigmoid()"):
        return torch.sigmoid(x.double()), None, 2, 4
    if name in ("tanh", "Tanh()"):
        return torch.tanh(x.double()), None, 2, 4
    dim = int(re.search(r"dim=(-?\d)", name).group(1))
    shifted = (x - x.amax(dim, keepdim=True)).double()  # measured from the float32 x - max, as DESIGN.md says
    log_sum = shifted.exp().sum(dim, keepdim=True).log()
    # torch's own float32 softmax is less accurate (about 12 ULP on rows of a few hundred), hence the
    # looser bound against torch than against the reference.
    if "logsoftmax" in name.lower().replace("_", ""):
        return shifted - log_sum, 1.0, 2, 8
    return (shifted - log_sum).exp(), None, 4, 16


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_torch(name, target):  # `target`: every SIMD kernel set (tests/conftest.py)
    fn, torch_fn = FUNCTIONS[name]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 257, generator=g) * 6
    grad = torch.randn(8, 257, generator=g)
    y, dx = run(fn, x, grad)
    y_ref, dx_ref = run(torch_fn, x, grad)
    assert y.dtype == dx.dtype == torch.float32
    if name in PIECEWISE_LINEAR:
        assert torch.equal(bits(y), bits(y_ref)) and torch.equal(bits(dx), bits(dx_ref))
        return
    expected, floor, design_bound, torch_bound = reference(name, x)
    assert max_ulp(y, expected, floor) <= design_bound
    assert max_ulp(y, y_ref, floor) <= torch_bound
    # Both gradients come from the same formula applied to outputs a few ULPs apart.
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(dx, dx_ref, rtol=16 * eps, atol=16 * eps * grad.abs().max().item())


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "leaky_relu(-0.3)", "relu-inplace", "leaky_relu(0.2)-inplace"])
def test_special_values_bitwise(name, target):
    fn, torch_fn = FUNCTIONS[name]
    x = torch.tensor([-float("inf"), -2.0, -1e-45, -0.0, 0.0, 1e-45, 3.0, float("inf"), float("nan")])
    grad = torch.tensor([1.0, -2.0, 3.0, float("nan"), float("inf"), 5.0, -float("inf"), 0.5, 7.0])
    y, dx = run(fn, x, grad)
    y_ref, dx_ref = run(torch_fn, x, grad)
    assert torch.equal(bits(y), bits(y_ref))
    assert torch.equal(bits(dx), bits(dx_ref))


def test_float64_matches_torch_closely():
    x = torch.randn(5, 9, dtype=torch.float64) * 3
    for name in NAMES:
        fn, torch_fn = FUNCTIONS[name]
        torch.testing.assert_close(fn(x), torch_fn(x), rtol=1e-14, atol=1e-15, msg=name)


# -- layouts ------------------------------------------------------------------------------------
LAYOUTS = {
    "transposed": lambda t: t.t(),
    "strided": lambda t: t[::2, 1::3],
    "expanded": lambda t: t[:1].expand(6, -1),  # stride 0: fine to read, not to write
    "channels_last": lambda t: t.view(2, 3, 3, 4).contiguous(memory_format=torch.channels_last),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", [n for n in NAMES if "inplace" not in n])
def test_non_contiguous_inputs(name, layout):
    fn, _ = FUNCTIONS[name]
    x = LAYOUTS[layout](away_from_kinks((6, 12), torch.float32, seed=3))
    grad = torch.randn(x.shape)
    y, dx = run(fn, x, grad)
    y_ref, dx_ref = run(fn, x.contiguous(), grad)
    if name in ELEMENTWISE:
        assert torch.equal(y, y_ref) and torch.equal(dx, dx_ref)
    else:  # a reduction may sum in another order along a strided axis
        eps = torch.finfo(torch.float32).eps
        torch.testing.assert_close(y, y_ref, rtol=4 * eps, atol=4 * eps)
        torch.testing.assert_close(dx, dx_ref, rtol=16 * eps, atol=16 * eps * grad.abs().max().item())
    if layout in ("transposed", "channels_last"):
        assert y.stride() == x.stride(), "the output keeps the input's memory format, as torch's does"


def test_non_contiguous_grad_output():
    x = away_from_kinks((5, 4), seed=4).requires_grad_()
    y = fat.tanh(x)
    grad = torch.randn(4, 5, dtype=torch.float64).t()
    y.backward(grad)
    torch.testing.assert_close(x.grad, grad * (1 - torch.tanh(x.detach()) ** 2), rtol=1e-14, atol=1e-15)
    x.grad = None
    fat.sigmoid(x).sum().backward()  # sum's backward hands over an expanded (stride 0) tensor
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(x.grad, s * (1 - s), rtol=1e-14, atol=1e-15)


def test_zero_copy_forward():
    x = torch.randn(3, 4)
    y = fat.relu(x, inplace=True)
    assert y is x and y.data_ptr() == x.data_ptr()


def test_empty_and_zero_dim_tensors():
    empty = torch.empty(0, 3, requires_grad=True)
    y = fat.softmax(empty, 1)
    y.sum().backward()
    assert y.shape == (0, 3) and empty.grad.shape == (0, 3)
    scalar = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    for fn, torch_fn in ((lambda t: fat.softmax(t, 0), lambda t: F.softmax(t, 0)),
                         (lambda t: fat.log_softmax(t, -1), lambda t: F.log_softmax(t, -1)),
                         (fat.tanh, torch.tanh), (fat.relu, torch.relu)):
        out = fn(scalar)
        (grad,) = torch.autograd.grad(out, scalar)
        (grad_ref,) = torch.autograd.grad(torch_fn(scalar), scalar)
        assert out.shape == () and grad.shape == ()
        torch.testing.assert_close(out, torch_fn(scalar.detach()), rtol=1e-14, atol=0)
        torch.testing.assert_close(grad, grad_ref, rtol=1e-14, atol=0)


# -- in place -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [lambda t: fat.relu(t, inplace=True), lambda t: fat.leaky_relu(t, 0.1, True),
                                lambda t: fat.ReLU(inplace=True)(t)], ids=["relu", "leaky_relu", "ReLU"])
def test_inplace_returns_and_overwrites_its_input(fn):
    x = torch.tensor([-1.0, 2.0])
    before = x._version
    assert fn(x) is x
    assert x[1] == 2.0 and x[0] <= 0 and x._version > before


def test_inplace_on_a_saved_tensor_is_detected():
    x = torch.randn(4, requires_grad=True)
    y = x.exp()  # exp saves its output
    fat.relu(y, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_a_leaf_is_refused_before_writing():
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        fat.relu(x, inplace=True)
    assert x[0] == -1.0
    with torch.no_grad():
        fat.relu(x, inplace=True)  # as in torch, fine without grad mode
    assert x[0] == 0.0


@pytest.mark.parametrize("name", [n for n in NAMES if "inplace" not in n])
def test_no_grad_and_inference_mode_give_the_same_values(name):
    # Without anything to differentiate, the functions skip autograd (a faster path): same bits.
    fn, _ = FUNCTIONS[name]
    x = away_from_kinks((4, 6), torch.float32, seed=7).requires_grad_()
    with_grad = fn(x)
    assert with_grad.requires_grad
    with torch.no_grad():
        no_grad = fn(x)
    with torch.inference_mode():
        inference = fn(x.detach().clone())
    assert not no_grad.requires_grad and not inference.requires_grad
    assert torch.equal(no_grad, with_grad.detach()) and torch.equal(inference, with_grad.detach())


def test_inplace_under_no_grad_still_bumps_the_version():
    x = torch.randn(4, requires_grad=True)
    y = x.exp()
    with torch.no_grad():
        fat.leaky_relu(y, 0.1, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_overlapping_memory_is_refused():
    x = torch.tensor([-1.0]).expand(3)
    with pytest.raises(RuntimeError, match="more than one element"):
        fat.leaky_relu(x, 0.1, inplace=True)


def test_inplace_leaky_relu_with_a_negative_slope():
    x = torch.tensor([-2.0, 3.0], requires_grad=True)
    y = fat.leaky_relu(x.clone(), -0.5, inplace=True)
    assert y.tolist() == [1.0, 3.0]  # the forward pass works
    with pytest.raises(RuntimeError, match="negative slope"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="negative slope"):  # torch says the same
        F.leaky_relu(x.clone(), -0.5, inplace=True).sum().backward()


# -- softmax's dim and dtype ----------------------------------------------------------------------
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_implicit_dim_warns_like_torch(which, ndim):
    x = torch.randn((2, 3, 4, 5)[:ndim], dtype=torch.float64)
    module = {"softmax": (fat.Softmax, torch.nn.Softmax), "log_softmax": (fat.LogSoftmax, torch.nn.LogSoftmax)}[which]
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {which} has been deprecated"):
        ours = getattr(fat, which)(x)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {which}"):
        theirs = getattr(F, which)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-14, atol=1e-15)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {which}"):
        torch.testing.assert_close(module[0]()(x), theirs, rtol=1e-14, atol=1e-15)


def test_softmax_dtype_casts_first():
    x = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(fat.softmax(x, 1, dtype=torch.float64), F.softmax(x, 1, dtype=torch.float64))
    xf = torch.randn(2, 3, requires_grad=True)
    y = fat.log_softmax(xf, 1, dtype=torch.float64)
    assert y.dtype == torch.float64
    y[:, 0].sum().backward()
    assert xf.grad.dtype == torch.float32
    xr = xf.detach().clone().requires_grad_()
    F.log_softmax(xr, 1, dtype=torch.float64)[:, 0].sum().backward()
    torch.testing.assert_close(xf.grad, xr.grad)


def test_softmax_dim_errors():
    x = torch.randn(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        fat.softmax(x, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        fat.log_softmax(x, -3)
    with pytest.raises(TypeError, match="dim must be an int"):
        fat.softmax(x, 1.0)


# -- errors -------------------------------------------------------------------------------------
ALL_FUNCTIONS = {
    "relu": fat.relu, "leaky_relu": fat.leaky_relu, "sigmoid": fat.sigmoid, "tanh": fat.tanh,
    "softmax": lambda t: fat.softmax(t, 0), "log_softmax": lambda t: fat.log_softmax(t, 0),
    "ReLU": fat.ReLU(), "Tanh": fat.Tanh(),
}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.float16, torch.bfloat16,
                                   torch.complex64], ids=str)
@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_unsupported_dtypes_raise_type_error(name, dtype):
    with pytest.raises(TypeError, match=r"supports float32 and float64 tensors, got torch\.\w+"):
        ALL_FUNCTIONS[name](torch.zeros(3, dtype=dtype))


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_non_cpu_tensors_raise_value_error(name):
    with pytest.raises(ValueError, match="CPU tensors only, got a tensor on meta"):
        ALL_FUNCTIONS[name](torch.empty(3, device="meta"))


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_non_tensors_and_sparse_tensors_raise_type_error(name):
    with pytest.raises(TypeError, match="expected a torch.Tensor, got ndarray"):
        ALL_FUNCTIONS[name](np.zeros(3))
    with pytest.raises(TypeError, match="dense"):
        ALL_FUNCTIONS[name](torch.zeros(3).to_sparse())


# -- modules ------------------------------------------------------------------------------------
MODULES = [
    ("ReLU()", fat.ReLU(), torch.nn.ReLU()),
    ("ReLU(inplace=True)", fat.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
    ("LeakyReLU(negative_slope=0.01)", fat.LeakyReLU(), torch.nn.LeakyReLU()),
    ("LeakyReLU(negative_slope=0.1)", fat.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    ("LeakyReLU(negative_slope=0.2, inplace=True)", fat.LeakyReLU(0.2, True), torch.nn.LeakyReLU(0.2, True)),
    ("Sigmoid()", fat.Sigmoid(), torch.nn.Sigmoid()),
    ("Tanh()", fat.Tanh(), torch.nn.Tanh()),
    ("Softmax(dim=1)", fat.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    ("Softmax(dim=None)", fat.Softmax(), torch.nn.Softmax()),
    ("LogSoftmax(dim=-1)", fat.LogSoftmax(-1), torch.nn.LogSoftmax(-1)),
]


@pytest.mark.parametrize("text, ours, theirs", MODULES, ids=[m[0] for m in MODULES])
def test_modules_are_torchs_with_the_same_repr(text, ours, theirs):
    assert repr(ours) == repr(theirs) == text
    assert isinstance(ours, type(theirs)) and isinstance(ours, torch.nn.Module)
    assert ours.state_dict() == {} and list(ours.parameters()) == []
    clone = pickle.loads(pickle.dumps(ours))
    assert type(clone) is type(ours) and repr(clone) == text


def test_swapping_modules_in_a_model_trains_the_same():
    def train(act, out):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8, dtype=torch.float64), act,
                                    torch.nn.Linear(8, 3, dtype=torch.float64), out)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(1)
        x, target = torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    ours = train(fat.Tanh(), fat.LogSoftmax(dim=1))
    theirs = train(torch.nn.Tanh(), torch.nn.LogSoftmax(dim=1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[-1] < ours[0]


def test_functions_are_autograd_functions():
    for name in ("ReLUFunction", "LeakyReLUFunction", "SigmoidFunction", "TanhFunction", "SoftmaxFunction",
                 "LogSoftmaxFunction"):
        cls = getattr(fat, name)
        assert issubclass(cls, torch.autograd.Function) and cls.__module__ == "fastact.torch"
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert torch.equal(fat.TanhFunction.apply(x), fastact_tanh(x))
    assert set(fat.__all__) <= set(dir(fat))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = fat.no_such_name


def fastact_tanh(x):
    return torch.from_numpy(fastact.tanh(x.numpy()))


def test_docstring_examples():
    result = doctest.testmod(fat, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 12 and result.failed == 0
