#!/usr/bin/env python3
"""Side-by-side benchmark of fastact against NumPy, SciPy, PyTorch and ONNX Runtime.

A thin wrapper: the benchmark lives in ``fastact._bench`` and takes the options of
``python -m fastact bench`` (see ``--help``), e.g.::

    python bench/bench_activations.py --threads 1
    python bench/bench_activations.py --functions sigmoid tanh --sizes 256K --threads 1,2 --json out.json
"""

import sys

try:
    from fastact._cli import main
except ImportError as exc:  # not installed, or the compiled core is missing
    sys.exit(f"bench_activations.py: cannot import fastact ({exc}); install it first (see bench/README.md)")

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]], prog="bench_activations.py"))
