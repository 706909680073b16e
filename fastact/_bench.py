"""Side-by-side benchmark of fastact against NumPy, SciPy, PyTorch and ONNX Runtime.

This module is the one implementation behind ``python -m fastact bench`` and ``bench/bench_activations.py``.
It imports no peer at module import time: each peer is imported only when a benchmark asks for it, and
matplotlib only inside :func:`plot_results`.

Method, for every (function, shape, thread count):

* every implementation writes into the same preallocated, already-touched output array (peers without an
  ``out=`` argument, such as ``scipy.special.softmax``, pay for their allocation: that is what calling them
  costs);
* each implementation is warmed up, then its timed loop is sized so that one loop runs for about
  ``loop_time`` seconds (20-50 ms by default);
* ``repeat`` rounds follow, each timing one loop of every implementation in turn (round robin, so a change
  in background load hits all of them alike); the best (smallest) seconds per call is reported, as
  timeit advises: interference from other work only ever adds time, so the minimum is the estimate of
  what the code itself costs (on shared 2-core machines here the median moved by 40% between runs);
* the baseline is a plain copy moving the same bytes: ``np.copyto(dst, src)`` for one-input functions,
  ``np.add(a, b, out=c)`` for two-input ones (with several threads, the faster of that and the same copy
  split over a thread pool);
* after its warm-up each peer's output is compared with fastact's, loosely, so that a benchmark bug (a wrong
  axis, a wrong formula) shows up as a warning instead of a flattering number.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

ELEMENTWISE_FORWARD = ("relu", "leaky_relu", "sigmoid", "tanh")
SOFTMAX_FORWARD = ("softmax", "log_softmax")
ELEMENTWISE_BACKWARD = ("relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward")
SOFTMAX_BACKWARD = ("softmax_backward", "log_softmax_backward")
#: Every public function, in DESIGN.md order.
FUNCTIONS = ELEMENTWISE_FORWARD + SOFTMAX_FORWARD + ELEMENTWISE_BACKWARD + SOFTMAX_BACKWARD
SOFTMAX_LIKE = SOFTMAX_FORWARD + SOFTMAX_BACKWARD
TWO_INPUT = ELEMENTWISE_BACKWARD + SOFTMAX_BACKWARD
#: Names accepted by ``--functions`` besides the function names themselves.
FUNCTION_GROUPS = {
    "all": FUNCTIONS,
    "forward": ELEMENTWISE_FORWARD + SOFTMAX_FORWARD,
    "backward": ELEMENTWISE_BACKWARD + SOFTMAX_BACKWARD,
    "elementwise": ELEMENTWISE_FORWARD + ELEMENTWISE_BACKWARD,
    "softmax-family": SOFTMAX_LIKE,
}

PEERS = ("numpy", "scipy", "torch", "onnxruntime")
DEFAULT_SIZES = (4 << 10, 256 << 10, 4 << 20, 64 << 20)
DEFAULT_ROWS = (16, 128, 1024, 100_000)
DEFAULT_SOFTMAX_TOTAL = 256 << 10
DEFAULT_AXES = (-1, 0)
DEFAULT_REPEAT = 5
DEFAULT_LOOP_TIME = 0.03
NEGATIVE_SLOPE = 0.01
#: How many leading elements of each output are compared with fastact's (enough to catch a wrong formula
#: or axis, cheap enough at 64M elements).
CHECK_ELEMENTS = 1 << 20

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE]\+?\d+)?)\s*([kKmMgG]?)\s*$")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class BenchError(ValueError):
    """A bad benchmark request (unknown function or peer, bad size); the CLI turns it into exit status 2."""


# --------------------------------------------------------------------------------------------------------
# Parsing and formatting of sizes and names


def parse_size(text: str) -> int:
    """``"4096"``, ``"256K"``, ``"4M"``, ``"1e6"`` -> a positive element count (K, M, G are powers of 1024)."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise BenchError(f"bad size {text!r}: use a positive element count such as 4096, 256K, 4M or 1e6")
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if value < 1 or value != int(value):
        raise BenchError(f"bad size {text!r}: use a positive whole element count such as 4096, 256K or 4M")
    return int(value)


def format_size(n: int) -> str:
    """The inverse of :func:`parse_size` where it is exact: 4096 -> ``"4K"``, 100000 -> ``"100000"``."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def split_list(values: Iterable[str]) -> list[str]:
    """Accept both ``--x a b`` and ``--x a,b`` (and mixtures); drop empty items."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def resolve_functions(names: Iterable[str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for name in split_list(names):
        key = name.lower()
        if key in FUNCTIONS:
            chosen.append(key)
        elif key in FUNCTION_GROUPS:
            chosen.extend(FUNCTION_GROUPS[key])
        else:
            raise BenchError(
                f"unknown function {name!r}; choose from {', '.join(FUNCTIONS)} "
                f"or a group ({', '.join(FUNCTION_GROUPS)})"
            )
    if not chosen:
        raise BenchError("no function given; choose from " + ", ".join(FUNCTIONS))
    return tuple(dict.fromkeys(sorted(chosen, key=FUNCTIONS.index)))


