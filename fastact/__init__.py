"""fastact: fast, accurate neural-network activations and their gradients for NumPy.

Every function follows PyTorch's definition (same formulas, same special cases) and NumPy's
conventions (any array-like in, float32/float64 kept, ``out=``, any strides, NumPy scalars for
0-d input). The numerics live in the compiled ``fastact._core``: SIMD kernels chosen at import
for this CPU (see :func:`simd_target`), split between OpenMP threads for large arrays, with the
GIL released.

Dtype rules (all functions): float32 and float64 run native kernels; float16 is computed in
float32 and rounded once; integer and bool inputs give float64 (except :func:`relu`, which keeps
integer dtypes and rejects bool); complex, object, string and datetime dtypes raise TypeError.
"""

from __future__ import annotations

import os as _os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost ~10 ms of import time
    from typing import Any


def _import_core() -> Any:
    # GNU OpenMP keeps idle workers spinning for ~300k iterations after each parallel region;
    # next to NumPy's BLAS threads (or on a busy machine) that spin steals the core they need.
    # Unless the user chose a policy, libgomp (which reads this once, as _core loads it) is told
    # to spin briefly; the variable is removed again so nothing loaded later sees it.
    chosen = "OMP_WAIT_POLICY" in _os.environ or "GOMP_SPINCOUNT" in _os.environ
    if not chosen:
        _os.environ["GOMP_SPINCOUNT"] = "10000"
    try:
        from fastact import _core as core
    except ImportError as exc:  # pragma: no cover - only a broken install gets here
        raise ImportError(
            "fastact's compiled core (fastact._core) could not be imported. Did you forget to "
            "compile it? Install fastact with `pip install .` (or `pip install -e .`) from the "
            "source tree; running Python from the source folder without an install cannot "
            f"import it. ({exc})"
        ) from exc
    finally:
        if not chosen:
            del _os.environ["GOMP_SPINCOUNT"]
    return core


_core = _import_core()

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "relu_backward",
    "leaky_relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "softmax_backward",
    "log_softmax_backward",
    "set_num_threads",
    "get_num_threads",
    "simd_target",
    "simd_targets",
]


def relu(x: Any, /, *, out: Any = None) -> Any:
    """Rectified linear unit, ``x < 0 ? 0 : x`` elementwise (``torch.relu``).

    NaN passes through and -0.0 stays -0.0. Integer dtypes are kept (as ``np.maximum(x, 0)``
    and torch do); bool raises TypeError.

    Args:
        x: array-like.
        out: optional ndarray of x's shape to write into (same_kind casting); returned as is.

    Returns:
        An ndarray in x's memory order (a NumPy scalar for 0-d input).

    Example:
        >>> fastact.relu(np.array([-1.0, 0.0, 2.0], dtype=np.float32))
        array([0., 0., 2.], dtype=float32)
    """
    return _core.relu(x, out)


def leaky_relu(x: Any, /, negative_slope: float = 0.01, *, out: Any = None) -> Any:
    """Leaky ReLU, ``x > 0 ? x : x * negative_slope`` elementwise (``torch.nn.functional.leaky_relu``).

    Any real slope is accepted (0, negative, greater than 1); it is rounded to the computation
    dtype first, as torch does.

    Example:
        >>> fastact.leaky_relu(np.array([-2.0, 3.0]), 0.1)
        array([-0.2,  3. ])
    """
    return _core.leaky_relu(x, negative_slope, out)


def sigmoid(x: Any, /, *, out: Any = None) -> Any:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise (``torch.sigmoid``, ``scipy.special.expit``).

    Within 2 ULP of the exact result for every input whose result is a normal number;
    sigmoid(+inf) = 1, sigmoid(-inf) = 0, sigmoid(NaN) = NaN; no floating-point warnings.

    Example:
        >>> fastact.sigmoid(np.array([-1.0, 0.0, 1.0], dtype=np.float32))
        array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return _core.sigmoid(x, out)


def tanh(x: Any, /, *, out: Any = None) -> Any:
    """Hyperbolic tangent elementwise (``torch.tanh``, ``np.tanh``).

    Within 2 ULP everywhere, subnormal inputs included (tanh(x) = x there);
    tanh(+-0) = +-0 and tanh(+-inf) = +-1.

    Example:
        >>> fastact.tanh(np.array([-1.0, 0.0, 1.0], dtype=np.float32))
        array([-0.7615942,  0.       ,  0.7615942], dtype=float32)
    """
    return _core.tanh(x, out)


def softmax(x: Any, /, axis: Any = -1, *, dtype: Any = None, out: Any = None) -> Any:
    """Softmax ``exp(x - max) / sum(exp(x - max))`` over ``axis`` (``torch.softmax``).

    Args:
        x: array-like.
        axis: int, tuple of ints, or None for all axes (default -1). Out of range raises
            numpy.exceptions.AxisError.
        dtype: if given, a floating dtype x is cast to first (integers are cast before the
            max is subtracted, so uint8 input cannot wrap around).
        out: optional ndarray of x's shape.

    The sum is accumulated in float64, so the error does not grow with the slice length
    (float32: within 4 ULP). A slice holding NaN or +inf, or made only of -inf, gives a NaN
    slice; -inf entries give 0. A 0-d input gives 1.0.

    Example:
        >>> fastact.softmax(np.array([[1.0, 2.0, 3.0]], dtype=np.float32), axis=1)
        array([[0.09003057, 0.24472848, 0.66524094]], dtype=float32)
    """
    return _core.softmax(x, axis, dtype, out)


