#!/usr/bin/env python3
"""How long ``import fastact`` takes, and how much of that is fastact's own (NumPy excluded).

Runs ``python -X importtime -c "import fastact; import numpy"`` in fresh subprocesses, from an empty
temporary directory (so the source folder ``fastact/`` cannot shadow the installed package), and
reads the import tree CPython prints:

- own share: the cumulative time of the ``fastact`` node minus every ``numpy`` / ``numpy.*`` subtree
  under it (whatever numpy itself pulls in is numpy's). Standard-library modules fastact imports
  first (``typing``, ``re``, ...) count as fastact's: a user who imports only fastact pays them.
- numpy: the cumulative time of numpy's import in the same process, wherever it happened (under
  fastact or after it), to compare against.

The best (smallest) of ``--runs`` runs is reported, after one warm-up run; the machine's load only
ever adds time. ``tests/test_import_time.py`` loads this file and asserts on :func:`measure`.

usage: python tools/import_time.py [--runs N] [--python PYTHON] [--details]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s+)(\S+)\s*$")


@dataclass
class Node:
    """One line of ``-X importtime`` output: a module, its own and cumulative time (us), its imports."""

    name: str
    depth: int
    self_us: int
    cumulative_us: int
    children: list[Node] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def parse(stderr: str) -> list[Node]:
    """The import forest from ``-X importtime`` output (children are printed before their parent)."""
    pending: list[Node] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        depth = (len(m.group(3)) - 1) // 2
        node = Node(m.group(4), depth, int(m.group(1)), int(m.group(2)))
        while pending and pending[-1].depth > depth:
            node.children.insert(0, pending.pop())
        pending.append(node)
    return pending


def _is_numpy(name: str) -> bool:
    return name == "numpy" or name.startswith("numpy.")


def _numpy_subtrees(node: Node) -> list[Node]:
    """The outermost numpy nodes under (or at) ``node``."""
    if _is_numpy(node.name):
        return [node]
    return [n for child in node.children for n in _numpy_subtrees(child)]


@dataclass
class Measurement:
    own_ms: float  # fastact's subtree minus the numpy subtrees in it
    total_ms: float  # fastact's subtree
    numpy_ms: float  # numpy's import, wherever it happened in the process
    numpy_under_fastact: bool  # whether `import fastact` imported numpy itself
    top: list[tuple[str, float]]  # the largest self times in fastact's own share, (module, ms)

    @property
    def ratio(self) -> float:
        return self.own_ms / self.numpy_ms if self.numpy_ms else float("inf")


def analyse(stderr: str, module: str = "fastact") -> Measurement:
    roots = parse(stderr)
    top_node = next((r for r in roots if r.name == module), None)
    if top_node is None:
        raise RuntimeError(f"no top-level '{module}' import in the -X importtime output:\n{stderr[-2000:]}")
    numpy_nodes = _numpy_subtrees(top_node)
    numpy_us = sum(n.cumulative_us for n in numpy_nodes)
    if not numpy_nodes:  # imported after fastact, at the top level
        numpy_us = sum(r.cumulative_us for r in roots if _is_numpy(r.name))
    excluded = {id(n) for np_node in numpy_nodes for n in np_node.walk()}
    own = [n for n in top_node.walk() if id(n) not in excluded]
    top = sorted(((n.name, n.self_us / 1000) for n in own), key=lambda t: -t[1])[:6]
    return Measurement(
        own_ms=(top_node.cumulative_us - sum(n.cumulative_us for n in numpy_nodes)) / 1000,
        total_ms=top_node.cumulative_us / 1000,
        numpy_ms=numpy_us / 1000,
        numpy_under_fastact=bool(numpy_nodes),
        top=top,
    )


def run_once(python: str = sys.executable, module: str = "fastact") -> Measurement:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}; import numpy"],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{result.stderr[-3000:]}")
    return analyse(result.stderr, module)


def measure(runs: int = 3, python: str = sys.executable, module: str = "fastact") -> tuple[Measurement, list[Measurement]]:
    """The run with the smallest own share out of ``runs`` (after one warm-up run), and all of them."""
    run_once(python, module)  # warm-up: .pyc files written, shared libraries in the page cache
    all_runs = [run_once(python, module) for _ in range(runs)]
    return min(all_runs, key=lambda m: m.own_ms), all_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs to take the best of (default 5)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure (default: this one)")
    parser.add_argument("--details", action="store_true", help="also list the largest self times")
    args = parser.parse_args(argv)
    best, all_runs = measure(args.runs, args.python)
    where = "imported by fastact" if best.numpy_under_fastact else "not imported by fastact"
    print(
        f"import fastact: own share {best.own_ms:.1f} ms (best of {args.runs}; all runs: "
        f"{', '.join(f'{m.own_ms:.1f}' for m in all_runs)} ms); "
        f"numpy {best.numpy_ms:.0f} ms ({where}); own/numpy {best.ratio:.1%}"
    )
    if args.details:
        print("largest self times in the own share: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in best.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