def resolve_peers(names: Iterable[str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for name in split_list(names):
        key = name.lower()
        aliases = {"ort": "onnxruntime", "pytorch": "torch", "np": "numpy"}
        key = aliases.get(key, key)
        if key == "none":
            continue
        if key not in PEERS:
            raise BenchError(f"unknown peer {name!r}; choose from {', '.join(PEERS)} (or none)")
        chosen.append(key)
    return tuple(dict.fromkeys(chosen))


def resolve_threads(values: Iterable[str]) -> tuple[int, ...]:
    counts: list[int] = []
    for item in split_list(values):
        try:
            count = int(item)
        except ValueError:
            raise BenchError(f"bad thread count {item!r}: use a positive integer such as 1 or 2") from None
        if count < 1:
            raise BenchError(f"bad thread count {item!r}: use a positive integer such as 1 or 2")
        counts.append(count)
    if not counts:
        raise BenchError("no thread count given")
    return tuple(dict.fromkeys(counts))


def _format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


# --------------------------------------------------------------------------------------------------------
# Workloads


@dataclasses.dataclass
class Case:
    """One workload: a function on arrays of one shape and dtype (``axis`` is None for elementwise ones)."""

    function: str
    shape: tuple[int, ...]
    axis: int | None
    dtype: np.dtype
    inputs: tuple[np.ndarray, ...]
    out: np.ndarray

    @property
    def size(self) -> int:
        return int(self.out.size)

    @property
    def bytes_moved(self) -> int:
        """Bytes read plus bytes written by one call, at the least."""
        return (len(self.inputs) + 1) * self.size * self.dtype.itemsize

    @property
    def label(self) -> str:
        if self.axis is None:
            return format_size(self.size)
        return "x".join(str(n) for n in self.shape)

    @property
    def slice_length(self) -> int:
        return self.size if self.axis is None else self.shape[self.axis]


def _placed_empty(shape: tuple[int, ...], dtype: np.dtype, page_offset: int) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts ``page_offset`` bytes into a 4 KiB page.

    Giving each array of a workload its own offset keeps input and output streams at least 1 KiB apart
    modulo 4 KiB. Left to the allocator, a small array can land 16 bytes after its input modulo 4 KiB,
    where every store falsely aliases a later load ("4K aliasing") and a plain copy runs ten times slower:
    a property of the addresses, not of the code, that would hit or spare implementations by luck.
    """
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + 2 * 4096, dtype=np.uint8)
    start = (page_offset - raw.ctypes.data) % 4096
    return raw[start : start + nbytes].view(dtype).reshape(shape)


_PAGE_OFFSETS = {"x": 0, "grad": 1024, "y": 2048, "out": 3072}


def _uniform(shape: tuple[int, ...], dtype: np.dtype, low: float, high: float, seed: int, role: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = _placed_empty(shape, dtype, _PAGE_OFFSETS[role])
    flat = a.reshape(-1)
    chunk = 1 << 22  # generate in pieces: no full-size float64 temporary at 64M elements
    for start in range(0, flat.size, chunk):
        piece = rng.random(min(chunk, flat.size - start))
        piece *= high - low
        piece += low
        flat[start : start + piece.size] = piece
    return a


def _reference_forward(function: str, x: np.ndarray, axis: int | None) -> np.ndarray:
    """NumPy forward pass, used only to make realistic ``y`` inputs for the backward benchmarks."""
    with np.errstate(all="ignore"):
        if function == "relu":
            return np.maximum(x, x.dtype.type(0))
        if function == "sigmoid":
            return (1 / (1 + np.exp(-x))).astype(x.dtype)
        if function == "tanh":
            return np.tanh(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        if function == "softmax":
            e = np.exp(shifted)
            return e / e.sum(axis=axis, keepdims=True)
        if function == "log_softmax":
            return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    raise AssertionError(function)


class _Arrays:
    """Inputs and output buffers for one shape, shared by the functions benchmarked on it."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape = shape
        self.dtype = dtype
        self.x = _uniform(shape, dtype, -8.0, 8.0, seed=1, role="x")
        self._grad: np.ndarray | None = None
        self.out = _placed_empty(shape, dtype, _PAGE_OFFSETS["out"])
        self.out.fill(0)  # touch every page now, so no timed call pays for page faults
        self._forward: dict[tuple[str, int | None], np.ndarray] = {}

    @property
    def grad(self) -> np.ndarray:
        if self._grad is None:
            self._grad = _uniform(self.shape, self.dtype, -1.0, 1.0, seed=2, role="grad")
        return self._grad

    def forward(self, function: str, axis: int | None) -> np.ndarray:
        key = (function, axis)
        if key not in self._forward:
            self._forward.clear()  # keep at most one derived array alive
            y = _placed_empty(self.shape, self.dtype, _PAGE_OFFSETS["y"])
            y[...] = _reference_forward(function, self.x, axis)
            self._forward[key] = y
        return self._forward[key]

    def case(self, function: str, axis: int | None) -> Case:
        if function in ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"):
            inputs: tuple[np.ndarray, ...] = (self.x,)
        elif function == "leaky_relu_backward":
            inputs = (self.grad, self.x)
        else:
            inputs = (self.grad, self.forward(function[: -len("_backward")], axis))
        return Case(function, self.shape, axis, self.dtype, inputs, self.out)


# --------------------------------------------------------------------------------------------------------
# Implementations: fastact, the peers, the copy baseline


def fastact_callable(fa: Any, case: Case) -> Callable[[], Any]:
    fn = getattr(fa, case.function)
    if case.function == "leaky_relu":
        return functools.partial(fn, case.inputs[0], NEGATIVE_SLOPE, out=case.out)
    if case.function == "leaky_relu_backward":
        return functools.partial(fn, *case.inputs, NEGATIVE_SLOPE, out=case.out)
    if case.axis is not None:
        return functools.partial(fn, *case.inputs, axis=case.axis, out=case.out)
    return functools.partial(fn, *case.inputs, out=case.out)


class Peer:
    """A library fastact is compared with. ``load`` imports it (ImportError when it is not installed)."""

    name = ""

    def load(self) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def set_threads(self, n: int) -> None:
        """Make the peer use ``n`` threads from now on (peers without a thread pool ignore this)."""

    def make(self, case: Case, threads: int) -> Callable[[], Any] | None:
        """A no-argument callable computing ``case`` (into ``case.out`` where the peer allows it), or None
        when the peer has no such function for this dtype."""
        raise NotImplementedError


class NumpyPeer(Peer):
    """What a NumPy user writes, with ``out=`` wherever NumPy allows it (single-threaded by nature)."""

    name = "numpy"

    def load(self) -> None:
        pass

    def version(self) -> str:
        return np.__version__

    def make(self, case: Case, threads: int) -> Callable[[], Any] | None:
        o, ax, f = case.out, case.axis, case.function
        zero, one = case.dtype.type(0), case.dtype.type(1)
        slope = case.dtype.type(NEGATIVE_SLOPE)
        if f == "relu":
            return functools.partial(np.maximum, case.inputs[0], zero, out=o)
        if f == "tanh":
            return functools.partial(np.tanh, case.inputs[0], out=o)
        if f == "leaky_relu":
            (x,) = case.inputs

            def leaky_relu() -> None:
                np.multiply(x, slope, out=o)
                np.copyto(o, x, where=x > 0)

            return leaky_relu
        if f == "sigmoid":
            (x,) = case.inputs

            def sigmoid() -> None:  # 1 / (1 + exp(-x)), in place
                np.negative(x, out=o)
                np.exp(o, out=o)
                np.add(o, one, out=o)
                np.reciprocal(o, out=o)

            return sigmoid
        if f == "softmax":
            (x,) = case.inputs

            def softmax() -> None:
                np.subtract(x, x.max(axis=ax, keepdims=True), out=o)
                np.exp(o, out=o)
                np.divide(o, o.sum(axis=ax, keepdims=True), out=o)

            return softmax
        if f == "log_softmax":
            (x,) = case.inputs
            scratch = _placed_empty(case.shape, case.dtype, _PAGE_OFFSETS["y"])

            def log_softmax() -> None:
                np.subtract(x, x.max(axis=ax, keepdims=True), out=o)
                np.exp(o, out=scratch)
                np.subtract(o, np.log(scratch.sum(axis=ax, keepdims=True)), out=o)

            return log_softmax
        g, y = case.inputs
        if f == "relu_backward":

            def relu_backward() -> None:
                np.multiply(g, y > 0, out=o)

            return relu_backward
        if f == "leaky_relu_backward":

            def leaky_relu_backward() -> None:
                np.multiply(g, slope, out=o)
                np.copyto(o, g, where=y > 0)

            return leaky_relu_backward
        if f == "sigmoid_backward":

            def sigmoid_backward() -> None:  # g * (1 - y) * y
                np.subtract(one, y, out=o)
                np.multiply(g, o, out=o)
                np.multiply(o, y, out=o)

            return sigmoid_backward
        if f == "tanh_backward":

            def tanh_backward() -> None:  # g * (1 - y * y)
                np.multiply(y, y, out=o)
                np.subtract(one, o, out=o)
                np.multiply(g, o, out=o)

            return tanh_backward
        if f == "softmax_backward":

            def softmax_backward() -> None:  # y * (g - sum(g * y))
                np.multiply(g, y, out=o)
                s = o.sum(axis=ax, keepdims=True)
                np.subtract(g, s, out=o)
                np.multiply(o, y, out=o)

            return softmax_backward
        if f == "log_softmax_backward":

            def log_softmax_backward() -> None:  # g - exp(log_y) * sum(g)
                s = g.sum(axis=ax, keepdims=True)
                np.exp(y, out=o)
                np.multiply(o, s, out=o)
                np.subtract(g, o, out=o)

            return log_softmax_backward
        raise AssertionError(f)


class ScipyPeer(Peer):
    """``scipy.special.expit`` (with ``out=``), ``softmax`` and ``log_softmax`` (which allocate)."""

    name = "scipy"

    def load(self) -> None:
        import scipy.special

        self.special = scipy.special

    def version(self) -> str:
        import scipy

        return str(scipy.__version__)

    def make(self, case: Case, threads: int) -> Callable[[], Any] | None:
        if case.function == "sigmoid":
            return functools.partial(self.special.expit, case.inputs[0], out=case.out)
        if case.function == "softmax":
            return functools.partial(self.special.softmax, case.inputs[0], axis=case.axis)
        if case.function == "log_softmax":
            return functools.partial(self.special.log_softmax, case.inputs[0], axis=case.axis)
        return None


class TorchPeer(Peer):
    """PyTorch's CPU kernels on ``torch.from_numpy`` views (no copies), ``out=`` where the op has one."""

    name = "torch"

    def load(self) -> None:
        import torch

        self.torch = torch

    def version(self) -> str:
        return str(self.torch.__version__)

    def set_threads(self, n: int) -> None:
        self.torch.set_num_threads(n)

    def make(self, case: Case, threads: int) -> Callable[[], Any] | None:
        torch = self.torch
        aten = torch.ops.aten
        t = [torch.from_numpy(a) for a in case.inputs]
        o = torch.from_numpy(case.out)
        f, dim = case.function, case.axis
        if f == "relu":
            # torch.relu has no out=; ATen implements relu as clamp_min(self, 0), so this is its kernel.
            return functools.partial(torch.clamp_min, t[0], 0, out=o)
        if f == "leaky_relu":
            # The binding behind torch.nn.functional.leaky_relu, which accepts out=.
            return functools.partial(torch._C._nn.leaky_relu, t[0], NEGATIVE_SLOPE, out=o)
        if f == "sigmoid":
            return functools.partial(torch.sigmoid, t[0], out=o)
        if f == "tanh":
            return functools.partial(torch.tanh, t[0], out=o)
        if f == "softmax":
            return functools.partial(torch.softmax, t[0], dim, out=o)
        if f == "log_softmax":
            return functools.partial(torch.log_softmax, t[0], dim, out=o)
        # The backward ops autograd runs, called directly.
        if f == "relu_backward":
            return functools.partial(aten.threshold_backward.grad_input, t[0], t[1], 0, grad_input=o)
        if f == "leaky_relu_backward":
            return functools.partial(
                aten.leaky_relu_backward.grad_input, t[0], t[1], NEGATIVE_SLOPE, False, grad_input=o
            )
        if f == "sigmoid_backward":
            return functools.partial(aten.sigmoid_backward.grad_input, t[0], t[1], grad_input=o)
        if f == "tanh_backward":
            return functools.partial(aten.tanh_backward.grad_input, t[0], t[1], grad_input=o)
        if f == "softmax_backward":
            return functools.partial(torch._softmax_backward_data, t[0], t[1], dim, o.dtype, grad_input=o)
        if f == "log_softmax_backward":
            return functools.partial(torch._log_softmax_backward_data, t[0], t[1], dim, o.dtype, out=o)
        raise AssertionError(f)


class OnnxRuntimePeer(Peer):
    """One-node ONNX graphs (built with the ``onnx`` helper API) on the CPU execution provider, with IO
    binding to the benchmark's own NumPy buffers, so no copy is timed. Forward ops only: the backward ops
    are not standard ONNX operators."""

    name = "onnxruntime"
    OPSET = 17
    IR_VERSION = 8  # old enough for every onnxruntime that runs opset 17
    OPS = {
        "relu": ("Relu", {}),
        "leaky_relu": ("LeakyRelu", {"alpha": NEGATIVE_SLOPE}),
        "sigmoid": ("Sigmoid", {}),
        "tanh": ("Tanh", {}),
        "softmax": ("Softmax", {}),
        "log_softmax": ("LogSoftmax", {}),
    }

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self._warned: set = set()

    def load(self) -> None:
        import onnx  # noqa: F401  (both are needed: onnx builds the graphs, onnxruntime runs them)
        import onnxruntime

        self.onnx = onnx
        self.ort = onnxruntime

    def version(self) -> str:
        return f"{self.ort.__version__} (onnx {self.onnx.__version__})"

    def make(self, case: Case, threads: int) -> Callable[[], Any] | None:
        if case.function not in self.OPS:
            return None
        onnx, ort = self.onnx, self.ort
        helper = onnx.helper
        op, attrs = self.OPS[case.function]
        if case.axis is not None:
            attrs = dict(attrs, axis=case.axis)
        elem = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.float64): onnx.TensorProto.DOUBLE}[case.dtype]
        shape = list(case.shape)
        graph = helper.make_graph(
            [helper.make_node(op, ["X"], ["Y"], **attrs)],
            f"fastact_bench_{op}",
            [helper.make_tensor_value_info("X", elem, shape)],
            [helper.make_tensor_value_info("Y", elem, shape)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.OPSET)])
        model.ir_version = self.IR_VERSION
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # e.g. an operator without a kernel for this dtype
            key = (case.function, str(case.dtype))
            if key not in self._warned:
                self._warned.add(key)
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.warn(f"onnxruntime has no {op} for {case.dtype}; skipping it there ({first_line[:120]})")
            return None
        (x,) = case.inputs
        binding = session.io_binding()
        binding.bind_input("X", "cpu", 0, case.dtype.type, shape, x.ctypes.data)
        binding.bind_output("Y", "cpu", 0, case.dtype.type, shape, case.out.ctypes.data)
        run = functools.partial(session.run_with_iobinding, binding)
        run._keep_alive = (session, binding, x, case.out)  # type: ignore[attr-defined]
        return run


