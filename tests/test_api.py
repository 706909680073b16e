"""The public API's shape: the type stubs match the module (names, parameter names and kinds, defaults),
``py.typed`` ships, every public function has a docstring with an example, and the examples run."""

import ast
import doctest
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastact

PACKAGE = Path(fastact.__file__).parent
STUB = PACKAGE / "__init__.pyi"
FUNCTIONS = [n for n in fastact.__all__ if callable(getattr(fastact, n))]


def _stub_tree():
    assert STUB.exists(), f"{STUB} is missing"
    return ast.parse(STUB.read_text())


def _stub_defs():
    defs, names = {}, set()
    for node in _stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.setdefault(node.name, node)  # the first of a run of @overloads
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return defs, names


def _stub_params(fn: ast.FunctionDef):
    """[(name, kind, default)] from a stub def; default is inspect.Parameter.empty, a constant, or ...."""
    a = fn.args
    P = inspect.Parameter
    out = []
    positional = [(p, P.POSITIONAL_ONLY) for p in a.posonlyargs] + [(p, P.POSITIONAL_OR_KEYWORD) for p in a.args]
    defaults = [P.empty] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for (p, kind), d in zip(positional, defaults):
        out.append((p.arg, kind, d))
    if a.vararg:
        out.append((a.vararg.arg, P.VAR_POSITIONAL, P.empty))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((p.arg, P.KEYWORD_ONLY, P.empty if d is None else d))
    if a.kwarg:
        out.append((a.kwarg.arg, P.VAR_KEYWORD, P.empty))
    return out


def test_py_typed_ships():
    assert (PACKAGE / "py.typed").exists()


def test_every_public_name_is_in_the_stub_and_nothing_else():
    defs, names = _stub_defs()
    missing = [n for n in fastact.__all__ if n not in names]
    assert not missing, f"names in fastact.__all__ missing from {STUB.name}: {missing}"
    extra = [n for n in defs if not n.startswith("_") and n not in fastact.__all__]
    assert not extra, f"public functions in {STUB.name} that fastact does not export: {extra}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_stub_signature_matches_module(name):
    defs, _ = _stub_defs()
    assert name in defs, f"{name} is not a function in the stub"
    try:
        sig = inspect.signature(getattr(fastact, name))
    except (ValueError, TypeError) as exc:
        pytest.fail(f"fastact.{name} has no introspectable signature: {exc}")
    stub = _stub_params(defs[name])
    real = [(p.name, p.kind) for p in sig.parameters.values()]
    assert [(n, k) for n, k, _ in stub] == real, f"{name}: stub {[(n, k.name) for n, k, _ in stub]} != module {real}"
    for (pname, _, d), p in zip(stub, sig.parameters.values()):
        assert (d is inspect.Parameter.empty) == (p.default is inspect.Parameter.empty), f"{name}({pname}): default"
        if isinstance(d, ast.Constant) and d.value is not Ellipsis:
            assert d.value == p.default, f"{name}({pname}): stub default {d.value!r} != {p.default!r}"
        elif isinstance(d, ast.UnaryOp) and isinstance(d.op, ast.USub) and isinstance(d.operand, ast.Constant):
            assert -d.operand.value == p.default, f"{name}({pname}): stub default -{d.operand.value!r} != {p.default!r}"


@pytest.mark.skipif(not os.environ.get("FASTACT_STUBTEST"),
                    reason="mypy.stubtest takes about a minute: opt in with FASTACT_STUBTEST=1")
def test_stubtest(tmp_path):
    pytest.importorskip("mypy.stubtest", reason="mypy is not installed")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nignore_missing_imports = True\n"
                      "[mypy-fastact._bench,fastact._cli,fastact.nn,fastact.torch]\nignore_errors = True\n")
    p = subprocess.run([sys.executable, "-m", "mypy.stubtest", "fastact", "--ignore-missing-stub",
                        "--mypy-config-file", str(config)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("name", FUNCTIONS)
def test_docstrings(name):
    doc = inspect.getdoc(getattr(fastact, name))
    assert doc and len(doc) > 40, f"fastact.{name} needs a docstring"
    activation = name not in ("set_num_threads", "get_num_threads", "simd_target", "simd_targets")
    if activation:
        assert ">>>" in doc, f"fastact.{name}'s docstring needs an example"


def test_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"np": np, "fastact": fastact}
    tests = [t for t in finder.find(fastact, "fastact", globs=globs) if t.examples]
    assert tests, "no docstring examples found"
    for t in tests:
        runner.run(t, out=lambda s: None)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) fail (run python -m doctest on fastact)"
