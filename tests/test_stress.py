"""Concurrency and interrupts (issue 8): eight Python threads hammering mixed functions on shared read-only
inputs with private outputs give the serial results bit for bit; set_num_threads (and the internal SIMD
switch) called concurrently from several threads does not crash or change results; a KeyboardInterrupt in
the middle of a loop of large calls leaves the process usable.

FASTACT_STRESS_SECONDS sets how long the hammering runs (default 2.5 s)."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from conftest import ALL, SOFTMAX, SOFTMAX_BACKWARD, call, make_inputs, same_bits

import fastact
from fastact import _reference

SECONDS = float(os.environ.get("FASTACT_STRESS_SECONDS", "2.5"))
AXIS_FUNCS = SOFTMAX + SOFTMAX_BACKWARD


def _read_only(args):
    for a in args:
        a.flags.writeable = False
    return args


@functools.lru_cache(maxsize=None)
def work_items():
    """(name, args, kwargs): every function on small and on threaded-size inputs (above the grain, so each
    call also starts an OpenMP team), float32 and float64, contiguous and strided. Built once, on first use."""
    items = []
    for name in ALL:
        for seed, (shape, dtype) in enumerate((((7, 33), np.float32), ((64, 4096), np.float32),
                                               ((300, 700), np.float64))):
            args = _read_only(list(make_inputs(name, shape, dtype, seed=seed)))
            items.append((name, args, {}))
            if name in AXIS_FUNCS:
                items.append((name, args, {"axis": 0}))
        strided = _read_only([a[:, ::3] for a in make_inputs(name, (50, 999), np.float32, seed=3)])
        items.append((name, strided, {}))
    return items


def _hammer(items, expected, seconds, n_threads, on_the_side=None):
    """Runs n_threads threads that each go through ``items`` in their own shuffled order, again and again for
    ``seconds`` (and at least once through all of them, however slow the machine: a sanitizer build is),
    half the time into a private out=, and compare every result with ``expected``. Returns the calls made and
    the mismatches found (also the errors any thread raised)."""
    stop = threading.Event()
    errors, mismatches, counts = [], [], [0] * n_threads
    barrier = threading.Barrier(n_threads + 1)

    def worker(k):
        rng = np.random.default_rng(100 + k)
        outs = [np.empty(e.shape, e.dtype) for e in expected]  # private outputs
        try:
            barrier.wait()
            while not stop.is_set():
                for i in rng.permutation(len(items)):
                    if stop.is_set():
                        break
                    name, args, kwargs = items[i]
                    if rng.random() < 0.5:
                        r = call(name, *args, out=outs[i], **kwargs)
                    else:
                        r = call(name, *args, **kwargs)
                    if not same_bits(r, expected[i]):
                        mismatches.append((k, name, kwargs, args[0].shape))
                    counts[k] += 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append((k, repr(e)))
            stop.set()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.monotonic()
    deadline, limit = start + seconds, start + max(120.0, 10 * seconds)
    while (time.monotonic() < deadline or min(counts) < len(items)) and time.monotonic() < limit \
            and not stop.is_set():
        if on_the_side is not None:
            on_the_side()
        else:
            time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hangs"
    assert not errors, f"worker threads raised: {errors[:3]}"
    return counts, mismatches


def _serial(items):
    return [np.asarray(call(name, *args, **kwargs)).copy() for name, args, kwargs in items]


def test_eight_threads_match_a_serial_run(restore_threads):
    fastact.set_num_threads(2)
    items = work_items()
    expected = _serial(items)
    inputs_before = [[a.copy() for a in args] for _, args, _ in items]
    counts, mismatches = _hammer(items, expected, SECONDS, 8)
    assert not mismatches, f"{len(mismatches)} results differ from the serial run, e.g. {mismatches[:3]}"
    assert min(counts) >= len(items), f"a thread made too few calls: {counts}"
    for (_, args, _), before in zip(items, inputs_before):  # shared inputs untouched
        for a, b in zip(args, before):
            assert same_bits(a, b)


def test_set_num_threads_concurrently(restore_threads):
    """Four threads changing the thread count as fast as they can while eight others compute: no crash, and the
    results stay the serial ones (they do not depend on the thread count)."""
    items = work_items()
    expected = _serial(items)
    stop = threading.Event()
    seen = set()

    def setter(k):
        rng = np.random.default_rng(k)
        while not stop.is_set():
            n = int(rng.integers(1, 5))
            fastact.set_num_threads(n)
            seen.add(fastact.get_num_threads())

    setters = [threading.Thread(target=setter, args=(k,)) for k in range(4)]
    for t in setters:
        t.start()
    try:
        counts, mismatches = _hammer(items, expected, min(SECONDS, 1.5), 8)
    finally:
        stop.set()
        for t in setters:
            t.join()
    assert not mismatches, f"results changed with the thread count: {mismatches[:3]}"
    assert seen <= {1, 2, 3, 4} and fastact.get_num_threads() in {1, 2, 3, 4}


def test_simd_target_switched_concurrently(restore_threads):
    """The internal target switch (the tests' fixture uses it) swaps one atomic pointer: switching it while
    threads compute is safe. Only the exact functions are checked, being bitwise equal on every target."""
    exact = [it for it in work_items() if it[0] in _reference.EXACT]
    expected = _serial(exact)
    targets = fastact.simd_targets()
    original = fastact.simd_target()
    i = [0]

    def switch():
        fastact._core.set_simd_target(targets[i[0] % len(targets)])
        i[0] += 1
        time.sleep(0.001)

    try:
        counts, mismatches = _hammer(exact, expected, min(SECONDS, 1.0), 4, on_the_side=switch)
    finally:
        fastact._core.set_simd_target(original)
    assert not mismatches, mismatches[:3]
    assert i[0] > 10


# -- KeyboardInterrupt ------------------------------------------------------------------------------
INTERRUPT = """
    import os, signal, sys, threading, time
    import numpy as np, fastact
    # Python installs its KeyboardInterrupt handler only if SIGINT was not ignored when it started, and a
    # background job of a non-interactive shell (as CI may run us) starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    fastact.set_num_threads(2)
    n = {n}
    x = np.linspace(-12, 12, n, dtype=np.float32)
    out = np.empty_like(x)
    x16 = x[: n // 4].astype(np.float16)        # float16 results are rounded inside an np.errstate block
    rows = x[: n // 4].reshape(-1, 4096)
    small = np.linspace(-8, 8, 1001, dtype=np.float32)
    want_small = fastact.sigmoid(small)
    want_head = fastact.sigmoid(x[:1 << 20])
    errstate = np.geterr()
    main = threading.get_ident()

    def fire(delay, how):
        time.sleep(delay)
        if how == "pthread_kill":
            signal.pthread_kill(main, signal.SIGINT)      # to the main thread
        else:
            os.kill(os.getpid(), signal.SIGINT)           # to the process: any thread may take it

    work = {{"sigmoid_out": lambda: fastact.sigmoid(x, out=out), "tanh_new": lambda: fastact.tanh(x),
            "float16": lambda: fastact.sigmoid(x16), "softmax_rows": lambda: fastact.softmax(rows, out=rows.copy()),
            "softmax_cols": lambda: fastact.softmax(rows, axis=0)}}
    for round, (label, fn) in enumerate(work.items()):
        for how in ("pthread_kill", "kill"):
            calls = 0
            t0 = time.monotonic()
            try:
                threading.Thread(target=fire, args=(0.05 + 0.04 * round, how), daemon=True).start()
                while time.monotonic() - t0 < 30:
                    fn()
                    calls += 1
                print("NOT INTERRUPTED", label, how)
                sys.exit(3)
            except KeyboardInterrupt:
                pass
            # the process is usable: right results, thread pool working, NumPy's error state restored
            assert np.geterr() == errstate, (label, how, np.geterr())
            assert np.array_equal(fastact.sigmoid(small), want_small), (label, how)
            assert np.array_equal(fastact.sigmoid(x, out=out)[:1 << 20], want_head), (label, how)
            assert abs(float(fastact.softmax(rows[:3]).sum()) - 3) < 1e-3
            print("ok", label, how, "interrupted after", calls, "calls")
    print("DONE")
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill (POSIX)")
def test_keyboard_interrupt_leaves_the_process_usable():
    n = 1 << 26  # 64M float32 (256 MB, 512 MB with out): each sigmoid call takes tens of milliseconds
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(INTERRUPT.format(n=n))], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}"
    assert r.stdout.strip().endswith("DONE"), r.stdout
    assert r.stdout.count("ok ") == 10, r.stdout