def make_peer(name: str, warn: Callable[[str], None]) -> Peer:
    if name == "numpy":
        return NumpyPeer()
    if name == "scipy":
        return ScipyPeer()
    if name == "torch":
        return TorchPeer()
    if name == "onnxruntime":
        return OnnxRuntimePeer(warn)
    raise BenchError(f"unknown peer {name!r}")


def copy_callables(case: Case, threads: int, pool: ThreadPoolExecutor | None) -> dict[str, Callable[[], Any]]:
    """The plain copy moving the bytes ``case`` moves: one variant per way of doing it."""
    # On flat views of the (contiguous) arrays: NumPy copies a (4096, 16) array row by row, ten times
    # slower than the same bytes as one run, and that is not the cost of moving them.
    flat_out = case.out.reshape(-1)
    flat_in = [a.reshape(-1) for a in case.inputs]
    if len(flat_in) == 1:
        single: Callable[[], Any] = functools.partial(np.copyto, flat_out, flat_in[0])
    else:
        single = functools.partial(np.add, flat_in[0], flat_in[1], out=flat_out)
    variants = {"single-thread": single}
    if threads > 1 and pool is not None and case.size >= 4 * threads:
        # NumPy releases the GIL in copyto/add, so chunks on a thread pool copy in parallel.
        bounds = np.linspace(0, case.size, threads + 1).astype(int)
        chunks = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        if len(flat_in) == 1:
            src = flat_in[0]

            def one(s: slice) -> None:
                np.copyto(flat_out[s], src[s])

        else:
            a, b = flat_in

            def one(s: slice) -> None:
                np.add(a[s], b[s], out=flat_out[s])

        def threaded() -> None:
            for _ in pool.map(one, chunks):
                pass

        variants[f"{threads}-thread pool"] = threaded
    return variants


