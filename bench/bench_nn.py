"""fastact's layers against PyTorch's, side by side: forward + backward of each layer, and one training
step of the example MLP (examples/train_mlp.py).

    python bench/bench_nn.py                        # float32, a 256 x 1024 activation, MLP batches 32 and 1024
    python bench/bench_nn.py --rows 4096 --threads 1

Three implementations of each case:

- ``torch.nn``: PyTorch's own module on a tensor, backward through ``torch.autograd.grad``;
- ``fastact.nn``: the NumPy layer, ``layer(x)`` then ``layer.backward(grad)``;
- ``fastact.torch``: fastact's drop-in module inside PyTorch's autograd, timed as ``torch.nn`` is.

For the MLP step, ``fastact.nn`` is the NumPy model (NumPy matrix products, hand-written Adam),
``torch.nn`` the PyTorch model, and ``fastact.torch`` the PyTorch model with fastact.torch's ReLU and
Sigmoid. Each call allocates its results, as each library does by default.

Method: every implementation is warmed up and its loop sized to about ``--loop-time`` seconds; then
``--repeat`` rounds time one loop of each in turn (round robin, so background load hits all alike), and
the table shows the median time per call and the ratios torch / fastact (above 1: fastact is faster).
Both libraries get the same thread count (``--threads``, default: fastact's default).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np

import fastact
import fastact.nn as fnn

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_mlp.py"
IMPLEMENTATIONS = ("torch.nn", "fastact.nn", "fastact.torch")


def load_example():
    spec = importlib.util.spec_from_file_location("train_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass needs the module registered
    spec.loader.exec_module(module)
    return module


def seconds_per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def loop_size(fn: Callable[[], object], loop_time: float) -> int:
    """Warm up, then the number of calls that takes about ``loop_time`` seconds."""
    fn()
    number = 1
    while True:
        elapsed = seconds_per_call(fn, number) * number
        if elapsed >= loop_time / 4 or number >= 1 << 20:
            return max(1, int(number * loop_time / max(elapsed, 1e-9)))
        number *= 4


def measure(calls: dict[str, Callable[[], object]], repeat: int, loop_time: float) -> dict[str, float]:
    """Median seconds per call of each callable, timed round robin."""
    numbers = {name: loop_size(fn, loop_time) for name, fn in calls.items()}
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            samples[name].append(seconds_per_call(fn, numbers[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def layer_cases(torch, rows: int, features: int, dtype: str):
    """(name, {implementation: callable}) for the forward + backward of each layer."""
    import fastact.torch as fat

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((rows, features)) * 3).astype(dtype)
    g = rng.standard_normal((rows, features)).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    gt = torch.from_numpy(g.copy())
    specs = [
        ("ReLU()", fnn.ReLU(), torch.nn.ReLU(), fat.ReLU()),
        ("LeakyReLU(0.1)", fnn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1), fat.LeakyReLU(0.1)),
        ("Sigmoid()", fnn.Sigmoid(), torch.nn.Sigmoid(), fat.Sigmoid()),
        ("Tanh()", fnn.Tanh(), torch.nn.Tanh(), fat.Tanh()),
        ("Softmax(dim=1)", fnn.Softmax(dim=1), torch.nn.Softmax(dim=1), fat.Softmax(dim=1)),
        ("LogSoftmax(dim=1)", fnn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1), fat.LogSoftmax(dim=1)),
    ]
    cases = []
    for name, ours, theirs, drop_in in specs:
        def numpy_step(layer=ours):
            layer(x)
            return layer.backward(g)

        def torch_step(module):
            return torch.autograd.grad(module(xt), xt, gt)[0]

        check_gradients(name, numpy_step(), torch_step(theirs).numpy(), torch_step(drop_in).numpy())
        cases.append((f"{name} fwd+bwd", {
            "torch.nn": lambda m=theirs: torch_step(m),
            "fastact.nn": numpy_step,
            "fastact.torch": lambda m=drop_in: torch_step(m),
        }))
    return cases


def check_gradients(name: str, *results: np.ndarray) -> None:
    """A benchmark of a wrong result is worthless: compare the three gradients loosely."""
    for other in results[1:]:
        if not np.allclose(results[0], other, rtol=1e-4, atol=1e-5):
            print(f"warning: {name}: the implementations' gradients differ", file=sys.stderr)


def mlp_cases(example, batch: int, dtype: str):
    problem = example.make_problem(samples=batch, epochs=1, seed=0, dtype=dtype)
    xb, tb = problem.x, problem.target
    models = {
        "torch.nn": example.TorchMLP(problem.init, activations="torch"),
        "fastact.nn": example.FastactMLP(problem.init),
        "fastact.torch": example.TorchMLP(problem.init, activations="fastact"),
    }
    return (f"MLP train step, batch {batch}", {name: (lambda m=m: m.step(xb, tb)) for name, m in models.items()})


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=256, help="rows of the layer benchmark's input (default 256)")
    parser.add_argument("--features", type=int, default=1024, help="columns of that input (default 1024)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--mlp-batches", default="32,1024", help="MLP batch sizes, comma-separated (default 32,1024)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: fastact's)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds; the median is shown (default 7)")
    parser.add_argument("--loop-time", type=float, default=0.02, help="seconds per timed loop (default 0.02)")
    args = parser.parse_args(argv)

    import torch

    threads = args.threads or fastact.get_num_threads()
    fastact.set_num_threads(threads)
    torch.set_num_threads(threads)
    example = load_example()

    cases: list[tuple[str, dict[str, Callable[[], object]]]] = []
    cases += layer_cases(torch, args.rows, args.features, args.dtype)
    cases += [mlp_cases(example, int(b), args.dtype) for b in args.mlp_batches.split(",") if b.strip()]

    print(f"fastact {getattr(fastact, '__version__', '?')} ({fastact.simd_target()}), torch {torch.__version__}, "
          f"numpy {np.__version__}, {platform.machine()}, {threads} thread(s), {args.dtype}; "
          f"layers on {args.rows} x {args.features}; median of {args.repeat}")
    header = f"{'case':<34}" + "".join(f"{name:>15}" for name in IMPLEMENTATIONS)
    header += f"{'torch/fa.nn':>13}{'torch/fa.torch':>16}"
    print(header)
    print("-" * len(header))
    for name, calls in cases:
        times = measure(calls, args.repeat, args.loop_time)
        row = f"{name:<34}" + "".join(f"{format_time(times[impl]):>15}" for impl in IMPLEMENTATIONS)
        row += f"{times['torch.nn'] / times['fastact.nn']:>12.2f}x"
        row += f"{times['torch.nn'] / times['fastact.torch']:>15.2f}x"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
