"""Train a small multilayer perceptron with NumPy and fastact.nn, and optionally the same one in PyTorch.

The model is Linear(64 -> 128), ReLU, Linear(128 -> 2), Sigmoid, trained with binary cross-entropy
and Adam (lr=0.01) for 10 epochs in batches of 32, on random data made from a fixed seed: the two
targets of each sample are the signs of two random linear functions of its inputs, with a little
noise, so there is something to learn and the loss goes down.

The activations and their gradients are fastact's (``fastact.nn.ReLU``, ``fastact.nn.Sigmoid``); the
linear layers, the loss and the optimiser are a few lines of NumPy below, written to do what
``torch.nn.Linear``, ``torch.nn.BCELoss`` and ``torch.optim.Adam`` do, in the same order.

    python examples/train_mlp.py                    # train with fastact, print the loss of each epoch
    python examples/train_mlp.py --compare-torch    # the same model, same start, same batches in PyTorch

``--compare-torch`` prints both loss columns and exits with status 1 if they differ by more than
1e-5. The default dtype is float64: the two runs then differ only by the summation order inside
matrix products (about 1e-16 relative), and the losses agree to ~1e-16 after 10 epochs. float32 also
runs (``--dtype float32``), but there a last-bit difference anywhere (an activation within its ULP
bound, a different summation order) is amplified by Adam, which divides tiny gradients by their own
size: the columns then drift apart by up to ~1e-4 as the loss nears zero, so 1e-5 is not a safe bound.
``--torch-activations fastact`` runs the PyTorch model with fastact.torch's ReLU and Sigmoid instead.

The training code is importable: :func:`make_problem` builds the data, weights and batch order;
:func:`train_fastact` and :func:`train_torch` return the per-epoch mean losses as lists of floats;
:class:`FastactMLP` and :class:`TorchMLP` train one batch per ``step`` (bench/bench_nn.py times that).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastact import nn

IN_FEATURES, HIDDEN, OUT_FEATURES = 64, 128, 2


@dataclass
class Problem:
    """Everything both trainings share: the data, the initial weights and the batch order."""

    x: np.ndarray  # (samples, 64)
    target: np.ndarray  # (samples, 2), 0.0 or 1.0
    init: dict[str, np.ndarray]  # w1 (128, 64), b1 (128,), w2 (2, 128), b2 (2,) - torch's layout
    orders: list[np.ndarray]  # one permutation of the samples per epoch

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype


def make_problem(samples: int = 1024, epochs: int = 10, seed: int = 0, dtype: str = "float64") -> Problem:
    """Random data, a learnable target, torch.nn.Linear's default initialisation, and the shuffles."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, IN_FEATURES))
    teacher = rng.standard_normal((IN_FEATURES, OUT_FEATURES))
    noise = 0.5 * rng.standard_normal((samples, OUT_FEATURES))
    target = (x @ teacher / np.sqrt(IN_FEATURES) + noise > 0).astype(np.float64)

    def linear_init(fan_out: int, fan_in: int) -> tuple:
        # torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
        # and the bias is drawn from the same range.
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)

    w1, b1 = linear_init(HIDDEN, IN_FEATURES)
    w2, b2 = linear_init(OUT_FEATURES, HIDDEN)
    init = {name: a.astype(dtype) for name, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))}
    orders = [rng.permutation(samples) for _ in range(epochs)]
    return Problem(x.astype(dtype), target.astype(dtype), init, orders)


def batches(problem: Problem, epoch: int, batch_size: int):
    """The (x, target) batches of one epoch, the last one possibly short."""
    order = problem.orders[epoch]
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield problem.x[index], problem.target[index]


# -- the NumPy side ------------------------------------------------------------------------------
class Linear:
    """``x @ weight.T + bias`` (torch.nn.Linear's layout), with its backward pass."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight.copy(), bias.copy()
        self.grad_weight, self.grad_bias = np.zeros_like(weight), np.zeros_like(bias)
        self._x: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad: np.ndarray) -> np.ndarray:
        assert self._x is not None, "Linear.backward() before forward"
        self.grad_weight[...] = grad.T @ self._x
        self.grad_bias[...] = grad.sum(axis=0)
        return grad @ self.weight


class BCELoss:
    """torch.nn.BCELoss (mean reduction): log terms clamped at -100, gradient denominator at 1e-12."""

    def __call__(self, p: np.ndarray, target: np.ndarray) -> float:
        self._p, self._target = p, target
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped as torch does
            log_p = np.maximum(np.log(p), -100)
            log_1mp = np.maximum(np.log1p(-p), -100)
        return float(np.mean((target - 1) * log_1mp - target * log_p))

    def backward(self) -> np.ndarray:
        p, target = self._p, self._target
        return (p - target) / np.maximum((1 - p) * p, 1e-12) / p.size


class Adam:
    """torch.optim.Adam with its defaults (betas=(0.9, 0.999), eps=1e-8, no weight decay), same steps."""

    def __init__(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float = 0.01,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.grads = list(params), list(grads)
        self.lr, self.beta1, self.beta2, self.eps = lr, betas[0], betas[1], eps
        self.exp_avg = [np.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p) for p in self.params]
        self.step_count = 0

    def step(self) -> None:
        self.step_count += 1
        bias_correction1 = 1 - self.beta1**self.step_count
        bias_correction2_sqrt = (1 - self.beta2**self.step_count) ** 0.5
        step_size = self.lr / bias_correction1
        for param, grad, m, v in zip(self.params, self.grads, self.exp_avg, self.exp_avg_sq):
            m += (1 - self.beta1) * (grad - m)  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
            param -= step_size * (m / denom)


class FastactMLP:
    """The model, its loss and its optimiser in NumPy + fastact.nn; :meth:`step` trains on one batch."""

    def __init__(self, init: dict[str, np.ndarray], lr: float = 0.01) -> None:
        self.fc1 = Linear(init["w1"], init["b1"])
        self.act1 = nn.ReLU()
        self.fc2 = Linear(init["w2"], init["b2"])
        self.act2 = nn.Sigmoid()
        self.loss_fn = BCELoss()
        self.optimizer = Adam(
            [self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias],
            [self.fc1.grad_weight, self.fc1.grad_bias, self.fc2.grad_weight, self.fc2.grad_bias],
            lr=lr,
        )

    def step(self, x: np.ndarray, target: np.ndarray) -> float:
        """Forward, backward and one Adam update on a batch; returns the batch's loss."""
        p = self.act2(self.fc2(self.act1(self.fc1(x))))
        loss = self.loss_fn(p, target)
        grad = self.loss_fn.backward()
        grad = self.act2.backward(grad, out=grad)  # elementwise: the gradient can be updated in place
        grad = self.fc2.backward(grad)
        grad = self.act1.backward(grad, out=grad)
        self.fc1.backward(grad)
        self.optimizer.step()
        return loss