def log_softmax(x: Any, /, axis: Any = -1, *, dtype: Any = None, out: Any = None) -> Any:
    """Log-softmax ``x - max - log(sum(exp(x - max)))`` over ``axis`` (``torch.log_softmax``).

    Same arguments and special cases as :func:`softmax`; -inf entries give -inf, a 0-d input
    gives 0.0. Absolute error within 2 ULP of max(abs(y), 1).

    Example:
        >>> fastact.log_softmax(np.array([1.0, 2.0, 3.0]))
        array([-2.40760596, -1.40760596, -0.40760596])
    """
    return _core.log_softmax(x, axis, dtype, out)


def relu_backward(grad: Any, y: Any, /, *, out: Any = None) -> Any:
    """Gradient of :func:`relu`: ``y <= 0 ? 0 : grad`` (``torch.ops.aten.threshold_backward``).

    ``y`` is relu's output (its input works too). A select, not a multiply: NaN or inf in
    ``grad`` passes where y > 0. ``grad`` broadcasts against ``y``.

    Example:
        >>> fastact.relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 1.])
    """
    return _core.relu_backward(grad, y, out)


def leaky_relu_backward(grad: Any, x: Any, /, negative_slope: float = 0.01, *, out: Any = None) -> Any:
    """Gradient of :func:`leaky_relu`: ``x > 0 ? grad : grad * negative_slope``.

    ``x`` is leaky_relu's input; the gradient at 0 is the slope. ``grad`` broadcasts against ``x``.

    Example:
        >>> fastact.leaky_relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), 0.1)
        array([0.1, 0.1, 1. ])
    """
    return _core.leaky_relu_backward(grad, x, negative_slope, out)


def sigmoid_backward(grad: Any, y: Any, /, *, out: Any = None) -> Any:
    """Gradient of :func:`sigmoid`: ``grad * (1 - y) * y`` with ``y = sigmoid(x)``.

    Bitwise equal to ``torch.ops.aten.sigmoid_backward``. ``grad`` broadcasts against ``y``.

    Example:
        >>> fastact.sigmoid_backward(np.ones(2), np.array([0.5, 0.25]))
        array([0.25  , 0.1875])
    """
    return _core.sigmoid_backward(grad, y, out)


def tanh_backward(grad: Any, y: Any, /, *, out: Any = None) -> Any:
    """Gradient of :func:`tanh`: ``grad * fma(-y, y, 1)`` with ``y = tanh(x)``.

    The fused multiply-add matches ``torch.ops.aten.tanh_backward`` bit for bit, on every SIMD
    target. ``grad`` broadcasts against ``y``.

    Example:
        >>> fastact.tanh_backward(np.ones(2), np.array([0.0, 0.5]))
        array([1.  , 0.75])
    """
    return _core.tanh_backward(grad, y, out)


def softmax_backward(grad: Any, y: Any, /, axis: Any = -1, *, out: Any = None) -> Any:
    """Gradient of :func:`softmax`: ``y * (grad - sum(grad * y, axis))`` with ``y = softmax(x, axis)``.

    ``grad`` and ``y`` must have the same shape (ValueError otherwise); the sum is accumulated
    in float64.

    Example:
        >>> y = fastact.softmax(np.array([1.0, 2.0, 3.0]))
        >>> fastact.softmax_backward(np.array([1.0, 0.0, 0.0]), y)
        array([ 0.08192507, -0.02203304, -0.05989202])
    """
    return _core.softmax_backward(grad, y, axis, out)


def log_softmax_backward(grad: Any, log_y: Any, /, axis: Any = -1, *, out: Any = None) -> Any:
    """Gradient of :func:`log_softmax`: ``grad - exp(log_y) * sum(grad, axis)``.

    ``log_y = log_softmax(x, axis)``; ``grad`` and ``log_y`` must have the same shape.

    Example:
        >>> ly = fastact.log_softmax(np.array([1.0, 2.0, 3.0]))
        >>> fastact.log_softmax_backward(np.array([1.0, 0.0, 0.0]), ly)
        array([ 0.90996943, -0.24472847, -0.66524096])
    """
    return _core.log_softmax_backward(grad, log_y, axis, out)


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads (n >= 1) for large arrays; small arrays always run on one.

    The default comes from FASTACT_NUM_THREADS, else OMP_NUM_THREADS, else the CPU count.
    Results are bitwise identical for any thread count. In a child process forked after
    fastact used threads, calls run on one thread (GNU OpenMP cannot be used after fork).
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The current thread limit (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def simd_target() -> str:
    """The SIMD kernel set in use, e.g. ``"avx2"``.

    Chosen at import as the best one this CPU runs; the environment variable FASTACT_SIMD
    forces another (import fails with a clear error if the CPU cannot run it).
    """
    return str(_core.simd_target())


def simd_targets() -> list[str]:
    """The SIMD kernel sets this CPU can run, best first (e.g. ``["avx2", "sse2", "scalar"]``)."""
    return list(_core.simd_targets())
