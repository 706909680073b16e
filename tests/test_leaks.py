"""Leaks (issue 8): 100,000 calls across every public function on small arrays, with and without ``out=``
and with errors raised, grow the resident set by less than a few MB; no call keeps a reference to its
arguments, its result or its ``out`` (sys.getrefcount before and after, error paths included); Python
threads that come and go do not leave OpenMP threads behind."""

import gc
import os
import sys
import threading

import numpy as np
import pytest
from conftest import (ALL, ELEMENTWISE_BACKWARD, SECOND_ARG, SOFTMAX, SOFTMAX_BACKWARD, TWO_ARGS, call, make_inputs,
                      result_dtype)

import fastact

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm (Linux)")

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _under_asan():
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


# AddressSanitizer keeps freed memory in quarantine (256 MB by default): RSS says nothing there.
rss_meaningful = pytest.mark.skipif(_under_asan(), reason="under AddressSanitizer freed memory is quarantined")
TOTAL_CALLS = 100_000
RSS_BOUND = 4 << 20  # bytes; a leak of 40 bytes per call would exceed it


def rss():
    """Resident set size in bytes (the second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _cases():
    """(label, function, args, kwargs, expected exception or None) covering every public function on
    33-element arrays (odd: the vector tails run too): plain, into out=, in place, float16 (cast on the
    way out), a list input, and the error paths (bad dtype, bad out, bad axis, bad slope, ragged list)."""
    cases = []
    for name in ALL:
        fn = getattr(fastact, name)
        shape = (3, 11)
        args32 = make_inputs(name, shape, np.float32, seed=1)
        args16 = make_inputs(name, shape, np.float16, seed=2)
        rdt = result_dtype(name, *args32)
        kw = {"axis": 0} if name in SOFTMAX + SOFTMAX_BACKWARD else {}
        cases += [
            (f"{name} plain", fn, args32, {}, None),
            (f"{name} out", fn, args32, {"out": np.empty(shape, rdt)}, None),
            (f"{name} out float64", fn, args32, {"out": np.empty(shape, np.float64)}, None),
            (f"{name} float16", fn, args16, kw, None),
            (f"{name} strided", fn, [a[:, ::2] for a in args32], kw, None),
            (f"{name} list", fn, [a.tolist() for a in args32], {}, None),
            (f"{name} 0-d", fn, [a[0, 0] for a in args32], {}, None),
            (f"{name} bad dtype", fn, [np.ones(shape, np.complex64)] * len(args32), {}, TypeError),
            (f"{name} bad out shape", fn, args32, {"out": np.empty((2, 2), rdt)}, ValueError),
            (f"{name} bad out type", fn, args32, {"out": [1.0]}, TypeError),
            (f"{name} ragged", fn, [[[1.0], [1.0, 2.0]]] * len(args32), {}, ValueError),
        ]
        if name in SOFTMAX + SOFTMAX_BACKWARD:
            cases += [(f"{name} axis out of range", fn, args32, {"axis": 5}, np.exceptions.AxisError),
                      (f"{name} axis float", fn, args32, {"axis": 0.5}, TypeError),
                      (f"{name} axis tuple", fn, args32, {"axis": (0, 1)}, None)]
        if name.startswith("leaky_relu"):
            cases += [(f"{name} slope str", fn, args32, {"negative_slope": "x"}, TypeError),
                      (f"{name} slope numpy", fn, args32, {"negative_slope": np.float32(0.2)}, None)]
        if name in ELEMENTWISE_BACKWARD:
            cases.append((f"{name} broadcast grad", fn, [args32[0][:1], args32[1]], {}, None))
        if name in TWO_ARGS:
            cases.append((f"{name} shapes mismatch", fn, [args32[0][:, :3], args32[1]], {}, ValueError))
    ip = np.linspace(-2, 2, 33, dtype=np.float32)
    cases.append(("sigmoid in place", fastact.sigmoid, [ip], {"out": ip}, None))
    cases.append(("set_num_threads", fastact.set_num_threads, [fastact.get_num_threads()], {}, None))
    cases.append(("set_num_threads bad", fastact.set_num_threads, [0], {}, ValueError))
    return cases


CASES = _cases()


def run_cases(cases, rounds):
    """Calls every case ``rounds`` times; returns the number of calls. Exceptions are dropped at once, so
    their tracebacks (which reference the arguments) do not outlive the call."""
    calls = 0
    for _ in range(rounds):
        for _label, fn, args, kwargs, exc in cases:
            if exc is None:
                fn(*args, **kwargs)
            else:
                try:
                    fn(*args, **kwargs)
                except exc:
                    pass
                else:  # pragma: no cover - a wrong expectation, reported by test_cases_behave_as_listed
                    raise AssertionError(f"{_label}: no {exc.__name__}")
            calls += 1
    return calls


def test_cases_behave_as_listed(restore_threads):
    for label, fn, args, kwargs, exc in CASES:
        if exc is None:
            fn(*args, **kwargs)
        else:
            with pytest.raises(exc):
                fn(*args, **kwargs)
                pytest.fail(f"{label}: no {exc.__name__}")


@rss_meaningful
def test_rss_does_not_grow_over_100k_calls(restore_threads):
    rounds = -(-TOTAL_CALLS // len(CASES))
    run_cases(CASES, max(1, rounds // 10))  # warm-up: NumPy's caches, pymalloc arenas, pybind11's type info
    gc.collect()
    before = rss()
    calls = run_cases(CASES, rounds)
    gc.collect()
    grown = rss() - before
    assert calls >= TOTAL_CALLS
    assert grown < RSS_BOUND, f"RSS grew by {grown / 2**20:.1f} MiB over {calls} calls ({grown / calls:.0f} B/call)"


@rss_meaningful
def test_rss_does_not_grow_with_larger_arrays(restore_threads):
    """Arrays large enough to be split between threads (and, if leaked, to show at once): 64K elements."""
    fastact.set_num_threads(2)
    x = np.random.default_rng(3).standard_normal((64, 1024)).astype(np.float32)
    y = fastact.softmax(x)
    out = np.empty_like(x)
    work = [(fastact.sigmoid, (x,), {}), (fastact.tanh, (x,), {"out": out}), (fastact.softmax, (x,), {"axis": 0}),
            (fastact.softmax_backward, (x, y), {}), (fastact.relu, (x[:, ::2],), {}),
            (fastact.leaky_relu_backward, (x, x), {"out": out})]
    for fn, args, kwargs in work * 20:
        fn(*args, **kwargs)
    gc.collect()
    before = rss()
    for fn, args, kwargs in work * 200:  # 1200 calls moving ~300 KB each: a leaked result would be 300 MB
        fn(*args, **kwargs)
    gc.collect()
    grown = rss() - before
    assert grown < RSS_BOUND, f"RSS grew by {grown / 2**20:.1f} MiB"


def _refcounts(objs):
    return [sys.getrefcount(o) for o in objs]


def _own(objs):
    """The objects whose reference counts only the test changes: not ints, floats or strings (small ints and
    interned strings are shared with the whole interpreter)."""
    return [o for o in objs if not isinstance(o, (int, float, str))]


def test_reference_counts_unchanged(restore_threads):
    """Every argument object (arrays, lists, out, NumPy slopes, axis tuples) and the dtype objects have the
    same reference count after 50 calls of every case as before."""
    dtypes = [np.dtype(t) for t in ("float16", "float32", "float64", "int64", "complex64")]
    for label, fn, args, kwargs, exc in CASES:
        objs = _own(list(args) + list(kwargs.values())) + dtypes
        before = _refcounts(objs)
        run_cases([(label, fn, args, kwargs, exc)], 50)
        after = _refcounts(objs)
        if after != before:  # give a reference cycle the chance to go first
            gc.collect()
            after = _refcounts(objs)
        changed = [(i, b, a) for i, (b, a) in enumerate(zip(before, after)) if a != b]
        assert not changed, f"{label}: reference counts changed (index, before, after): {changed}"


@pytest.mark.parametrize("name", ALL)
def test_result_and_out_hold_no_extra_references(name):
    args = make_inputs(name, (4, 9), np.float64, seed=4)
    r = call(name, *args)
    assert sys.getrefcount(r) == 2, "a fresh result is referenced only by its name (and getrefcount's argument)"
    out = np.empty_like(r)
    base = sys.getrefcount(out)
    r2 = call(name, *args, out=out)
    assert r2 is out and sys.getrefcount(out) == base + 1
    del r2
    assert sys.getrefcount(out) == base
    s = call(name, *[a[0, 0] for a in args])  # a NumPy scalar from 0-d input
    assert isinstance(s, np.generic) and sys.getrefcount(s) == 2


@pytest.mark.parametrize("name", ALL)
def test_error_paths_release_their_arguments(name):
    """After a raised (and caught) error, the arguments are referenced only by the test again."""
    args = list(make_inputs(name, (4, 9), np.float64, seed=5))
    bad_out = np.empty((2, 2))
    objs = args + [bad_out]
    before = _refcounts(objs)
    for kwargs in ({"out": bad_out}, {"out": "nope"}, {"axis": 7} if name in SOFTMAX + SOFTMAX_BACKWARD else {"out": 1}):
        try:
            call(name, *args, **kwargs)
        except (TypeError, ValueError):
            pass
        else:
            pytest.fail(f"{name}{kwargs}: no error")
    assert _refcounts(objs) == before
    if name in TWO_ARGS:  # the second argument invalid, the first valid
        try:
            call(name, args[0], np.ones(3, np.complex128))
        except TypeError as e:
            assert SECOND_ARG[name] in str(e)
        assert _refcounts(objs) == before


def _thread_count():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_short_lived_python_threads_leave_no_threads_behind(restore_threads):
    """Each Python thread that runs a parallel region gets an OpenMP team of its own; when the thread ends,
    the team must go too (else a server spawning threads per request would pile up idle threads)."""
    if not fastact._core.openmp_enabled():
        pytest.skip("built without OpenMP")
    fastact.set_num_threads(2)
    x = np.random.default_rng(6).standard_normal(1 << 18).astype(np.float32)  # above the grain: 2 threads
    want = fastact.sigmoid(x)
    start = _thread_count()
    results = []

    def work():
        results.append(bool(np.array_equal(fastact.sigmoid(x), want)))

    for _ in range(40):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert all(results) and len(results) == 40
    gc.collect()
    after = _thread_count()
    assert after <= start + 2, f"{after - start} threads left behind by 40 short-lived Python threads"
    if _under_asan():
        return
    before = rss()
    for _ in range(40):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert rss() - before < RSS_BOUND
