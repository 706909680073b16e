"""Activation layers for NumPy arrays, named and defaulted as in ``torch.nn``.

Each layer is a small object with a forward pass (call it on an array) and a backward pass
(``layer.backward(grad)`` returns the gradient with respect to the layer's input), both running
fastact's kernels. The forward pass keeps what the backward pass needs, as PyTorch's autograd does:

==============================  ======================  =====================================
layer                           keeps                   backward kernel
==============================  ======================  =====================================
``ReLU(inplace=False)``         the output ``y``        :func:`fastact.relu_backward`
``LeakyReLU(0.01, False)``      the input ``x`` [#]_    :func:`fastact.leaky_relu_backward`
``Sigmoid()``                   the output ``y``        :func:`fastact.sigmoid_backward`
``Tanh()``                      the output ``y``        :func:`fastact.tanh_backward`
``Softmax(dim)``                the output ``y``        :func:`fastact.softmax_backward`
``LogSoftmax(dim)``             the output ``log_y``    :func:`fastact.log_softmax_backward`
==============================  ======================  =====================================

.. [#] ``LeakyReLU(inplace=True)`` overwrites its input, so it keeps the output instead and reads the
   sign of the input from it, which is exact for ``negative_slope >= 0``. As in PyTorch, the backward
   pass of an in-place leaky ReLU with a negative slope raises ``RuntimeError`` (the forward pass works).

What is kept is a reference, not a copy. PyTorch notices when a saved tensor is modified in place
before ``backward`` (its tensors carry a version counter); NumPy arrays have no such counter, so
modifying a layer's input or output in place between ``forward`` and ``backward`` silently gives a
wrong gradient. The usual trap is an in-place layer after a layer that keeps its output, e.g.
``Tanh()`` followed by ``ReLU(inplace=True)``: PyTorch raises there, this module cannot.

No layer imports torch; :mod:`fastact.torch` holds the PyTorch drop-ins.

Example, one step of gradient descent through a two-layer chain::

    >>> import numpy as np
    >>> from fastact import nn
    >>> act, out = nn.LeakyReLU(0.1), nn.Sigmoid()
    >>> x = np.array([-2.0, 0.0, 3.0])
    >>> p = out(act(x))                     # forward
    >>> dx = act.backward(out.backward(np.ones_like(p)))   # backward
    >>> dx.shape
    (3,)
    >>> act, out
    (LeakyReLU(negative_slope=0.1), Sigmoid())
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

import fastact as _fa  # attribute lookups happen at call time, so a partly imported package is fine

__all__ = ["Activation", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]


class Activation:
    """Base class of the layers: ``layer(x)`` runs :meth:`forward`; :meth:`backward` differentiates it.

    A subclass implements ``_forward(x)`` returning ``(y, saved)`` and ``_backward(grad, saved, out)``;
    this class checks the order of calls and the gradient's shape, and builds the repr.
    """

    def __init__(self) -> None:
        self._saved: Any = None
        self._shape: tuple[int, ...] | None = None

    # -- the public protocol -------------------------------------------------------------------
    def __call__(self, input: Any) -> Any:
        return self.forward(input)

    def forward(self, input: Any) -> Any:
        """Apply the activation to ``input`` (any array-like) and keep what :meth:`backward` needs."""
        y, saved = self._forward(input)
        self._saved = saved
        self._shape = np.shape(y)
        return y

    def backward(self, grad: Any, *, out: np.ndarray | None = None) -> Any:
        """Return the gradient of the loss with respect to the last :meth:`forward` call's input.

        ``grad`` is the gradient with respect to that call's output and must have its shape.
        ``out=`` follows fastact's rules (``out is grad`` works and overwrites the gradient in
        place). ``backward`` may be called more than once after one forward pass; it raises
        ``RuntimeError`` before the first.
        """
        if self._shape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                "there is no saved forward pass to differentiate"
            )
        grad_shape = np.shape(grad)
        if grad_shape != self._shape:
            raise ValueError(
                f"{type(self).__name__}.backward(): grad has shape {grad_shape}, "
                f"but the forward output had shape {self._shape}"
            )
        return self._backward(grad, self._saved, out)

    def extra_repr(self) -> str:
        """The text between the parentheses of the repr (as ``torch.nn.Module.extra_repr``)."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    # -- what a subclass provides --------------------------------------------------------------
    def _forward(self, input: Any) -> tuple[Any, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, grad: Any, saved: Any, out: np.ndarray | None) -> Any:  # pragma: no cover
        raise NotImplementedError


