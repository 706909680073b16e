"""More than 2**31 elements (issue 8): no 32-bit index overflows anywhere, in the elementwise kernels (one call
over 2**31 + 17 float32 elements, 8 GiB) nor in softmax over more than 2**31 elements in moderate rows and
columns.

Opt-in: these need 9-17 GiB of memory and tens of seconds, so they run only with FASTACT_RUN_SLOW=1 and
enough MemAvailable (/proc/meminfo). Every array is processed in place where possible (one 8 GiB buffer); the
out-of-place variant needs twice that and is skipped on smaller machines.

    FASTACT_RUN_SLOW=1 python -m pytest tests/test_large.py -v

How an overflow would show: the bulk of each array holds one value and a few marked elements sit just below
and above 2**31 (and at the thread split and the very end); a 32-bit index would leave the elements past 2**31
untouched, write them over the head of the array, or crash. Every element is checked (in chunks)."""

import os

import numpy as np
import pytest

import fastact
from fastact import _accuracy, _reference

GiB = 1 << 30
N = 2**31 + 17


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def need(nbytes):
    """Skips unless the slow tests are asked for and ``nbytes`` (plus 1 GiB of slack) are available."""
    if os.environ.get("FASTACT_RUN_SLOW") != "1":
        pytest.skip("a >2**31-element test (8+ GiB, tens of seconds): set FASTACT_RUN_SLOW=1 to run it")
    avail = mem_available()
    if avail < nbytes + GiB:
        pytest.skip(f"needs {(nbytes + GiB) / GiB:.1f} GiB available, /proc/meminfo says {avail / GiB:.1f} GiB")


pytestmark = pytest.mark.slow

CHUNK = 1 << 26


def chunks(a):
    for start in range(0, a.size, CHUNK):
        yield start, a[start:start + CHUNK]