# --------------------------------------------------------------------------------------------------------
# Timing


# Before each timed loop: long enough for the worker threads of the implementation timed before (OpenMP's,
# ONNX Runtime's pool), which spin for a while after their last task, to go to sleep. On a 2-core machine a
# spinning pool from the previous loop takes a core from the next one: without the pause fastact's 4K
# relu_backward at 2 threads measured 0.55x its 1-thread speed, with torch and onnxruntime timed between.
SETTLE_SECONDS = 0.02

# After the pause, calls are made untimed for this long before the timed loop. An idle core of a virtual
# machine is handed back to the host, and the first calls that need it again wait for it: on this
# 2-core VM each of the first 3-5 two-thread calls took 1-3 ms after a 0.1 s pause (60 us warm), which
# put fastact's two-thread relu on 1M floats at 0.2x its one-thread speed in some loops.
WARM_SECONDS = 0.005


def _time_loop(fn: Callable[[], Any], loops: int) -> float:
    time.sleep(SETTLE_SECONDS)
    timer = time.perf_counter
    warm_until = timer() + WARM_SECONDS
    fn()
    while timer() < warm_until:
        fn()
    start = timer()
    for _ in itertools.repeat(None, loops):
        fn()
    return timer() - start


def calibrate(fn: Callable[[], Any], loop_time: float) -> int:
    """Warm ``fn`` up and return the number of calls that makes one timed loop last about ``loop_time``
    seconds (at least 2/3 of it; a single call when one call already takes that long)."""
    fn()
    loops = 1
    while True:
        elapsed = _time_loop(fn, loops)
        if elapsed >= loop_time * 2 / 3:
            return loops
        grow = loop_time / elapsed if elapsed > 0 else 100.0
        loops = max(loops + 1, min(int(loops * grow) + 1, loops * 100))


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None = None, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = max(total, 1)
        self.done = 0
        self.start = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.start
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:5.0f}s {label}"
        columns = self._columns()
        self.stream.write("\r" + line[:columns].ljust(columns))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * self._columns() + "\r")
            self.stream.flush()

    @staticmethod
    def _columns() -> int:
        return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


