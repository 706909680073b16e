"""PyTorch drop-ins that run fastact's kernels on CPU tensors.

Swap a ``torch.nn`` activation for the one here and the model trains the same way::

    >>> import torch
    >>> import fastact.torch as fat
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), fat.Tanh(), torch.nn.Linear(8, 2))
    >>> model[1]
    Tanh()
    >>> loss = model(torch.randn(3, 4)).square().sum()
    >>> loss.backward()                                 # runs fastact.tanh_backward
    >>> model[0].weight.grad.shape
    torch.Size([8, 4])

What is here, each with ``torch``'s own name, signature and repr:

- modules: :class:`ReLU`, :class:`LeakyReLU`, :class:`Sigmoid`, :class:`Tanh`, :class:`Softmax`,
  :class:`LogSoftmax` (subclasses of the ``torch.nn`` ones, so ``isinstance(m, torch.nn.Tanh)`` holds
  and ``state_dict``, ``repr`` and pickling behave as there; only ``forward`` differs);
- functions: :func:`relu`, :func:`leaky_relu`, :func:`sigmoid`, :func:`tanh`, :func:`softmax`,
  :func:`log_softmax`, as in ``torch.nn.functional``;
- the ``torch.autograd.Function`` subclasses behind them: ``ReLUFunction``, ``LeakyReLUFunction``,
  ``SigmoidFunction``, ``TanhFunction``, ``SoftmaxFunction``, ``LogSoftmaxFunction``.

How it works: the forward pass takes a zero-copy NumPy view of the input (``tensor.detach().numpy()``;
any strides, so transposed and sliced tensors are not copied) and writes fastact's result straight
into a tensor allocated by torch (``torch.empty_like``, which keeps the input's memory format); the
backward pass does the same with the ``*_backward`` kernels and the tensor saved by the forward pass
(the output, or the input for leaky ReLU, as torch saves them). When nothing will be differentiated
(``torch.no_grad()``, ``torch.inference_mode()``, or an input that does not require grad) the
out-of-place functions skip autograd's bookkeeping and call the kernel directly.

Limits, each an error rather than a silent fallback:

- CPU tensors only (``ValueError`` for any other device), strided layout only (``TypeError`` for sparse);
- float32 and float64 only (``TypeError`` for any other dtype, integers included: convert first, or
  use ``dtype=`` on softmax/log_softmax);
- first derivatives only: the backward passes are ``once_differentiable``, so a double backward
  (``create_graph=True`` then differentiating again) raises ``RuntimeError``;
- ``leaky_relu(x, negative_slope < 0, inplace=True)`` cannot be differentiated (torch refuses it too).

Importing this module is cheap: torch is imported, and the classes are built, the first time one of
the names above is used. ``import fastact`` never imports torch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

__all__ = [
    # torch.nn drop-ins
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    # torch.nn.functional drop-ins
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    # the autograd Functions
    "ReLUFunction",
    "LeakyReLUFunction",
    "SigmoidFunction",
    "TanhFunction",
    "SoftmaxFunction",
    "LogSoftmaxFunction",
]

if TYPE_CHECKING:  # what _define() builds at run time, spelled out for type checkers and editors
    import torch as _torch
    from torch import Tensor

    class ReLU(_torch.nn.ReLU): ...
    class LeakyReLU(_torch.nn.LeakyReLU): ...
    class Sigmoid(_torch.nn.Sigmoid): ...
    class Tanh(_torch.nn.Tanh): ...
    class Softmax(_torch.nn.Softmax): ...
    class LogSoftmax(_torch.nn.LogSoftmax): ...

    class ReLUFunction(_torch.autograd.Function): ...
    class LeakyReLUFunction(_torch.autograd.Function): ...
    class SigmoidFunction(_torch.autograd.Function): ...
    class TanhFunction(_torch.autograd.Function): ...
    class SoftmaxFunction(_torch.autograd.Function): ...
    class LogSoftmaxFunction(_torch.autograd.Function): ...

    def relu(input: Tensor, inplace: bool = False) -> Tensor: ...
    def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor: ...
    def sigmoid(input: Tensor) -> Tensor: ...
    def tanh(input: Tensor) -> Tensor: ...
    def softmax(input: Tensor, dim: int | None = None, dtype: _torch.dtype | None = None) -> Tensor: ...
    def log_softmax(input: Tensor, dim: int | None = None, dtype: _torch.dtype | None = None) -> Tensor: ...

_build_lock = threading.Lock()
_built = False


def __getattr__(name: str) -> Any:
    # PEP 562: the first lookup of a public name imports torch and defines everything.
    if name in __all__:
        _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


def _build() -> None:
    global _built
    with _build_lock:
        if _built:
            return
        namespace = _define()
        for name, obj in namespace.items():
            # Defined inside _define(), but they live here: pickle and repr must find them by name.
            obj.__module__ = __name__
            obj.__qualname__ = name
        globals().update(namespace)
        _built = True


def _define() -> dict[str, Any]:
    """Import torch and define the public names; run once, by :func:`_build`."""
    import operator
    import warnings

    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"fastact.torch needs PyTorch, which could not be imported ({error}); install a CPU build of "
            "torch, or use fastact.nn, the NumPy layers, which need no torch"
        ) from error
    from torch.autograd.function import once_differentiable

    import fastact as _fa

    supported_dtypes = (torch.float32, torch.float64)

    # -- checks and views ----------------------------------------------------------------------
    def check_tensor(input: Any, fname: str) -> None:
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"fastact.torch.{fname}: expected a torch.Tensor, got {type(input).__name__}")
        if input.device.type != "cpu":
            raise ValueError(
                f"fastact.torch.{fname} runs on CPU tensors only, got a tensor on {input.device}; "
                f"use torch.nn.functional.{fname} there, or move the tensor with .cpu()"
            )
        if input.layout != torch.strided:
            raise TypeError(f"fastact.torch.{fname} needs a dense (strided) tensor, got layout {input.layout}")
        if input.dtype not in supported_dtypes:
            raise TypeError(
                f"fastact.torch.{fname} supports float32 and float64 tensors, got {input.dtype}; "
                "convert it first (e.g. input.float())"
            )

    def check_inplace(input: torch.Tensor) -> None:
        # torch's own in-place ops refuse these before writing anything; so do we, in its words.
        if torch.is_grad_enabled() and input.requires_grad and input.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if torch._debug_has_internal_overlap(input) == 1:
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers to a "
                "single memory location. Please clone() the tensor before performing the operation."
            )

    def view(tensor: torch.Tensor) -> Any:
        """A NumPy array sharing the tensor's memory (and strides)."""
        return tensor.detach().numpy()

    def direct(input: torch.Tensor) -> bool:
        """True when nothing will differentiate this call: skip autograd's bookkeeping (about 15 us a
        call). In-place calls always go through their Function, which bumps the version counter."""
        return not (input.requires_grad and torch.is_grad_enabled())

    def run(kernel: Any, input: torch.Tensor, *args: Any) -> torch.Tensor:
        output = torch.empty_like(input)
        kernel(view(input), *args, out=output.numpy())
        return output

    def check_dim(dim: Any, ndim: int, fname: str) -> Any:
        """torch's rules for ``dim``: an int in [-ndim, ndim), with 0-d tensors taking 0 and -1."""
        try:
            dim = operator.index(dim)
        except TypeError:
            raise TypeError(f"fastact.torch.{fname}: dim must be an int, got {type(dim).__name__}") from None
        rank = max(ndim, 1)
        if not -rank <= dim < rank:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})"
            )
        return None if ndim == 0 else dim  # fastact: axis=None over a 0-d array is the whole array

    def implicit_dim(fname: str, ndim: int) -> int:
        warnings.warn(
            f"Implicit dimension choice for {fname} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            UserWarning,
            stacklevel=4,
        )
        return 0 if ndim in (0, 1, 3) else 1

    # -- autograd Functions --------------------------------------------------------------------
    class ReLUFunction(torch.autograd.Function):
        """``relu`` with fastact's kernels; ``apply(input, inplace)``. Saves the output."""

        @staticmethod
        def forward(ctx: Any, input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
            if inplace:
                x = view(input)
                _fa.relu(x, out=x)
                ctx.mark_dirty(input)
                output = input
            else:
                output = torch.empty_like(input)
                _fa.relu(view(input), out=output.numpy())
            ctx.save_for_backward(output)
            return output

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_output: torch.Tensor) -> Any:
            (output,) = ctx.saved_tensors
            grad_input = torch.empty_like(output)
            _fa.relu_backward(view(grad_output), view(output), out=grad_input.numpy())
            return grad_input, None

    class LeakyReLUFunction(torch.autograd.Function):
        """``leaky_relu`` with fastact's kernels; ``apply(input, negative_slope, inplace)``.

        Saves the input, or, in place (where the input is overwritten), the output, whose sign is the
        input's when ``negative_slope >= 0``; with a negative slope the backward pass raises.
        """

        @staticmethod
        def forward(ctx: Any, input: torch.Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Any:
            ctx.negative_slope = negative_slope
            ctx.saved_output = inplace
            if inplace:
                x = view(input)
                _fa.leaky_relu(x, negative_slope, out=x)
                ctx.mark_dirty(input)
                ctx.save_for_backward(input)
                return input
            output = torch.empty_like(input)
            _fa.leaky_relu(view(input), negative_slope, out=output.numpy())
            ctx.save_for_backward(input)
            return output

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_output: torch.Tensor) -> Any:
            (saved,) = ctx.saved_tensors
            slope = ctx.negative_slope
            if ctx.saved_output and not slope >= 0:  # `not >=` catches a NaN slope too
                raise RuntimeError(
                    "In-place leakyReLu backward calculation is triggered with a negative slope which is "
                    "not supported. This is caused by calling in-place forward function with a negative "
                    "slope, please call out-of-place version instead."
                )
            grad_input = torch.empty_like(saved)
            _fa.leaky_relu_backward(view(grad_output), view(saved), slope, out=grad_input.numpy())
            return grad_input, None, None

    def output_saving_function(name: str, kernel: Any, backward_kernel: Any, doc: str) -> Any:
        """An elementwise Function that saves its output: ``y = kernel(x)``, ``dx = backward_kernel(dy, y)``."""

        def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
            output = torch.empty_like(input)
            kernel(view(input), out=output.numpy())
            ctx.save_for_backward(output)
            return output

        @once_differentiable
        def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
            (output,) = ctx.saved_tensors
            grad_input = torch.empty_like(output)
            backward_kernel(view(grad_output), view(output), out=grad_input.numpy())
            return grad_input

        return type(
            name,
            (torch.autograd.Function,),
            {"forward": staticmethod(forward), "backward": staticmethod(backward), "__doc__": doc},
        )

    SigmoidFunction = output_saving_function(
        "SigmoidFunction", _fa.sigmoid, _fa.sigmoid_backward,
        "``sigmoid`` with fastact's kernels; ``apply(input)``. Saves the output.",
    )
    TanhFunction = output_saving_function(
        "TanhFunction", _fa.tanh, _fa.tanh_backward,
        "``tanh`` with fastact's kernels; ``apply(input)``. Saves the output.",
    )

    def axis_function(name: str, forward_fn: Any, backward_fn: Any, doc: str) -> Any:
        """An autograd Function for a reduction along an axis that saves its output."""

        def forward(ctx: Any, input: torch.Tensor, axis: Any) -> torch.Tensor:
            output = torch.empty_like(input)
            forward_fn(view(input), axis, out=output.numpy())
            ctx.axis = axis
            ctx.save_for_backward(output)
            return output

        @once_differentiable
        def backward(ctx: Any, grad_output: torch.Tensor) -> Any:
            (output,) = ctx.saved_tensors
            grad_input = torch.empty_like(output)
            backward_fn(view(grad_output), view(output), ctx.axis, out=grad_input.numpy())
            return grad_input, None

        return type(name, (torch.autograd.Function,), {
            "__doc__": doc, "forward": staticmethod(forward), "backward": staticmethod(backward)})

    SoftmaxFunction = axis_function(
        "SoftmaxFunction", _fa.softmax, _fa.softmax_backward,
        "``softmax`` with fastact's kernels; ``apply(input, axis)`` (axis as fastact takes it).",
    )
    LogSoftmaxFunction = axis_function(
        "LogSoftmaxFunction", _fa.log_softmax, _fa.log_softmax_backward,
        "``log_softmax`` with fastact's kernels; ``apply(input, axis)`` (axis as fastact takes it).",
    )

    # -- functional forms (torch.nn.functional's signatures) -----------------------------------
    def relu(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``torch.nn.functional.relu`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.relu(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
        """
        check_tensor(input, "relu")
        if inplace:
            check_inplace(input)
        if not inplace and direct(input):
            return run(_fa.relu, input)
        return ReLUFunction.apply(input, bool(inplace))

    def leaky_relu(input: torch.Tensor, negative_slope: float = 0.01, inplace: bool = False) -> torch.Tensor:
        """``torch.nn.functional.leaky_relu`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.leaky_relu(torch.tensor([-2.0, 0.0, 2.0]), 0.5)
        tensor([-1.,  0.,  2.])
        """
        check_tensor(input, "leaky_relu")
        if inplace:
            check_inplace(input)
        if not inplace and direct(input):
            return run(_fa.leaky_relu, input, float(negative_slope))
        return LeakyReLUFunction.apply(input, float(negative_slope), bool(inplace))

    def sigmoid(input: torch.Tensor) -> torch.Tensor:
        """``torch.sigmoid`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.sigmoid(torch.tensor([0.0, float("inf")]))
        tensor([0.5000, 1.0000])
        """
        check_tensor(input, "sigmoid")
        if direct(input):
            return run(_fa.sigmoid, input)
        return SigmoidFunction.apply(input)

    def tanh(input: torch.Tensor) -> torch.Tensor:
        """``torch.tanh`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.tanh(torch.tensor([0.0, float("-inf")]))
        tensor([ 0., -1.])
        """
        check_tensor(input, "tanh")
        if direct(input):
            return run(_fa.tanh, input)
        return TanhFunction.apply(input)

    def softmax(input: torch.Tensor, dim: Any = None, dtype: Any = None) -> torch.Tensor:
        """``torch.nn.functional.softmax`` on fastact's kernels.

        ``dtype`` casts the input first (a differentiable cast, as torch's); ``dim=None`` warns and
        picks torch's legacy axis, as torch does.

        >>> import torch, fastact.torch as fat
        >>> fat.softmax(torch.zeros(2, 4), dim=1)
        tensor([[0.2500, 0.2500, 0.2500, 0.2500],
                [0.2500, 0.2500, 0.2500, 0.2500]])
        """
        if dtype is not None and isinstance(input, torch.Tensor):
            input = input.to(dtype)
        check_tensor(input, "softmax")
        if dim is None:
            dim = implicit_dim("softmax", input.dim())
        axis = check_dim(dim, input.dim(), "softmax")
        if direct(input):
            return run(_fa.softmax, input, axis)
        return SoftmaxFunction.apply(input, axis)

    def log_softmax(input: torch.Tensor, dim: Any = None, dtype: Any = None) -> torch.Tensor:
        """``torch.nn.functional.log_softmax`` on fastact's kernels (``dim`` and ``dtype`` as in :func:`softmax`).

        >>> import torch, fastact.torch as fat
        >>> fat.log_softmax(torch.zeros(4), dim=0).exp()
        tensor([0.2500, 0.2500, 0.2500, 0.2500])
        """
        if dtype is not None and isinstance(input, torch.Tensor):
            input = input.to(dtype)
        check_tensor(input, "log_softmax")
        if dim is None:
            dim = implicit_dim("log_softmax", input.dim())
        axis = check_dim(dim, input.dim(), "log_softmax")
        if direct(input):
            return run(_fa.log_softmax, input, axis)
        return LogSoftmaxFunction.apply(input, axis)

    # -- torch.nn drop-ins: torch's own classes with fastact's forward -------------------------
    class ReLU(torch.nn.ReLU):
        """``torch.nn.ReLU(inplace=False)`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.ReLU(inplace=True)
        ReLU(inplace=True)
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return relu(input, inplace=self.inplace)

    class LeakyReLU(torch.nn.LeakyReLU):
        """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.LeakyReLU(0.1)
        LeakyReLU(negative_slope=0.1)
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return leaky_relu(input, self.negative_slope, self.inplace)

    class Sigmoid(torch.nn.Sigmoid):
        """``torch.nn.Sigmoid()`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.Sigmoid()(torch.zeros(2))
        tensor([0.5000, 0.5000])
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return sigmoid(input)

    class Tanh(torch.nn.Tanh):
        """``torch.nn.Tanh()`` on fastact's kernels.

        >>> import torch, fastact.torch as fat
        >>> fat.Tanh()(torch.zeros(2))
        tensor([0., 0.])
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return tanh(input)

    class Softmax(torch.nn.Softmax):
        """``torch.nn.Softmax(dim=None)`` on fastact's kernels (``dim=None`` warns, as torch's does).

        >>> import torch, fastact.torch as fat
        >>> fat.Softmax(dim=1)
        Softmax(dim=1)
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            dim = self.dim if self.dim is not None else implicit_dim("softmax", input.dim())
            return softmax(input, dim)

    class LogSoftmax(torch.nn.LogSoftmax):
        """``torch.nn.LogSoftmax(dim=None)`` on fastact's kernels (``dim=None`` warns, as torch's does).

        >>> import torch, fastact.torch as fat
        >>> fat.LogSoftmax(dim=1)
        LogSoftmax(dim=1)
        """

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            dim = self.dim if self.dim is not None else implicit_dim("log_softmax", input.dim())
            return log_softmax(input, dim)

    local = locals()
    return {name: local[name] for name in __all__}