def train_fastact(problem: Problem, lr: float = 0.01, batch_size: int = 32) -> list[float]:
    """Train with NumPy + fastact.nn; return the mean training loss of each epoch."""
    model = FastactMLP(problem.init, lr)
    losses = []
    for epoch in range(len(problem.orders)):
        total = 0.0
        for xb, tb in batches(problem, epoch, batch_size):
            total += model.step(xb, tb) * len(xb)
        losses.append(total / len(problem.x))
    return losses


# -- the PyTorch side ----------------------------------------------------------------------------
class TorchMLP:
    """The same model in PyTorch, from the same initial weights; ``activations`` is "torch" (torch.nn's
    ReLU and Sigmoid) or "fastact" (fastact.torch's). :meth:`step` trains on one batch of NumPy arrays."""

    def __init__(self, init: dict[str, np.ndarray], lr: float = 0.01, activations: str = "torch") -> None:
        import torch

        if activations == "torch":
            relu, sigmoid = torch.nn.ReLU(), torch.nn.Sigmoid()
        elif activations == "fastact":
            import fastact.torch as fat

            relu, sigmoid = fat.ReLU(), fat.Sigmoid()
        else:
            raise ValueError(f"activations must be 'torch' or 'fastact', got {activations!r}")
        dtype = getattr(torch, str(init["w1"].dtype))
        fc1 = torch.nn.Linear(IN_FEATURES, HIDDEN, dtype=dtype)
        fc2 = torch.nn.Linear(HIDDEN, OUT_FEATURES, dtype=dtype)
        with torch.no_grad():
            for layer, w, b in ((fc1, "w1", "b1"), (fc2, "w2", "b2")):
                layer.weight.copy_(torch.from_numpy(init[w]))
                layer.bias.copy_(torch.from_numpy(init[b]))
        self.model = torch.nn.Sequential(fc1, relu, fc2, sigmoid)
        self.loss_fn = torch.nn.BCELoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self._from_numpy = torch.from_numpy

    def step(self, x: np.ndarray, target: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self._from_numpy(x)), self._from_numpy(target))
        loss.backward()
        self.optimizer.step()
        return loss.item()


def train_torch(problem: Problem, lr: float = 0.01, batch_size: int = 32, activations: str = "torch") -> list[float]:
    """Train the PyTorch model (see :class:`TorchMLP`); return the mean training loss of each epoch."""
    model = TorchMLP(problem.init, lr, activations)
    losses = []
    for epoch in range(len(problem.orders)):
        total = 0.0
        for xb, tb in batches(problem, epoch, batch_size):
            total += model.step(xb, tb) * len(xb)
        losses.append(total / len(problem.x))
    return losses


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1024, help="training samples (default 1024)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights and shuffles (default 0)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="precision of both models (default float64, see the module docstring)")
    parser.add_argument("--compare-torch", action="store_true",
                        help="also train the same model in PyTorch and print both loss columns")
    parser.add_argument("--torch-activations", choices=["torch", "fastact"], default="torch",
                        help="with --compare-torch: torch.nn's activations (default) or fastact.torch's")
    args = parser.parse_args(argv)

    problem = make_problem(args.samples, args.epochs, args.seed, args.dtype)
    ours = train_fastact(problem, args.lr, args.batch_size)
    if not args.compare_torch:
        print(f"{'epoch':>5}  {'loss (fastact)':>16}")
        for epoch, loss in enumerate(ours, 1):
            print(f"{epoch:>5}  {loss:16.10f}")
        return 0

    theirs = train_torch(problem, args.lr, args.batch_size, args.torch_activations)
    print(f"{'epoch':>5}  {'loss (fastact)':>16}  {'loss (torch)':>16}  {'|difference|':>12}")
    for epoch, (a, b) in enumerate(zip(ours, theirs), 1):
        print(f"{epoch:>5}  {a:16.10f}  {b:16.10f}  {abs(a - b):12.3e}")
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    verdict = "match" if worst <= 1e-5 else "DIFFER"
    print(f"largest difference {worst:.3e}: the losses {verdict} within 1e-5")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