def marked_indices(n):
    """Indices around every boundary a 32-bit index could break at, the halves (the two-thread split), the
    head and the tail."""
    picks = set()
    for center in (0, 2**31 - 1, 2**31, 2**32 // 2 + 1, n // 2, n - 1, 2**30, 2**31 + 1):
        for d in range(-70, 71):
            if 0 <= center + d < n:
                picks.add(center + d)
    picks.update(range(n - 17, n))
    return np.array(sorted(picks), dtype=np.int64)


def check_bulk(a, value, marks, what):
    """Every element equals ``value`` except at ``marks``."""
    marks_set = set(marks.tolist())
    for start, c in chunks(a):
        bad = np.flatnonzero(c != value)
        bad = [start + int(i) for i in bad if start + int(i) not in marks_set]
        assert not bad, f"{what}: {len(bad)} unmarked element(s) differ from {value}, first at {bad[0]} = {a[bad[0]]}"


def check_rows(x, row, skip, what):
    """Every row of ``x`` but those in ``skip`` equals ``row``."""
    step = CHUNK // x.shape[1]
    for start in range(0, x.shape[0], step):
        same = (x[start:start + step] == row).all(axis=1)
        bad = [start + int(i) for i in np.flatnonzero(~same) if start + int(i) not in skip]
        assert not bad, f"{what}: row {bad[0]} ({len(bad)} in rows {start}..{start + step})"


@pytest.fixture
def big():
    need(N * 4)
    x = np.empty(N, np.float32)
    yield x
    del x


@pytest.mark.parametrize("threads", [1, 2])
def test_relu_and_sigmoid_past_2_31_elements_in_place(big, threads, restore_threads):
    fastact.set_num_threads(threads)
    x = big
    marks = marked_indices(N)
    rng = np.random.default_rng(threads)
    vals = (rng.standard_normal(marks.size) * 6).astype(np.float32)
    x.fill(-1.0)
    x[marks] = vals

    assert fastact.relu(x, out=x) is x
    np.testing.assert_array_equal(x[marks], _reference.formula("relu", vals))
    check_bulk(x, 0.0, marks, f"relu, {threads} thread(s)")

    x[marks] = vals
    assert fastact.sigmoid(x, out=x) is x
    got = x[marks]
    err = _accuracy.error("sigmoid", got, vals)
    assert err.max() <= _accuracy.BOUNDS["sigmoid"], f"sigmoid at the marks: worst {err.max()} ULP"
    check_bulk(x, np.float32(0.5), marks, f"sigmoid of relu's zeros, {threads} thread(s)")

    x[marks] = vals  # the elementwise backward kernels too (two inputs: grad = x, y = x)
    fastact.relu_backward(x, x, out=x)
    np.testing.assert_array_equal(x[marks], _reference.formula("relu_backward", vals, vals))
    check_bulk(x, np.float32(0.5), marks, "relu_backward")


def test_relu_past_2_31_elements_into_a_new_array(restore_threads):
    """Out of place: the result (another 8 GiB) is allocated by fastact."""
    need(2 * N * 4)
    fastact.set_num_threads(2)
    x = np.empty(N, np.float32)
    marks = marked_indices(N)
    vals = (np.random.default_rng(7).standard_normal(marks.size) * 6).astype(np.float32)
    x.fill(3.0)
    x[marks] = vals
    y = fastact.relu(x)
    assert y.shape == (N,) and y.dtype == np.float32
    np.testing.assert_array_equal(y[marks], _reference.formula("relu", vals))
    check_bulk(y, 3.0, marks, "relu into a new array")


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_over_more_than_2_31_elements(axis, restore_threads):
    """(2**21 + 1) x 1024 float32 = 2**31 + 1024 elements: rows (axis=-1) start beyond 2**31, columns (axis=0)
    are 2**21 + 1 long with a stride of 1024, so their last element sits past 2**31."""
    fastact.set_num_threads(2)
    rows, cols = 2**21 + 1, 1024
    need(rows * cols * 4)
    x = np.empty((rows, cols), np.float32)
    assert x.size > 2**31
    rng = np.random.default_rng(8)
    x.fill(0.0)
    special_rows = [0, 2**20, 2**21 - 1, 2**21]  # the last row starts at element 2**31
    vals = (rng.standard_normal((len(special_rows), cols)) * 3).astype(np.float32)
    x[special_rows] = vals
    assert fastact.softmax(x, axis=axis, out=x) is x
    if axis == -1:
        got = x[special_rows]
        err = _accuracy.error("softmax", got, vals, axis=-1)
        assert err.max() <= _accuracy.BOUNDS["softmax"], f"softmax rows: worst {err.max()} ULP"
        uniform = np.float32(1.0 / cols)  # 2**-10, exact
        check_rows(x, uniform, special_rows, "softmax rows: a row of zeros is not uniform (1/1024)")
    else:
        # each column: zeros except len(special_rows) entries. The reference (DESIGN.md §2) starts from x - max
        # rounded to float32, as the kernels see it, and is computed in float64.
        m = np.maximum(vals.max(axis=0), np.float32(0))
        d = (vals - m).astype(np.float64)
        d_zero = (np.float32(0) - m).astype(np.float64)
        total = (rows - len(special_rows)) * np.exp(d_zero) + np.exp(d).sum(axis=0)
        err = _accuracy.ulp_error(x[special_rows], np.exp(d) / total)
        assert err.max() <= _accuracy.BOUNDS["softmax"], f"softmax columns, the marked rows: worst {err.max()} ULP"
        for r in (1, 2**20 - 1, 2**20 + 1, 3 * 2**19, 2**21 - 2):  # rows of zeros
            err = _accuracy.ulp_error(x[r], np.exp(d_zero) / total)
            assert err.max() <= _accuracy.BOUNDS["softmax"], f"softmax columns, row {r}: worst {err.max()} ULP"
        # every unmarked row is the same: compare them all with row 1
        check_rows(x, x[1].copy(), special_rows, "softmax columns: an unmarked row differs from row 1")
