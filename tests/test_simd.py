"""SIMD target selection and the import-time environment: FASTACT_SIMD picks a kernel set (a clear error
naming the supported ones otherwise), the best target is the default, threads come from
FASTACT_NUM_THREADS / OMP_NUM_THREADS / the CPU count, and ``import fastact`` stays light."""

import os
import platform
import subprocess
import sys

import pytest

import fastact

KNOWN = ("avx512", "avx512f", "avx2", "sse2", "neon", "scalar")


def run(code, tmp_path, **env_overrides):
    """Run ``code`` in a fresh interpreter, outside the source tree, with a clean fastact environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTACT_SIMD", "FASTACT_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_targets_are_listed_best_first():
    targets = fastact.simd_targets()
    assert targets and len(set(targets)) == len(targets)
    assert targets[-1] == "scalar", "the portable baseline comes last"
    assert fastact.simd_target() in targets
    assert all(t in KNOWN for t in targets), targets
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "sse2" in targets, "SSE2 is the x86-64 baseline"
        flags = []
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo") as f:
                flags = f.read().split()
        if "avx2" in flags and "fma" in flags:
            assert "avx2" in targets, "this CPU has AVX2 and FMA"
        if "avx512f" not in flags:
            assert not any(t.startswith("avx512") for t in targets), "this CPU has no AVX-512"
        order = [t for t in ("avx512", "avx512f", "avx2", "sse2", "scalar") if t in targets]
        assert targets == order


def test_internal_switch_rejects_unknown_and_unsupported():
    original = fastact.simd_target()
    for name in ["bogus", ""] + [t for t in KNOWN if t not in fastact.simd_targets()]:
        with pytest.raises(ValueError):
            fastact._core.set_simd_target(name)
        assert fastact.simd_target() == original


@pytest.mark.parametrize("name", fastact.simd_targets())
def test_env_selects_target(name, tmp_path):
    p = run("import fastact; print(fastact.simd_target())", tmp_path, FASTACT_SIMD=name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == name


def test_default_target_is_the_best(tmp_path):
    p = run("import fastact; print(fastact.simd_target(), fastact.simd_targets()[0])", tmp_path)
    assert p.returncode == 0, p.stderr
    chosen, best = p.stdout.split()
    assert chosen == best


@pytest.mark.parametrize("name", ["bogus"] + [t for t in KNOWN if t not in fastact.simd_targets()][:2])
def test_env_rejects_unknown_or_unsupported_target(name, tmp_path):
    p = run("import fastact; print(fastact.simd_target())", tmp_path, FASTACT_SIMD=name)
    assert p.returncode != 0, f"FASTACT_SIMD={name} must fail, got {p.stdout!r}"
    err = p.stderr
    assert name in err, err
    for supported in fastact.simd_targets():
        assert supported in err, f"the error must name the supported target {supported}: {err}"
    assert "Segmentation" not in err and "Illegal instruction" not in err


@pytest.mark.parametrize("env, expected", [
    ({"FASTACT_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "2"}, 2),
    ({"FASTACT_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, 1),
    ({}, None),
], ids=["fastact_env", "omp_env", "fastact_env_wins", "cpu_count"])
def test_default_thread_count_from_environment(env, expected, tmp_path):
    p = run("import fastact, os; print(fastact.get_num_threads())", tmp_path, **env)
    assert p.returncode == 0, p.stderr
    n = int(p.stdout)
    if expected is None:
        counts = {os.cpu_count()}
        if hasattr(os, "sched_getaffinity"):
            counts.add(len(os.sched_getaffinity(0)))
        assert n in counts
    else:
        assert n == expected


def test_import_is_light(tmp_path):
    code = ("import sys, fastact; "
            "print(' '.join(m for m in ('torch', 'scipy', 'matplotlib', 'pandas', 'onnxruntime') if m in sys.modules))")
    p = run(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "", f"import fastact imported {p.stdout.strip()}"


def test_reference_modules_import_nothing_heavy(tmp_path):
    code = ("import sys; import fastact._reference, fastact._accuracy; "
            "print(' '.join(m for m in ('torch', 'scipy') if m in sys.modules))")
    p = run(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