# --------------------------------------------------------------------------------------------------------
# The benchmark


@dataclasses.dataclass
class Config:
    functions: tuple[str, ...] = FUNCTIONS
    sizes: tuple[int, ...] = DEFAULT_SIZES
    rows: tuple[int, ...] = DEFAULT_ROWS
    softmax_total: int = DEFAULT_SOFTMAX_TOTAL
    axes: tuple[int, ...] = DEFAULT_AXES
    dtype: str = "float32"
    threads: tuple[int, ...] = (1,)
    peers: tuple[str, ...] = PEERS
    repeat: int = DEFAULT_REPEAT
    loop_time: float = DEFAULT_LOOP_TIME

    def shapes(self) -> list[tuple[tuple[int, ...], int | None, tuple[str, ...]]]:
        """(shape, axis, functions) for every workload group, elementwise groups first."""
        groups: list[tuple[tuple[int, ...], int | None, tuple[str, ...]]] = []
        elementwise = tuple(f for f in self.functions if f not in SOFTMAX_LIKE)
        softmax = tuple(f for f in self.functions if f in SOFTMAX_LIKE)
        if elementwise:
            groups.extend(((n,), None, elementwise) for n in self.sizes)
        if softmax:
            for length in self.rows:
                slices = max(1, round(self.softmax_total / length))
                for axis in self.axes:
                    shape = (slices, length) if axis == -1 else (length, slices)
                    groups.append((shape, axis, softmax))
        return groups


