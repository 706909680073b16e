"""The command line (``python -m fastact`` and ``bench/bench_activations.py``), each command in a subprocess.

Sizes are tiny and timed loops short: these check what the commands print and write, not speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ALL

REPO = Path(__file__).resolve().parents[1]
BENCH_SCRIPT = REPO / "bench" / "bench_activations.py"
FUNCTIONS = ALL  # every public function, in DESIGN.md order
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Options that keep a benchmark run well under a second per measurement.
QUICK = "--repeat 1 --loop-time 0.002 --threads 1".split()


def run(*args: str, cwd: Path, env: dict | None = None, script: Path | None = None, timeout: float = 120):
    """Run ``python -m fastact ARGS`` (or ``python SCRIPT ARGS``) from ``cwd`` and return the result.

    ``cwd`` is a temporary directory, never the repository root, where the source folder ``fastact/``
    (without its compiled core) would shadow the installed package.
    """
    command = [sys.executable] + ([str(script)] if script else ["-m", "fastact"]) + list(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def have(module: str) -> bool:
    """Whether ``module`` is installed, without importing it into the test process."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def hide(tmp_path: Path, *modules: str) -> dict:
    """An environment in which importing each of ``modules`` raises ImportError, as if not installed."""
    shim = tmp_path / "hidden_modules"
    for module in modules:
        package = shim / module
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{module} is hidden by the test')\n")
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(shim) + (os.pathsep + path if path else "")}


def table_rows(stdout: str) -> list[list[str]]:
    """The benchmark table's data rows, split into cells (function, size, axis, thr, impl, ...)."""
    rows = []
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) >= 9 and cells[0] in FUNCTIONS:
            rows.append(cells)
    return rows


