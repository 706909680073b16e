"""Threads from the user's side (issue 5): the GIL is released around kernels, a forked child can
call fastact after the parent used several OpenMP threads, torch's own OpenMP runtime can share the
process in either import order, and the thread-count API rejects bad values."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastact


def run_python(code, *, env=None, timeout=120):
    """Runs code in a fresh interpreter; a hang fails the test through the timeout."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.mark.parametrize("bad", [0, -1, -(2**40)])
def test_set_num_threads_rejects_values_below_one(bad, restore_threads):
    with pytest.raises(ValueError, match=r"set_num_threads.*>= 1"):
        fastact.set_num_threads(bad)
    assert fastact.get_num_threads() == restore_threads


@pytest.mark.parametrize("bad", [1.5, "2", None, True, [2]], ids=repr)
def test_set_num_threads_rejects_non_integers(bad, restore_threads):
    with pytest.raises(TypeError, match="set_num_threads"):
        fastact.set_num_threads(bad)
    assert fastact.get_num_threads() == restore_threads


def test_set_num_threads_accepts_numpy_integers(restore_threads):
    fastact.set_num_threads(np.int64(1))
    assert fastact.get_num_threads() == 1


@pytest.mark.parametrize(
    "env, expected",
    [({"FASTACT_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, 3),
     ({"FASTACT_NUM_THREADS": "", "OMP_NUM_THREADS": "5"}, 5),
     ({"FASTACT_NUM_THREADS": "junk", "OMP_NUM_THREADS": "2"}, 2)],
    ids=["fastact_env_wins", "omp_env_fallback", "invalid_value_ignored"])
def test_default_thread_count_comes_from_the_environment(env, expected):
    r = run_python("import fastact; print(fastact.get_num_threads())", env=env)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == expected


def test_default_thread_count_is_the_cpu_count_without_environment():
    env = {k: v for k, v in os.environ.items() if k not in ("FASTACT_NUM_THREADS", "OMP_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", "import os, fastact; print(fastact.get_num_threads(), "
                        "len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count())"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    got, cpus = map(int, r.stdout.split())
    assert got == cpus


def test_gil_is_released_during_kernels(restore_threads):
    """A Python thread keeps counting while another runs long fastact calls; if the GIL were held,
    the counter could only advance at the calls' boundaries (a handful of times)."""
    fastact.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal(8_000_000).astype(np.float32)
    out = np.empty_like(x)
    fastact.sigmoid(x, out=out)  # warm up
    stop = threading.Event()
    ticks = [0]

    def count():
        while not stop.is_set():
            ticks[0] += 1

    sys_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        counter = threading.Thread(target=count)
        counter.start()
        calls = 0
        # Each call is long (~10 ms); we count ticks that happened while kernels ran.
        for _ in range(10):
            before = ticks[0]
            fastact.tanh(x, out=out)
            fastact.softmax(x.reshape(1000, -1), out=out.reshape(1000, -1))
            calls += 2 if ticks[0] > before else 0
        stop.set()
        counter.join()
    finally:
        sys.setswitchinterval(sys_interval)
    # With the GIL held, the counter thread would get no time inside the calls, so at most the
    # odd call would see progress; released, essentially every call does.
    assert calls >= 16, f"the counter advanced during only {calls // 2} of 10 call pairs"


def test_two_python_threads_get_the_same_results_as_one(restore_threads):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(2_000_000).astype(np.float32) for _ in range(2)]
    expected = [fastact.sigmoid(x) for x in xs]
    results = [None, None]

    def work(i):
        for _ in range(3):
            results[i] = fastact.sigmoid(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


FORK_CHILD = """
    import multiprocessing as mp, sys
    import numpy as np, fastact
    fastact.set_num_threads({threads})
    x = np.linspace(-5, 5, 4_000_000, dtype=np.float32)
    expected = fastact.sigmoid(x)          # the parent's OpenMP team now exists
    def child(q):
        q.put(bool(np.array_equal(fastact.sigmoid(x), expected))
              and bool(np.allclose(fastact.softmax(x.reshape(400, -1)).sum(axis=1), 1)))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    ok = q.get(timeout=60)
    p.join(60)
    print("child ok" if ok and p.exitcode == 0 else "child failed")
    # the parent still runs threaded afterwards
    assert np.array_equal(fastact.sigmoid(x), expected)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the fork start method")
@pytest.mark.parametrize("threads", [1, 2])
def test_forked_child_can_call_fastact(threads):
    """GNU OpenMP's thread pool does not survive fork(): without fastact's at-fork handler the
    child would hang on its first parallel region (caught here by the timeout)."""
    r = run_python(FORK_CHILD.format(threads=threads), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "child ok" in r.stdout


TORCH_CO_IMPORT = """
    import numpy as np
    {first}
    {second}
    torch.set_num_threads(2)
    fastact.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((512, 2048)).astype(np.float32)
    for _ in range(3):
        a = fastact.softmax(x)
        b = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
        assert np.allclose(a, b, rtol=1e-5, atol=1e-7)
        s = fastact.sigmoid(x)
        assert np.allclose(s, torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=0)
    print("ok")
"""


@pytest.mark.parametrize("order", ["torch_first", "fastact_first"])
def test_torch_in_the_same_process(order):
    pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0)")
    imports = ["import torch", "import fastact"]
    if order == "fastact_first":
        imports.reverse()
    r = run_python(TORCH_CO_IMPORT.format(first=imports[0], second=imports[1]), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")