def _inplace_target(input: Any, layer: Activation) -> np.ndarray:
    """The array an in-place layer writes into; in-place needs a writable ndarray, not a list."""
    if not isinstance(input, np.ndarray):
        raise TypeError(
            f"{type(layer).__name__}(inplace=True) needs a NumPy array to overwrite, "
            f"got {type(input).__name__}"
        )
    return input


class ReLU(Activation):
    """``max(x, 0)`` elementwise, as :class:`torch.nn.ReLU` (``-0.0`` and NaN pass through).

    Args:
        inplace: overwrite the input with the result (and return the input itself).

    Example::

        >>> import numpy as np
        >>> from fastact.nn import ReLU
        >>> m = ReLU()
        >>> m(np.array([-1.0, 0.5, 2.0]))
        array([0. , 0.5, 2. ])
        >>> m.backward(np.array([10.0, 10.0, 10.0]))
        array([ 0., 10., 10.])
        >>> x = np.array([-1.0, 3.0]); y = ReLU(inplace=True)(x)
        >>> y is x, x
        (True, array([0., 3.]))
        >>> ReLU(inplace=True)
        ReLU(inplace=True)
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _forward(self, input: Any) -> tuple[Any, Any]:
        if self.inplace:
            x = _inplace_target(input, self)
            y = _fa.relu(x, out=x)
        else:
            y = _fa.relu(input)
        return y, y

    def _backward(self, grad: Any, y: Any, out: np.ndarray | None) -> Any:
        return _fa.relu_backward(grad, y, out=out)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Activation):
    """``x if x > 0 else x * negative_slope`` elementwise, as :class:`torch.nn.LeakyReLU`.

    Args:
        negative_slope: the slope for ``x <= 0`` (the gradient at 0 is this slope). Default 0.01.
        inplace: overwrite the input with the result. The input is then gone, so the layer keeps the
            output and reads the input's sign from it; that is exact for ``negative_slope >= 0``.
            With a negative slope the forward pass works but :meth:`backward` raises
            ``RuntimeError``, as PyTorch's does; use ``inplace=False`` to train with one.

    Example::

        >>> import numpy as np
        >>> from fastact.nn import LeakyReLU
        >>> m = LeakyReLU(0.5)
        >>> m(np.array([-2.0, 0.0, 4.0]))
        array([-1.,  0.,  4.])
        >>> m.backward(np.array([1.0, 1.0, 1.0]))
        array([0.5, 0.5, 1. ])
        >>> m, LeakyReLU(inplace=True)
        (LeakyReLU(negative_slope=0.5), LeakyReLU(negative_slope=0.01, inplace=True))
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def _forward(self, input: Any) -> tuple[Any, Any]:
        slope = self.negative_slope
        if self.inplace:
            x = _inplace_target(input, self)
            y = _fa.leaky_relu(x, slope, out=x)
            # The saved array is the output; y > 0 exactly where x > 0 when slope >= 0.
            return y, (y, slope, True)
        y = _fa.leaky_relu(input, slope)
        return y, (np.asarray(input), slope, False)

    def _backward(self, grad: Any, saved: Any, out: np.ndarray | None) -> Any:
        x_or_y, slope, from_output = saved
        if from_output and not slope >= 0:  # `not >=` also catches a NaN slope
            raise RuntimeError(
                f"LeakyReLU(negative_slope={slope}, inplace=True).backward(): the in-place forward "
                "pass overwrote the input, and with a negative slope its sign cannot be read back "
                "from the output (PyTorch refuses this case too); use inplace=False"
            )
        return _fa.leaky_relu_backward(grad, x_or_y, slope, out=out)

    def extra_repr(self) -> str:
        text = f"negative_slope={self.negative_slope}"
        return text + ", inplace=True" if self.inplace else text


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))`` elementwise, as :class:`torch.nn.Sigmoid`.

    Example::

        >>> import numpy as np
        >>> from fastact.nn import Sigmoid
        >>> m = Sigmoid()
        >>> m(np.array([0.0, -np.inf, np.inf]))
        array([0.5, 0. , 1. ])
        >>> m.backward(np.array([4.0, 4.0, 4.0]))
        array([1., 0., 0.])
    """

    def _forward(self, input: Any) -> tuple[Any, Any]:
        y = _fa.sigmoid(input)
        return y, y

    def _backward(self, grad: Any, y: Any, out: np.ndarray | None) -> Any:
        return _fa.sigmoid_backward(grad, y, out=out)


class Tanh(Activation):
    """Hyperbolic tangent elementwise, as :class:`torch.nn.Tanh`.

    Example::

        >>> import numpy as np
        >>> from fastact.nn import Tanh
        >>> m = Tanh()
        >>> m(np.array([0.0, np.inf]))
        array([0., 1.])
        >>> m.backward(np.array([3.0, 3.0]))
        array([3., 0.])
    """

    def _forward(self, input: Any) -> tuple[Any, Any]:
        y = _fa.tanh(input)
        return y, y

    def _backward(self, grad: Any, y: Any, out: np.ndarray | None) -> Any:
        return _fa.tanh_backward(grad, y, out=out)


def _implicit_dim(name: str, ndim: int) -> int:
    """PyTorch's legacy choice of axis for ``dim=None``, with PyTorch's warning."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=6,  # _implicit_dim, _axis, _forward, forward, __call__, the caller
    )
    return 0 if ndim in (0, 1, 3) else 1


