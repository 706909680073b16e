"""``import fastact`` is cheap: fastact's own share of the import (NumPy excluded) stays under 20 ms, and
no optional heavy dependency is imported. Each measurement runs in a fresh subprocess from an empty
directory, so the installed package is measured, never the source folder."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_time.py"
OWN_SHARE_BOUND_MS = 20.0
# On a loaded machine every import slows down alike: numpy's import, measured in the same process,
# scales the bound (fastact's own share is ~5% of numpy's on a quiet machine).
OWN_SHARE_BOUND_OF_NUMPY = 0.25
HEAVY = ("torch", "scipy", "matplotlib", "onnxruntime", "onnx", "pandas")


def _load_tool():
    if not TOOL.is_file():
        pytest.fail(f"{TOOL} is missing: the import-time test measures with it")
    spec = importlib.util.spec_from_file_location("fastact_import_time", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_import_time_own_share():
    tool = _load_tool()
    best, runs = tool.measure(runs=3)
    bound = max(OWN_SHARE_BOUND_MS, OWN_SHARE_BOUND_OF_NUMPY * best.numpy_ms)
    assert best.own_ms < bound, (
        f"import fastact: own share {best.own_ms:.1f} ms (best of {[round(m.own_ms, 1) for m in runs]}) "
        f">= {bound:.1f} ms (numpy: {best.numpy_ms:.0f} ms); largest self times: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in best.top)
    )


def test_import_time_parser_separates_numpy():
    """The parser charges numpy's subtree (with what numpy imports) to numpy, the rest to fastact."""
    tool = _load_tool()
    header = "import time: self [us] | cumulative | imported package\n"
    numpy_inside = tool.analyse(header + "\n".join([
        "import time:       100 |        100 |       typing",
        "import time:       500 |        600 |     numpy._core",
        "import time:      1000 |       1600 |   numpy",
        "import time:       900 |        900 |   fastact._core",
        "import time:       200 |       2700 | fastact",
    ]))
    assert numpy_inside.numpy_under_fastact
    assert (numpy_inside.own_ms, numpy_inside.total_ms, numpy_inside.numpy_ms) == pytest.approx((1.1, 2.7, 1.6))
    assert [name for name, _ in numpy_inside.top] == ["fastact._core", "fastact"]
    numpy_after = tool.analyse(header + "\n".join([
        "import time:       300 |        300 |   typing",
        "import time:       900 |        900 |   fastact._core",
        "import time:       200 |       1400 | fastact",
        "import time:       500 |        500 |   numpy._core",
        "import time:      1000 |       1500 | numpy",
    ]))
    assert not numpy_after.numpy_under_fastact
    assert (numpy_after.own_ms, numpy_after.numpy_ms) == pytest.approx((1.4, 1.5))
    assert [name for name, _ in numpy_after.top] == ["fastact._core", "typing", "fastact"]


def test_import_fastact_imports_no_heavy_dependency(tmp_path):
    code = (
        "import sys, fastact\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"import fastact imported: {result.stdout.strip()}"