def _agrees(result: np.ndarray, reference: np.ndarray) -> tuple[bool, float]:
    got = result.reshape(-1)[: reference.size]
    with np.errstate(all="ignore"):
        diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
        close = np.isclose(got, reference, rtol=1e-3, atol=1e-5, equal_nan=True)
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    return bool(close.all()), worst


def load_peers(names: Sequence[str], warn: Callable[[str], None]) -> list[Peer]:
    """Import the requested peers; name the missing ones through ``warn`` and leave them out."""
    loaded: list[Peer] = []
    for name in names:
        peer = make_peer(name, warn)
        try:
            peer.load()
        except ImportError as exc:
            warn(f"peer {name!r} is not installed, skipping it ({exc})")
            continue
        loaded.append(peer)
    return loaded


def run(
    fa: Any,
    config: Config,
    peers: Sequence[Peer],
    warn: Callable[[str], None],
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Measure every (function, shape, thread count, implementation); return one dict per measurement."""
    dtype = np.dtype(config.dtype)
    results: list[dict[str, Any]] = []
    saved_threads = fa.get_num_threads()
    pool = ThreadPoolExecutor(max(config.threads)) if max(config.threads) > 1 else None
    try:
        with np.errstate(all="ignore"):
            for shape, axis, functions in config.shapes():
                arrays = _Arrays(shape, dtype)
                for function in functions:
                    case = arrays.case(function, axis)
                    rows = []
                    for threads in config.threads:
                        rows.extend(_run_case(fa, case, threads, peers, config, pool, warn, progress))
                    if len(config.threads) > 1:
                        alone = _fastact_alone(fa, case, config)
                        for row in rows:
                            if row["impl"] == "fastact":
                                row["alone_gelem_per_s"] = alone[row["threads"]]
                    results.extend(rows)
                del arrays
    finally:
        fa.set_num_threads(saved_threads)
        if pool is not None:
            pool.shutdown()
    _add_ratios(results)
    return results


def _fastact_alone(fa: Any, case: Case, config: Config) -> dict[int, float]:
    """fastact's Gelem/s at each thread count, timed round robin between the thread counts with no peer in
    between: the scaling table's numbers. (Timed among the peers, fastact's 1- and 2-thread rows also carry
    whatever the peers' worker pools leave running; here both see the same machine.)"""
    fn = fastact_callable(fa, case)
    loops = {}
    for threads in config.threads:
        fa.set_num_threads(threads)
        loops[threads] = calibrate(fn, config.loop_time)
    best = {threads: float("inf") for threads in config.threads}
    for _ in range(config.repeat):
        for threads in config.threads:
            fa.set_num_threads(threads)
            best[threads] = min(best[threads], _time_loop(fn, loops[threads]) / loops[threads])
    return {threads: case.size / seconds / 1e9 for threads, seconds in best.items()}


def count_steps(config: Config, peers: Sequence[Peer]) -> int:
    """An upper bound on the number of measurements :func:`run` makes (for the progress bar)."""
    cases = sum(len(functions) for _, _, functions in config.shapes()) * len(config.threads)
    return cases * (len(peers) + 2)


def _run_case(
    fa: Any,
    case: Case,
    threads: int,
    peers: Sequence[Peer],
    config: Config,
    pool: ThreadPoolExecutor | None,
    warn: Callable[[str], None],
    progress: Progress | None,
) -> list[dict[str, Any]]:
    fa.set_num_threads(threads)
    for peer in peers:
        peer.set_threads(threads)
    where = f"{case.function} {case.label}" + ("" if case.axis is None else f" axis {case.axis}")
    where += f" {threads} thr"

    impls: dict[str, Callable[[], Any]] = {"fastact": fastact_callable(fa, case)}
    for peer in peers:
        fn = peer.make(case, threads)
        if fn is not None:
            impls[peer.name] = fn
    copies = copy_callables(case, threads, pool)

    # Warm up and size the loops; check each peer against fastact on the way.
    loops: dict[str, int] = {}
    agreement: dict[str, bool | None] = {}
    reference: np.ndarray | None = None
    for name, fn in impls.items():
        case.out.fill(0)
        loops[name] = calibrate(fn, config.loop_time)
        returned = fn()
        result = returned if isinstance(returned, np.ndarray) and returned.shape == case.out.shape else case.out
        if name == "fastact":
            reference = result.reshape(-1)[:CHECK_ELEMENTS].copy()
            agreement[name] = None
        else:
            assert reference is not None
            ok, worst = _agrees(result, reference)
            agreement[name] = ok
            if not ok:
                warn(f"{name} and fastact disagree on {where} (max abs difference {worst:.3g})")
        if progress is not None:
            progress.step(f"{where} {name}")
    for name, fn in copies.items():
        loops["copy:" + name] = calibrate(fn, config.loop_time)
    if progress is not None:
        progress.step(f"{where} copy")

    # Round robin: each round times one loop of every implementation.
    timed: dict[str, Callable[[], Any]] = dict(impls)
    timed.update(("copy:" + name, fn) for name, fn in copies.items())
    samples: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(config.repeat):
        for name, fn in timed.items():
            samples[name].append(_time_loop(fn, loops[name]) / loops[name])

    best = {name: min(times) for name, times in samples.items()}
    copy_variant = min(copies, key=lambda v: best["copy:" + v])
    rows: list[dict[str, Any]] = []
    for name in list(impls) + ["copy"]:
        key = "copy:" + copy_variant if name == "copy" else name
        seconds = best[key]
        row = {
            "function": case.function,
            "shape": list(case.shape),
            "size": case.size,
            "label": case.label,
            "axis": case.axis,
            "slice_length": case.slice_length,
            "dtype": str(case.dtype),
            "threads": threads,
            "impl": name,
            "seconds": seconds,
            "gelem_per_s": case.size / seconds / 1e9,
            "gbytes_per_s": case.bytes_moved / seconds / 1e9,
            "bytes_moved": case.bytes_moved,
            "loops": loops[key],
            "times": samples[key],
            "agrees_with_fastact": agreement.get(name),
        }
        if name == "copy":
            row["copy_variant"] = copy_variant
            row["copy_op"] = "np.copyto(dst, src)" if len(case.inputs) == 1 else "np.add(a, b, out=c)"
        rows.append(row)
    return rows


def _add_ratios(results: list[dict[str, Any]]) -> None:
    """Add ``fastact_over_impl`` (> 1: fastact is faster) and ``fraction_of_copy`` to every row."""
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for row in results:
        key = (row["function"], tuple(row["shape"]), row["axis"], row["dtype"], row["threads"])
        groups.setdefault(key, {})[row["impl"]] = row
    for rows in groups.values():
        fast = rows.get("fastact")
        copy = rows.get("copy")
        for row in rows.values():
            row["fastact_over_impl"] = (
                fast["gelem_per_s"] / row["gelem_per_s"] if fast is not None and row["impl"] != "fastact" else None
            )
            row["fraction_of_copy"] = row["gelem_per_s"] / copy["gelem_per_s"] if copy is not None else None


# --------------------------------------------------------------------------------------------------------
# Reporting


IMPL_ORDER = ("fastact",) + PEERS + ("copy",)


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    axis_order = -1 if row["axis"] is None else (0 if row["axis"] == -1 else 1 + row["axis"])
    return (
        FUNCTIONS.index(row["function"]),
        axis_order,
        row["slice_length"],
        row["size"],
        row["threads"],
        IMPL_ORDER.index(row["impl"]) if row["impl"] in IMPL_ORDER else len(IMPL_ORDER),
    )


TABLE_COLUMNS = ("function", "size", "axis", "thr", "impl", "Gelem/s", "GB/s", "per call", "fastact/impl", "of copy")


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a fixed-width text table, one row per measurement, grouped by function."""
    rows = sorted(results, key=_sort_key)
    lines: list[list[str]] = []
    previous_function = None
    for row in rows:
        if previous_function is not None and row["function"] != previous_function:
            lines.append([])
        previous_function = row["function"]
        ratio = row.get("fastact_over_impl")
        fraction = row.get("fraction_of_copy")
        lines.append(
            [
                row["function"],
                row["label"],
                "-" if row["axis"] is None else str(row["axis"]),
                str(row["threads"]),
                row["impl"] + ("" if row.get("agrees_with_fastact") is not False else " (!)"),
                f"{row['gelem_per_s']:.3f}",
                f"{row['gbytes_per_s']:.1f}",
                _format_seconds(row["seconds"]),
                "-" if ratio is None else f"{ratio:.2f}x",
                "-" if fraction is None else f"{100 * fraction:.0f}%",
            ]
        )
    widths = [len(c) for c in TABLE_COLUMNS]
    for line in lines:
        for i, cell in enumerate(line):
            widths[i] = max(widths[i], len(cell))
    left = {0, 1, 4}

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [render(TABLE_COLUMNS), render(["-" * w for w in widths])]
    out.extend(render(line).rstrip() if line else "" for line in lines)
    return "\n".join(out)


def format_scaling(results: Sequence[dict[str, Any]]) -> str:
    """fastact's throughput at each thread count, timed alone (see :func:`_fastact_alone`), and the speedup over
    the first one (empty string when only one thread count was measured)."""
    counts = sorted({row["threads"] for row in results})
    if len(counts) < 2:
        return ""
    table: dict[tuple[Any, ...], dict[int, float]] = {}
    labels: dict[tuple[Any, ...], tuple[str, str, str]] = {}
    for row in results:
        if row["impl"] != "fastact":
            continue
        key = _sort_key(row)[:4]
        table.setdefault(key, {})[row["threads"]] = row.get("alone_gelem_per_s", row["gelem_per_s"])
        labels[key] = (row["function"], row["label"], "-" if row["axis"] is None else str(row["axis"]))
    header = ["function", "size", "axis"] + [f"{n} thr Gelem/s" for n in counts]
    header += [f"{n}/{counts[0]} thr" for n in counts[1:]]
    lines = []
    for key in sorted(table):
        per = table[key]
        cells = list(labels[key]) + [f"{per[n]:.3f}" if n in per else "-" for n in counts]
        base = per.get(counts[0])
        cells += [f"{per[n] / base:.2f}x" if base and n in per else "-" for n in counts[1:]]
        lines.append(cells)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = ["fastact thread scaling (fastact alone, thread counts timed in turn):", render(header), render(["-" * w for w in widths])]
    out.extend(render(line) for line in lines)
    return "\n".join(out)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _caches() -> dict[str, str]:
    caches: dict[str, str] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return caches
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(os.path.join(base, entry, "level")) as f:
                level = f.read().strip()
            with open(os.path.join(base, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(base, entry, "size")) as f:
                size = f.read().strip()
        except OSError:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[name] = size
    return caches


def machine_info(fa: Any, peers: Sequence[Peer]) -> dict[str, Any]:
    try:
        affinity: int | None = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "caches": _caches(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastact": getattr(fa, "__version__", "unknown"),
        "simd_target": fa.simd_target(),
        "simd_targets": list(fa.simd_targets()),
        "fastact_default_threads": fa.get_num_threads(),
        "peers": {peer.name: peer.version() for peer in peers},
    }


def header_line(info: dict[str, Any], config: Config) -> str:
    threads = ",".join(str(n) for n in config.threads)
    return (
        f"fastact {info['fastact']} ({info['simd_target']}) on {info['cpu_model']}; {config.dtype}, "
        f"threads {threads}, best of {config.repeat} run{'s' if config.repeat > 1 else ''}"
    )


LEGEND = (
    "Gelem/s: 1e9 elements per second; GB/s: bytes read + written per second; fastact/impl > 1: fastact is\n"
    "faster; of copy: throughput as a share of a plain copy moving the same bytes (np.copyto for one input,\n"
    "np.add(a, b, out=c) for two). Elementwise sizes are element counts (K, M = 2^10, 2^20); softmax sizes\n"
    "are the array shape, reduced along 'axis'. (!) marks an output that differs from fastact's."
)


IMPL_COLORS = {
    "fastact": "tab:blue",
    "numpy": "tab:orange",
    "scipy": "tab:green",
    "torch": "tab:red",
    "onnxruntime": "tab:purple",
    "copy": "black",
}
IMPL_MARKERS = {"fastact": "o", "numpy": "s", "scipy": "^", "torch": "D", "onnxruntime": "v", "copy": "x"}


def plot_results(results: Sequence[dict[str, Any]], path: str, title: str = "") -> None:
    """Throughput against size, log-log, one panel per function (per axis for softmax-like ones), one line
    per implementation and thread count. Imports matplotlib (ImportError when it is missing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    panels: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in results:
        panels.setdefault(_sort_key(row)[:2], []).append(row)
    keys = sorted(panels)
    ncols = min(3, len(keys))
    nrows = (len(keys) + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows + 0.9), squeeze=False, constrained_layout=True
    )
    thread_counts = sorted({row["threads"] for row in results})
    styles = ["-", "--", ":", "-."]
    legend: dict[str, Any] = {}
    for ax, key in zip(axes.flat, keys):
        rows = panels[key]
        first = rows[0]
        softmax_like = first["axis"] is not None
        lines: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for row in rows:
            lines.setdefault((row["threads"], row["impl"]), []).append(row)
        order = sorted(lines, key=lambda k: (k[0], IMPL_ORDER.index(k[1]) if k[1] in IMPL_ORDER else 99))
        for threads, impl in order:
            pts = sorted(lines[(threads, impl)], key=lambda r: r["slice_length"] if softmax_like else r["size"])
            xs = [r["slice_length"] if softmax_like else r["size"] for r in pts]
            ys = [r["gelem_per_s"] for r in pts]
            label = impl if len(thread_counts) == 1 else f"{impl}, {threads} thread{'s' if threads > 1 else ''}"
            (line,) = ax.plot(
                xs,
                ys,
                linestyle=styles[thread_counts.index(threads) % len(styles)],
                marker=IMPL_MARKERS.get(impl, "."),
                color=IMPL_COLORS.get(impl),
                linewidth=2.4 if impl == "fastact" else 1.3,
                markersize=5,
                label=label,
            )
            legend.setdefault(label, line)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # x ticks at the measured sizes, labelled as on the command line (4K, 256K, ...); y ticks 1-2-5.
        measured = sorted({r["slice_length"] if softmax_like else r["size"] for r in rows})
        ax.xaxis.set_major_locator(ticker.FixedLocator(measured))
        ax.xaxis.set_major_formatter(ticker.FixedFormatter([format_size(n) for n in measured]))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        name = first["function"]
        if softmax_like:
            name += ", last axis" if first["axis"] == -1 else f", axis {first['axis']}"
            ax.set_xlabel("slice length (elements reduced)")
        else:
            ax.set_xlabel("array size (elements)")
        ax.set_title(name)
        ax.set_ylabel("Gelem/s (higher is better)")
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", axis="y", alpha=0.12)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    labels = sorted(legend, key=lambda k: [IMPL_ORDER.index(i) for i in IMPL_ORDER if k.startswith(i)][:1] + [k])
    fig.legend([legend[k] for k in labels], labels, loc="outside lower center", ncol=min(len(labels), 6))
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