class _SoftmaxBase(Activation):
    """Shared by Softmax and LogSoftmax: the ``dim`` argument, its legacy default, the repr."""

    _name = ""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _axis(self, input: Any) -> Any:
        return self.dim if self.dim is not None else _implicit_dim(self._name, np.ndim(input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``, as :class:`torch.nn.Softmax`.

    Args:
        dim: the axis whose slices sum to 1 (negative counts from the end). The default ``None`` is
            PyTorch's: it is deprecated there, and here too it warns (``UserWarning``, PyTorch's
            text) and picks PyTorch's legacy axis, 0 for 0-, 1- and 3-d inputs and 1 otherwise.
            Pass ``dim`` explicitly.

    Example::

        >>> import numpy as np
        >>> from fastact.nn import Softmax
        >>> m = Softmax(dim=1)
        >>> m(np.zeros((2, 4)))
        array([[0.25, 0.25, 0.25, 0.25],
               [0.25, 0.25, 0.25, 0.25]])
        >>> m.backward(np.ones((2, 4)))   # softmax is invariant to adding a constant
        array([[0., 0., 0., 0.],
               [0., 0., 0., 0.]])
        >>> m
        Softmax(dim=1)
    """

    _name = "softmax"

    def _forward(self, input: Any) -> tuple[Any, Any]:
        axis = self._axis(input)
        y = _fa.softmax(input, axis)
        return y, (y, axis)

    def _backward(self, grad: Any, saved: Any, out: np.ndarray | None) -> Any:
        y, axis = saved
        return _fa.softmax_backward(grad, y, axis, out=out)


class LogSoftmax(_SoftmaxBase):
    """``x - log(sum(exp(x)))`` along ``dim``, as :class:`torch.nn.LogSoftmax`.

    Args:
        dim: as for :class:`Softmax` (``None`` warns and picks PyTorch's legacy axis).

    Example::

        >>> import numpy as np
        >>> from fastact.nn import LogSoftmax
        >>> m = LogSoftmax(dim=0)
        >>> np.exp(m(np.zeros(4)))
        array([0.25, 0.25, 0.25, 0.25])
        >>> m.backward(np.array([1.0, 0.0, 0.0, 0.0]))
        array([ 0.75, -0.25, -0.25, -0.25])
        >>> m
        LogSoftmax(dim=0)
    """

    _name = "log_softmax"

    def _forward(self, input: Any) -> tuple[Any, Any]:
        axis = self._axis(input)
        log_y = _fa.log_softmax(input, axis)
        return log_y, (log_y, axis)

    def _backward(self, grad: Any, saved: Any, out: np.ndarray | None) -> Any:
        log_y, axis = saved
        return _fa.log_softmax_backward(grad, log_y, axis, out=out)
