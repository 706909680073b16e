"""examples/train_mlp.py: it trains (the loss goes down) and its losses equal PyTorch's within 1e-5."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_mlp.py"
TORCH_REASON = "PyTorch is not installed: nothing to compare the example's losses with"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_mlp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def small(example):
    # 256 samples x 5 epochs = 40 Adam steps of batch 32: the full model, a fraction of the time.
    problem = example.make_problem(samples=256, epochs=5, seed=0)
    return problem, example.train_fastact(problem)


def test_the_loss_decreases(small):
    _, losses = small
    assert len(losses) == 5
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0], losses


def test_training_is_deterministic(example, small):
    problem, losses = small
    assert example.train_fastact(problem) == losses
    again = example.make_problem(samples=256, epochs=5, seed=0)
    assert example.train_fastact(again) == losses


def test_losses_equal_torchs(example, small):
    pytest.importorskip("torch", reason=TORCH_REASON)
    problem, losses = small
    theirs = example.train_torch(problem)
    assert max(abs(a - b) for a, b in zip(losses, theirs)) <= 1e-5, (losses, theirs)


def test_losses_equal_torchs_with_fastact_torch_inside(example, small):
    pytest.importorskip("torch", reason=TORCH_REASON)
    problem, losses = small
    theirs = example.train_torch(problem, activations="fastact")
    assert max(abs(a - b) for a, b in zip(losses, theirs)) <= 1e-5, (losses, theirs)


def test_odd_batch_and_float32_run(example):
    problem = example.make_problem(samples=100, epochs=2, seed=3, dtype="float32")  # last batch has 4
    losses = example.train_fastact(problem, batch_size=32)
    assert problem.dtype == "float32" and len(losses) == 2 and losses[1] < losses[0]


def test_cli_compare_torch(example, capsys):
    pytest.importorskip("torch", reason=TORCH_REASON)
    assert example.main(["--samples", "96", "--epochs", "2", "--compare-torch"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "loss", "(fastact)", "loss", "(torch)", "|difference|"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert lines[-1].endswith("the losses match within 1e-5")


def test_script_runs_as_the_readme_says(tmp_path):
    # A subprocess, as a person runs it (outside the repository, so the source tree shadows nothing).
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--samples", "64", "--epochs", "3"],
        cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120, check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["epoch", "loss", "(fastact)"] and len(lines) == 4
    losses = [float(line.split()[1]) for line in lines[1:]]
    assert losses[-1] < losses[0]