def current_target(tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import fastact; print(fastact.simd_target())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --------------------------------------------------------------------------------------------------------
# The demo and --help


def test_demo_shows_version_target_threads_and_every_function(tmp_path):
    result = run(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("fastact ")
    assert "SIMD target:" in out
    assert "threads:" in out
    lines = out.splitlines()
    for name in FUNCTIONS:
        matching = [line for line in lines if line.startswith(name + "(")]
        assert len(matching) == 1, f"no single demo line for {name}:\n{out}"
        assert matching[0].count(",") >= 4  # five values shown
    relu_line = next(line for line in lines if line.startswith("relu("))
    values = relu_line.split("=", 1)[1].split("]")[0].strip(" [").split(",")
    assert [float(v) for v in values] == [0.0, 0.0, 0.0, 0.5, 2.0]
    assert result.stderr == ""


@pytest.mark.parametrize("command", [[], ["bench"], ["accuracy"], ["plot"]], ids=["main", "bench", "accuracy", "plot"])
def test_help(tmp_path, command):
    result = run(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    if command == ["bench"]:
        for option in ("--functions", "--sizes", "--threads", "--dtype", "--peers", "--repeat", "--json", "--plot"):
            assert option in result.stdout


def test_import_fastact_imports_no_optional_dependency(tmp_path):
    code = (
        "import sys, fastact, fastact._cli, fastact._bench\n"
        "loaded = [m for m in ('matplotlib', 'torch', 'scipy', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"imported: {result.stdout} {result.stderr}"


# --------------------------------------------------------------------------------------------------------
# bench


def test_bench_table_and_json(tmp_path):
    out_json = tmp_path / "bench.json"
    functions = ["relu", "sigmoid", "softmax", "relu_backward", "log_softmax_backward"]
    args = ["bench", "--functions", *functions] + "--sizes 4K 16K --rows 16 --softmax-total 1K --peers numpy".split()
    result = run(*args, "--json", str(out_json), *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal, no warnings
    rows = table_rows(result.stdout)
    seen = {(r[0], r[1], r[2], r[4]) for r in rows}
    for function in ("relu", "sigmoid", "relu_backward"):
        for size in ("4K", "16K"):
            for impl in ("fastact", "numpy", "copy"):
                assert (function, size, "-", impl) in seen, (function, size, impl, result.stdout)
    for function in ("softmax", "log_softmax_backward"):
        for size, axis in (("64x16", "-1"), ("16x64", "0")):
            for impl in ("fastact", "numpy", "copy"):
                assert (function, size, axis, impl) in seen, (function, size, axis, impl, result.stdout)
    assert not any(r[4] in ("scipy", "torch", "onnxruntime") for r in rows)
    assert not any("(!)" in r for r in rows)  # numpy agrees with fastact everywhere

    doc = json.loads(out_json.read_text())
    assert set(doc) >= {"machine", "config", "results"}
    machine_keys = {"cpu_model", "cpu_count", "simd_target", "simd_targets", "fastact", "numpy", "python", "peers"}
    assert set(doc["machine"]) >= machine_keys
    assert doc["config"]["threads"] == [1]
    assert doc["config"]["dtype"] == "float32"
    assert doc["config"]["functions"] == functions
    results = doc["results"]
    assert len(results) == len(rows)
    keys = set(
        "function shape size axis dtype threads impl seconds gelem_per_s gbytes_per_s bytes_moved times loops"
        " fastact_over_impl fraction_of_copy".split()
    )
    for r in results:
        assert set(r) >= keys
        assert r["seconds"] > 0 and r["gelem_per_s"] > 0 and len(r["times"]) == 1
        if r["impl"] == "copy":
            assert r["fraction_of_copy"] == pytest.approx(1.0)
        if r["impl"] == "fastact":
            assert r["fastact_over_impl"] is None
        else:
            assert r["fastact_over_impl"] > 0
    softmax_axis0 = [r for r in results if r["function"] == "softmax" and r["axis"] == 0]
    assert softmax_axis0 and all(r["shape"] == [16, 64] for r in softmax_axis0)
    two_input = next(r for r in results if r["function"] == "relu_backward" and r["size"] == 4096)
    assert two_input["bytes_moved"] == 3 * 4096 * 4


@pytest.mark.parametrize("peer", ["scipy", "torch", "onnxruntime"])
def test_bench_installed_peer_agrees_with_fastact(tmp_path, peer):
    modules = {"scipy": ["scipy"], "torch": ["torch"], "onnxruntime": ["onnxruntime", "onnx"]}[peer]
    if not all(have(m) for m in modules):
        pytest.skip(f"{peer} is not installed")
    args = "bench --functions all --sizes 4K --rows 16 --softmax-total 256 --peers".split() + [peer]
    result = run(*args, *QUICK, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert "disagree" not in result.stderr and not any("(!)" in r for r in rows), result.stdout + result.stderr
    functions = {r[0] for r in rows if r[4] == peer}
    expected = {
        "scipy": {"sigmoid", "softmax", "log_softmax"},
        "torch": set(FUNCTIONS),
        "onnxruntime": {"relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"},
    }[peer]
    assert functions == expected


def test_bench_names_and_skips_missing_peers(tmp_path):
    args = "bench --functions relu --sizes 4K --peers numpy,onnxruntime".split()
    result = run(*args, *QUICK, cwd=tmp_path, env=hide(tmp_path, "onnxruntime"))
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stderr and "not installed" in result.stderr
    impls = {r[4] for r in table_rows(result.stdout)}
    assert impls == {"fastact", "numpy", "copy"}


def test_bench_several_thread_counts_add_a_scaling_table(tmp_path):
    args = "bench --functions sigmoid --sizes 4K --peers none --repeat 1 --loop-time 0.002 --threads 1,2".split()
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    threads = {r[3] for r in table_rows(result.stdout)}
    assert threads == {"1", "2"}
    assert "thread scaling" in result.stdout


def test_bench_float64(tmp_path):
    args = "bench --functions tanh softmax --sizes 1K --rows 8 --softmax-total 64 --axis last --dtype float64"
    result = run(*args.split(), "--peers", "numpy", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "float64" in result.stdout.splitlines()[0]
    assert {(r[0], r[4]) for r in table_rows(result.stdout)} == {
        (f, i) for f in ("tanh", "softmax") for i in ("fastact", "numpy", "copy")
    }


def test_bench_script_runs_the_same_benchmark(tmp_path):
    args = "--functions leaky_relu --sizes 4K --peers none".split()
    result = run(*args, *QUICK, cwd=tmp_path, script=BENCH_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert {(r[0], r[4]) for r in table_rows(result.stdout)} == {("leaky_relu", "fastact"), ("leaky_relu", "copy")}


@pytest.mark.skipif(not have("matplotlib"), reason="matplotlib is not installed (pip install 'fastact[plot]')")
def test_bench_plot_writes_a_png(tmp_path):
    png = tmp_path / "bench.png"
    args = "bench --functions relu softmax --sizes 1K 4K --rows 8 32 --softmax-total 256 --peers numpy".split()
    result = run(*args, "--plot", str(png), *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000


def test_bench_plot_without_matplotlib_fails_before_measuring(tmp_path):
    png = tmp_path / "bench.png"
    args = "bench --functions relu --sizes 1K --peers none".split()
    result = run(*args, "--plot", str(png), *QUICK, cwd=tmp_path, env=hide(tmp_path, "matplotlib"))
    assert result.returncode == 1
    assert 'pip install "fastact[plot]"' in result.stderr
    assert not table_rows(result.stdout) and not png.exists()


# --------------------------------------------------------------------------------------------------------
# accuracy


def test_accuracy_table_passes_on_the_current_target(tmp_path):
    target = current_target(tmp_path)
    result = run("accuracy", "--target", target, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for column in ("function", "dtype", "target", "max ULP", "mean ULP", "bound"):
        assert column in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in FUNCTIONS]
    rows = [r for r in rows if len(r) >= 6 and r[2] == target]
    assert {(r[0], r[1]) for r in rows} == {(f, d) for f in FUNCTIONS for d in ("float32", "float64")}
    assert all(r[-1] == "PASS" for r in rows)
    assert "PASS: all 24 bounds hold" in out


def test_accuracy_exits_1_when_a_bound_is_broken(tmp_path):
    # Replace the sweeps by a report with one broken bound: the command must print FAIL and exit 1.
    code = (
        "import sys\n"
        "from fastact import _accuracy, _cli\n"
        "def report(targets=None, **kw):\n"
        "    row = dict(function='sigmoid', dtype='float32', target='scalar', max_ulp=3.0, mean_ulp=0.5,\n"
        "               bound=2, passed=False, worst='x = -20: 1e-9 vs 2e-9')\n"
        "    ok = dict(row, function='tanh', max_ulp=1.0, passed=True)\n"
        "    return [row, ok]\n"
        "_accuracy.report = report\n"
        "sys.exit(_cli.main(['accuracy']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "1 of 2 bounds broken" in result.stdout


# --------------------------------------------------------------------------------------------------------
# plot


@pytest.mark.skipif(not have("matplotlib"), reason="matplotlib is not installed (pip install 'fastact[plot]')")
def test_plot_writes_one_png_per_activation(tmp_path):
    out_dir = tmp_path / "plots" / "nested"
    result = run("plot", "--out", str(out_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
    for name in names:
        data = (out_dir / f"{name}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 10_000, (name, len(data))
    assert result.stdout.split() == [str(out_dir / f"{name}.png") for name in names]


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path):
    result = run("plot", "--out", str(tmp_path), cwd=tmp_path, env=hide(tmp_path, "matplotlib"))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        'fastact plot: matplotlib is not installed: pip install "fastact[plot]"'
    ]
    assert not list(tmp_path.glob("*.png"))


# --------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--functions", "swish"], "unknown function 'swish'"),
        (["bench", "--sizes", "lots"], "bad size 'lots'"),
        (["bench", "--sizes", "0"], "bad size '0'"),
        (["bench", "--rows", "-3"], "bad size '-3'"),
        (["bench", "--peers", "jax"], "unknown peer 'jax'"),
        (["bench", "--threads", "0"], "bad thread count '0'"),
        (["bench", "--repeat", "0"], "bad --repeat 0"),
        (["accuracy", "--target", "avx9000"], "unsupported SIMD target 'avx9000'"),
    ],
    ids=["function", "size-word", "size-zero", "rows-negative", "peer", "threads", "repeat", "target"],
)
def test_bad_argument_is_one_line_and_exit_2(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "error" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [["bench", "--dtype", "int8"], ["bench", "--axis", "2"], ["frobnicate"], ["bench", "--repeat", "many"]],
    ids=["dtype", "axis", "command", "repeat-word"],
)
def test_parse_error_exits_2(tmp_path, args):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "error:" in result.stderr
