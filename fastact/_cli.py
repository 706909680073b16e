"""The ``python -m fastact`` command line: a demo, a benchmark, an accuracy report and plots.

Subcommands::

    python -m fastact               version, SIMD target, threads, every function on a small array
    python -m fastact bench         side-by-side speed against NumPy/SciPy/PyTorch/ONNX Runtime
    python -m fastact accuracy      max and mean ULP of every function on every SIMD target, vs the bounds
    python -m fastact plot          one PNG per activation and its derivative (needs matplotlib)

Exit status: 0 on success, 1 when an accuracy bound is broken or an optional dependency is missing, 2 for a
bad command line. Optional libraries (matplotlib, torch, scipy, onnxruntime) are imported only by the
command that needs them, never by ``import fastact``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

import fastact

from . import _bench

PLOT_HINT = 'pip install "fastact[plot]"'
PLOT_FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh")


class UsageError(Exception):
    """A bad argument found after parsing; reported as one line on stderr with exit status 2."""


# --------------------------------------------------------------------------------------------------------
# The demo (no subcommand)

DEMO_X = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=np.float32)
DEMO_SLOPE = 0.01


def _fmt(values: Any) -> str:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return "[" + ", ".join(f"{v:7.4f}" for v in arr) + "]"


def demo_lines() -> list[str]:
    """One line per public function applied to DEMO_X (backward ops with grad = ones)."""
    x = DEMO_X
    g = np.ones_like(x)
    fa = fastact
    rows = [
        ("relu(x)", fa.relu(x)),
        (f"leaky_relu(x, {DEMO_SLOPE})", fa.leaky_relu(x, DEMO_SLOPE)),
        ("sigmoid(x)", fa.sigmoid(x)),
        ("tanh(x)", fa.tanh(x)),
        ("softmax(x)", fa.softmax(x)),
        ("log_softmax(x)", fa.log_softmax(x)),
        ("relu_backward(g, relu(x))", fa.relu_backward(g, fa.relu(x))),
        (f"leaky_relu_backward(g, x, {DEMO_SLOPE})", fa.leaky_relu_backward(g, x, DEMO_SLOPE)),
        ("sigmoid_backward(g, sigmoid(x))", fa.sigmoid_backward(g, fa.sigmoid(x))),
        ("tanh_backward(g, tanh(x))", fa.tanh_backward(g, fa.tanh(x))),
        ("softmax_backward(g, softmax(x))", fa.softmax_backward(g, fa.softmax(x))),
        ("log_softmax_backward(g, log_softmax(x))", fa.log_softmax_backward(g, fa.log_softmax(x))),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'x':<{width}} = {_fmt(x)}   ({x.dtype}; g = ones, the incoming gradient)"]
    notes = {"softmax_backward(g, softmax(x))": "   (zero: softmax sums to 1, so a constant gradient vanishes)"}
    lines += [f"{name:<{width}} = {_fmt(value)}{notes.get(name, '')}" for name, value in rows]
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    targets = list(fastact.simd_targets())
    print(f"fastact {fastact.__version__}: activation functions and their gradients for NumPy")
    print(f"SIMD target: {fastact.simd_target()} (this CPU runs: {', '.join(targets)}; FASTACT_SIMD=<name> picks one)")
    print(f"threads: {fastact.get_num_threads()} (fastact.set_num_threads, FASTACT_NUM_THREADS)")
    print()
    for line in demo_lines():
        print(line)
    print()
    print("More: python -m fastact bench | accuracy | plot  (--help on each)")
    return 0


# --------------------------------------------------------------------------------------------------------
# bench


def _warn(message: str) -> None:
    print(f"fastact bench: {message}", file=sys.stderr, flush=True)


def bench_config(args: argparse.Namespace) -> _bench.Config:
    try:
        functions = _bench.resolve_functions(args.functions) if args.functions else _bench.FUNCTIONS
        sizes = tuple(_bench.parse_size(s) for s in _bench.split_list(args.sizes)) if args.sizes else None
        rows = tuple(_bench.parse_size(s) for s in _bench.split_list(args.rows)) if args.rows else None
        total = _bench.parse_size(args.softmax_total) if args.softmax_total else _bench.DEFAULT_SOFTMAX_TOTAL
        peers = _bench.resolve_peers(args.peers) if args.peers is not None else _bench.PEERS
        threads = _bench.resolve_threads(args.threads) if args.threads else (fastact.get_num_threads(),)
    except _bench.BenchError as exc:
        raise UsageError(str(exc)) from None
    if args.repeat < 1:
        raise UsageError(f"bad --repeat {args.repeat}: use a positive integer")
    if not args.loop_time > 0:
        raise UsageError(f"bad --loop-time {args.loop_time}: use a positive number of seconds")
    axes = {"last": (-1,), "0": (0,), "both": (-1, 0)}[args.axis]
    return _bench.Config(
        functions=functions,
        sizes=sizes if sizes else _bench.DEFAULT_SIZES,
        rows=rows if rows else _bench.DEFAULT_ROWS,
        softmax_total=total,
        axes=axes,
        dtype=args.dtype,
        threads=threads,
        peers=peers,
        repeat=args.repeat,
        loop_time=args.loop_time,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    config = bench_config(args)
    if args.plot and not _have_matplotlib():
        print(f"fastact bench: --plot needs matplotlib: {PLOT_HINT}", file=sys.stderr)
        return 1
    for path in (args.json, args.plot):
        if path:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    peers = _bench.load_peers(config.peers, _warn)
    info = _bench.machine_info(fastact, peers)
    header = _bench.header_line(info, config)
    print(header, flush=True)
    progress = _bench.Progress(_bench.count_steps(config, peers))
    try:
        results = _bench.run(fastact, config, peers, _warn, progress)
    finally:
        progress.close()
    print()
    print(_bench.format_table(results))
    scaling = _bench.format_scaling(results)
    if scaling:
        print()
        print(scaling)
    print()
    print(_bench.LEGEND)
    if args.json:
        document = {
            "machine": info,
            "config": {
                "functions": list(config.functions),
                "sizes": list(config.sizes),
                "rows": list(config.rows),
                "softmax_total": config.softmax_total,
                "axes": list(config.axes),
                "dtype": config.dtype,
                "threads": list(config.threads),
                "peers_requested": list(config.peers),
                "peers": [peer.name for peer in peers],
                "repeat": config.repeat,
                "loop_time": config.loop_time,
                "negative_slope": _bench.NEGATIVE_SLOPE,
                "argv": list(args.argv),
            },
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1)
            f.write("\n")
        print(f"\nwrote {args.json}")
    if args.plot:
        _bench.plot_results(results, args.plot, title=header)
        print(f"wrote {args.plot}")
    return 0


# --------------------------------------------------------------------------------------------------------
# accuracy


def _fmt_number(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.{digits}g}"
    return str(value)


def _fmt_bound(bound: Any) -> str:
    if isinstance(bound, (int, float, np.integer, np.floating)) and float(bound) == 0:
        return "0 (exact)"
    return _fmt_number(bound)


def accuracy_table(rows: Sequence[dict[str, Any]]) -> str:
    header = ("function", "dtype", "target", "max ULP", "mean ULP", "bound", "result")
    lines = [
        (
            str(r["function"]),
            str(r["dtype"]),
            str(r["target"]),
            _fmt_number(r["max_ulp"]),
            _fmt_number(r["mean_ulp"], 3),
            _fmt_bound(r["bound"]),
            "PASS" if r["passed"] else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([render(header), render(["-" * w for w in widths])] + [render(line) for line in lines])


def cmd_accuracy(args: argparse.Namespace) -> int:
    supported = list(fastact.simd_targets())
    targets: list[str] | None = None
    if args.target is not None:
        if args.target not in supported:
            raise UsageError(
                f"unknown or unsupported SIMD target {args.target!r}; this CPU runs: {', '.join(supported)}"
            )
        targets = [args.target]
    functions = None
    if args.functions:
        try:
            functions = _bench.resolve_functions(args.functions)
        except _bench.BenchError as exc:
            raise UsageError(str(exc)) from None
    try:
        from . import _accuracy
    except ImportError as exc:
        print(f"fastact accuracy: the accuracy sweeps are not available in this build ({exc})", file=sys.stderr)
        return 1
    if functions is None:
        rows = _accuracy.report(targets=targets)
    else:
        rows = _accuracy.report(targets=targets, functions=functions)
    print(
        f"fastact {fastact.__version__}: max and mean error over the standard sweeps, float32 against a "
        "float64 reference, float64 against long double"
    )
    print()
    print(accuracy_table(rows))
    metrics = getattr(_accuracy, "METRICS", {})
    shown = list(dict.fromkeys(r["function"] for r in rows if r["function"] in metrics))
    if shown:
        print()
        print("Units (the bound is in the same unit):")
        width = max(len(name) for name in shown)
        for name in shown:
            print(f"  {name:<{width}}  {metrics[name]}")
    broken = [r for r in rows if not r["passed"]]
    print()
    if broken:
        for r in broken:
            worst = r.get("worst")
            if worst:
                print(f"worst {r['function']} {r['dtype']} on {r['target']}: {worst}")
        print(f"FAIL: {len(broken)} of {len(rows)} bounds broken (DESIGN.md section 2)")
        return 1
    print(f"PASS: all {len(rows)} bounds hold (DESIGN.md section 2)")
    return 0


# --------------------------------------------------------------------------------------------------------
# plot


def _have_matplotlib() -> bool:
    """Whether matplotlib imports (checked only by the commands that draw)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _import_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_activations(out_dir: str) -> list[str]:
    """Write relu/leaky_relu/sigmoid/tanh/softmax PNGs into ``out_dir``; return their paths."""
    plt = _import_pyplot()
    os.makedirs(out_dir, exist_ok=True)
    x = np.linspace(-6.0, 6.0, 1201)
    ones = np.ones_like(x)
    slope = 0.1  # larger than the default 0.01 so the negative side is visible
    curves = {
        "relu": (fastact.relu(x), lambda y: fastact.relu_backward(ones, y), "relu(x) = max(x, 0)", "relu_backward"),
        "leaky_relu": (
            fastact.leaky_relu(x, slope),
            lambda y: fastact.leaky_relu_backward(ones, x, slope),
            f"leaky_relu(x, negative_slope={slope})",
            "leaky_relu_backward",
        ),
        "sigmoid": (
            fastact.sigmoid(x),
            lambda y: fastact.sigmoid_backward(ones, y),
            "sigmoid(x) = 1 / (1 + exp(-x))",
            "sigmoid_backward",
        ),
        "tanh": (fastact.tanh(x), lambda y: fastact.tanh_backward(ones, y), "tanh(x)", "tanh_backward"),
    }
    paths = []
    for name in PLOT_FUNCTIONS:
        y, derivative, title, backward = curves[name]
        dy = derivative(y)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.plot(x, y, linewidth=2.2, label=f"{name}(x)")
        ax.plot(x, dy, linewidth=1.8, linestyle="--", label=f"derivative, from fastact.{backward}")
        ax.set_title(f"fastact.{name}: {title}")
        ax.set_xlabel("x")
        ax.set_ylabel("value")
        ax.set_xlim(-6, 6)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    logits = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0])
    probs = np.asarray(fastact.softmax(logits))
    logp = np.asarray(fastact.log_softmax(logits))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.4, 4.4))
    positions = np.arange(logits.size)
    ticks = [f"{v:g}" for v in logits]
    bars = ax1.bar(positions, probs, color="tab:blue")
    for bar, p in zip(bars, probs):
        ax1.annotate(f"{p:.3f}", (bar.get_x() + bar.get_width() / 2, p), ha="center", va="bottom", fontsize=9)
    ax1.set_title(f"softmax(x): probabilities, sum = {probs.sum():.6f}")
    ax1.set_ylabel("probability")
    ax1.set_ylim(0, max(probs) * 1.15)
    bars = ax2.bar(positions, logp, color="tab:orange")
    for bar, v in zip(bars, logp):
        ax2.annotate(f"{v:.3f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="top", fontsize=9)
    ax2.set_title("log_softmax(x) = x - max - log(sum(exp(x - max)))")
    ax2.set_ylabel("log probability")
    ax2.set_ylim(min(logp) * 1.15, 0)
    for ax in (ax1, ax2):
        ax.set_xticks(positions)
        ax.set_xticklabels(ticks)
        ax.set_xlabel("logit x")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("fastact.softmax and fastact.log_softmax of x = [" + ", ".join(ticks) + "]")
    fig.tight_layout()
    path = os.path.join(out_dir, "softmax.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def cmd_plot(args: argparse.Namespace) -> int:
    if not _have_matplotlib():
        print(f"fastact plot: matplotlib is not installed: {PLOT_HINT}", file=sys.stderr)
        return 1
    try:
        paths = plot_activations(args.out)
    except OSError as exc:
        raise UsageError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    for path in paths:
        print(path)
    return 0


# --------------------------------------------------------------------------------------------------------
# The parser


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "python -m fastact",
        description="fastact: SIMD + OpenMP activation functions and their gradients for NumPy. "
        "Without a command, show the version, the SIMD target, the thread count and every function at work.",
    )
    parser.add_argument("--version", action="version", version=f"fastact {fastact.__version__}")
    parser.set_defaults(handler=cmd_demo, command="")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    bench = sub.add_parser(
        "bench",
        help="benchmark fastact side by side with NumPy, SciPy, PyTorch and ONNX Runtime",
        description="Time fastact and every installed peer in one process, writing into a preallocated out, "
        "and compare each with a plain copy moving the same bytes. Missing peers are named and skipped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    bench.add_argument(
        "--functions",
        nargs="+",
        metavar="F",
        help="functions to time, space or comma separated; also the groups "
        + ", ".join(_bench.FUNCTION_GROUPS)
        + " (default: all)",
    )
    bench.add_argument(
        "--sizes",
        nargs="+",
        metavar="N",
        help="element counts for the elementwise functions, e.g. 4K 256K 4M 64M (K, M, G are powers of 1024; "
        "default: 4K 256K 4M 64M)",
    )
    bench.add_argument(
        "--rows",
        nargs="+",
        metavar="L",
        help="slice lengths for softmax, log_softmax and their backward ops (default: 16 128 1024 100000)",
    )
    bench.add_argument(
        "--softmax-total",
        metavar="N",
        help="elements per softmax array: the number of slices is N / slice length, at least 1 (default: 256K)",
    )
    bench.add_argument(
        "--axis",
        choices=("last", "0", "both"),
        default="both",
        help="softmax reduction axis: the last one (shape slices x L), axis 0 (shape L x slices), or both",
    )
    bench.add_argument(
        "--threads",
        nargs="+",
        metavar="N",
        help="thread count for fastact and every peer; several (e.g. 1,2) add a scaling table "
        "(default: fastact.get_num_threads())",
    )
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="element type")
    bench.add_argument(
        "--peers",
        nargs="+",
        metavar="P",
        help="peers to compare with: " + ", ".join(_bench.PEERS) + ", or none (default: all that are installed)",
    )
    bench.add_argument(
        "--repeat", type=int, default=_bench.DEFAULT_REPEAT, metavar="R", help="timed runs; the best (smallest) is reported"
    )
    bench.add_argument(
        "--loop-time",
        type=float,
        default=_bench.DEFAULT_LOOP_TIME,
        metavar="SECONDS",
        help="how long one timed run lasts (calls are repeated until it lasts at least 2/3 of this)",
    )
    bench.add_argument("--json", metavar="FILE", help="write every measurement and the machine's description here")
    bench.add_argument("--plot", metavar="FILE.png", help="draw throughput against size here (needs matplotlib)")
    bench.set_defaults(handler=cmd_bench, command="bench")

    accuracy = sub.add_parser(
        "accuracy",
        help="max and mean ULP error of every function on every SIMD target, against the DESIGN.md bounds",
        description="Run the standard accuracy sweeps on every SIMD target this CPU supports (or one) and "
        "print max and mean ULP per function, dtype and target beside the bound. Exit status 1 if a bound "
        "is broken.",
    )
    accuracy.add_argument("--target", metavar="NAME", help="only this SIMD target (see fastact.simd_targets())")
    accuracy.add_argument(
        "--functions", nargs="+", metavar="F", help="only these functions (or groups, as for bench; default: all)"
    )
    accuracy.set_defaults(handler=cmd_accuracy, command="accuracy")

    plot = sub.add_parser(
        "plot",
        help="draw each activation and its derivative to PNG files (needs matplotlib)",
        description="Write relu.png, leaky_relu.png, sigmoid.png and tanh.png (each function and its "
        "derivative from the *_backward functions over [-6, 6]) and softmax.png (a small example's "
        f"probabilities). Needs matplotlib: {PLOT_HINT}.",
    )
    plot.add_argument("--out", default=".", metavar="DIR", help="directory for the PNG files (created if needed)")
    plot.set_defaults(handler=cmd_plot, command="plot")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.handler(args))
    except UsageError as exc:
        command = f" {args.command}" if args.command else ""
        print(f"{parser.prog}{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
