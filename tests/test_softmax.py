"""Softmax, log_softmax and their backward ops: DESIGN.md §1 "Axes" on every layout, special slices,
zero-length slices, 0-d input, and shape errors."""

import re

import numpy as np
import pytest
from conftest import (LAYOUTS, SECOND_ARG, SOFTMAX, SOFTMAX_BACKWARD, assert_correct, assert_same, call,
                      make_inputs)
from numpy.exceptions import AxisError

import fastact
from fastact import _accuracy

FAMILY = SOFTMAX + SOFTMAX_BACKWARD
AXES = {"0": 0, "1": 1, "2": 2, "m1": -1, "m2": -2, "m3": -3, "None": None, "0_2": (0, 2), "1_2": (1, 2),
        "m1_0": (-1, 0), "0_1_2": (0, 1, 2)}
SHAPE = (4, 5, 19)


def _axis_cases():
    for name in FAMILY:
        for axis_id in AXES:
            for layout in LAYOUTS:
                dtypes = ("float32", "float64") if layout == "contiguous" else ("float32",)
                if name in SOFTMAX_BACKWARD and layout not in ("contiguous", "fortran", "negstride"):
                    continue
                for dtype in dtypes:
                    yield pytest.param(name, dtype, layout, axis_id, id=f"{name}-{dtype}-{layout}-axis{axis_id}")


@pytest.mark.parametrize("name, dtype, layout, axis_id", list(_axis_cases()))
def test_every_axis_on_every_layout(name, dtype, layout, axis_id, target):
    axis = AXES[axis_id]
    base = make_inputs(name, SHAPE, dtype, seed=11, axis=axis)
    args = [LAYOUTS[layout](a) for a in base]
    r = call(name, *args, axis=axis)
    assert r.shape == SHAPE
    assert_correct(name, r, *base, axis=axis)
    if axis_id == "m1":
        assert_same(r, call(name, *args), "axis=-1 is the default")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FAMILY)
def test_non_last_axis_every_inner_length(name, dtype, target):
    """Reducing over a non-last axis vectorises across the inner dimension: every inner length 1..33
    (every tail), and slices of lengths 1..9 along axis 0. The longer slices give the last, partial
    vector of columns (masked) an odd number of rows paired across their halves."""
    for n in range(1, 34):
        for shape, axis in (((5, n), 0), ((3, 4, n), 1), ((n, 3), 0), ((101, n), 0)):
            args = make_inputs(name, shape, dtype, seed=n, axis=axis)
            assert_correct(name, call(name, *args, axis=axis), *args, axis=axis)
    args = make_inputs(name, (1024, 250), dtype, seed=250, axis=0)
    assert_correct(name, call(name, *args, axis=0), *args, axis=0)
    for m in range(1, 10):
        args = make_inputs(name, (m, 17), dtype, seed=m, axis=0)
        assert_correct(name, call(name, *args, axis=0), *args, axis=0)


SLICE_LENGTHS = [*range(1, 70), *range(120, 140), *range(250, 275), 1023, 1025]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_axis_0_at_a_stride_that_aliases_in_cache(name, dtype, target):
    """Along axis 0 of rows a multiple of 1 KB long, column blocks are copied to contiguous rows before
    the passes (pack_block in softmax-inl.h), up to 256 KB a block: results must be correct and equal,
    bit for bit, to the same columns reduced at a stride that is not copied (rows 8 elements longer),
    also in place, and on both sides of the size limit (2048 and 2049 rows of 1024 floats)."""
    cases = [(1, 256), (2, 1024), (9, 256), (64, 1024), (255, 512), (33, 4096)]
    if dtype == "float32":
        cases += [(2048, 1024), (2049, 1024)]
    for rows, width in cases:
        (x,) = make_inputs(name, (rows, width), dtype, seed=rows + width, axis=0)
        r = call(name, x, axis=0)
        assert_correct(name, r, x, axis=0)
        padded = np.zeros((rows, width + 8), dtype)
        padded[:, :width] = x
        assert_same(r, call(name, padded, axis=0)[:, :width], f"{rows} x {width}: rows 8 longer")
        inplace = x.copy()
        call(name, inplace, axis=0, out=inplace)
        assert_same(inplace, r, f"{rows} x {width}: in place")


def _with_specials(x, rng):
    """x with a NaN, an all -inf slice, a +inf and a -inf in its first slices along axis 0 (as many as
    it has): each must behave as in a row."""
    x = x.copy()
    n, w = x.shape
    if w > 1:
        x[rng.integers(n), 0] = np.nan
    if w > 2:
        x[:, 1] = -np.inf
    if w > 3:
        x[rng.integers(n), 2] = np.inf
    if w > 4:
        x[rng.integers(n), 3] = -np.inf
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FAMILY)
def test_few_contiguous_slices_along_axis_0(name, dtype, target):
    """Fewer slices than a vector holds, rows contiguous (axis 0 of n x w, w < 16): read as flat vectors
    whose lanes map to the slices in a repeating pattern (softmax_narrow_cols). Every w < 18 and slice
    lengths on both sides of the pairing and the pattern's period, with special values in the forward
    inputs: equal, bit for bit, to the rows of the transpose for float32 (same pairs, sums in double),
    correct for both dtypes, and the same in place."""
    rng = np.random.default_rng(17)
    for w in range(1, 18):
        for n in (1, 2, 3, 15, 16, 17, 47, 48, 49, 257):
            args = make_inputs(name, (n, w), dtype, seed=31 * n + w, axis=0)
            if name in SOFTMAX:
                args = [_with_specials(args[0], rng)]
            r = call(name, *args, axis=0)
            rows = call(name, *[np.ascontiguousarray(a.T) for a in args], axis=-1).T
            plain = slice(min(w - 1, 4), None) if name in SOFTMAX else slice(None)  # slices without specials
            if r[:, plain].size:
                assert_correct(name, r[:, plain], *[a[:, plain] for a in args], axis=0)
            if dtype == "float32":
                assert_same(r, rows, f"{n} x {w}: axis 0 against the rows of the transpose")
            inplace = args[0].copy()
            call(name, inplace, *args[1:], axis=0, out=inplace)
            assert_same(inplace, r, f"{n} x {w}: in place")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_rows_of_one_vector_with_special_values(name, dtype, target):
    """A row of exactly one vector (4, 8 or 16 elements by target) is reduced in a lane of a transposed
    block (softmax_short_rows): with NaN, +inf, -inf and all -inf rows it must give what the column kernel
    gives for the same slices (float32: the same bits), and NaN, 0 or -inf where the rules say."""
    rng = np.random.default_rng(23)
    for n in (2, 4, 8, 16, 32):
        (x,) = make_inputs(name, (n, 6), dtype, seed=n, axis=0)
        x = _with_specials(x, rng)
        rows = call(name, np.ascontiguousarray(x.T), axis=-1)
        cols = call(name, x, axis=0).T
        if dtype == "float32":
            assert_same(rows, cols, f"rows of {n}")
        assert np.isnan(rows[0]).all() and np.isnan(rows[1]).all() and np.isnan(rows[2]).all()
        assert not np.isnan(rows[3]).any()
        assert (rows[3][np.isneginf(x[:, 3])] == (-np.inf if name == "log_softmax" else 0)).all()
        assert_correct(name, rows[4:], np.ascontiguousarray(x.T)[4:], axis=-1)


# Lanes of a float32 vector on each target (float64: half as many).
FLOAT32_LANES = {"avx512": 16, "avx2": 8, "sse2": 4, "neon": 4, "scalar": 1}
# Rows shorter than this many vectors are transposed (softmax-inl.h, kShortRowVectors): AVX-512 has
# the table exp and costlier transposes, so fewer rows pay there.
SHORT_ROW_VECTORS = {"avx512": 3, "avx2": 8, "sse2": 8, "neon": 8, "scalar": 8}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_short_rows_match_axis_0_bit_for_bit(name, dtype, target):
    """Rows shorter than a few vectors (SHORT_ROW_VECTORS) are transposed in registers, as many rows at
    a time as a vector has lanes, and each is reduced in its own lane by the column kernel's
    arithmetic: they must give the bits of the same slices along axis 0 (64 columns: whole column
    blocks), with logits spread over [-80, 0] so the sums round, and with NaN, all -inf, +inf and
    -inf rows. 61 rows make full blocks and a partial one. Also in place, and into an out= view inside
    a larger buffer, whose elements outside the view must keep their values (rows are written as whole
    vectors where they can be)."""
    lanes = max(1, FLOAT32_LANES[target] * 4 // np.dtype(dtype).itemsize)
    rng = np.random.default_rng(5)
    for n in range(1, SHORT_ROW_VECTORS[target] * lanes):
        x_t = _with_specials(rng.uniform(-80.0, 0.0, (n, 61)).astype(dtype), rng)
        x = np.ascontiguousarray(x_t.T)
        rows = call(name, x, axis=-1)
        cols = np.zeros((n, 64), dtype)
        cols[:, :61] = x_t
        assert_same(rows, call(name, cols, axis=0)[:, :61].T, f"rows of {n}: axis 0 of the transpose")
        # 61 columns: the last few (fewer than a vector) are copied out and reduced as single rows.
        assert_same(call(name, x_t, axis=0).T, rows, f"rows of {n}: axis 0 of 61 columns")
        assert np.isnan(rows[:3]).all() and not np.isnan(rows[4:]).any()  # (row 3's -inf is all of it for n = 1)
        inplace = x.copy()
        call(name, inplace, axis=-1, out=inplace)
        assert_same(inplace, rows, f"rows of {n}: in place")
        buf = np.full(61 * n + 2 * lanes, 7.0, dtype)
        out = buf[lanes:lanes + 61 * n].reshape(61, n)
        call(name, x, axis=-1, out=out)
        assert_same(out, rows, f"rows of {n}: into a view")
        assert (buf[:lanes] == 7).all() and (buf[-lanes:] == 7).all(), f"rows of {n}: written outside out"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
def test_short_backward_rows_match_axis_0_bit_for_bit(name, dtype, target):
    """Backward rows shorter than a vector's lanes (every length) are transposed as the forward ones
    are (g and y both), and each row's sum is added in its lane as the column kernel adds it: the same
    bits as the slices along axis 0, for sums that round. 61 rows; also in place (into g and into y),
    and into an out= view whose surroundings must keep their values."""
    lanes = max(1, FLOAT32_LANES[target] * 4 // np.dtype(dtype).itemsize)
    for n in range(1, lanes) or [1]:
        g, y = make_inputs(name, (61, n), dtype, seed=n)
        rows = call(name, g, y, axis=-1)
        assert_correct(name, rows, g, y, axis=-1)
        cols = [np.zeros((n, 64), dtype) for _ in range(2)]
        cols[0][:, :61], cols[1][:, :61] = g.T, y.T
        assert_same(rows, call(name, *cols, axis=0)[:, :61].T, f"rows of {n}: axis 0 of the transpose")
        for which in (0, 1):
            args = [g.copy(), y.copy()]
            call(name, *args, axis=-1, out=args[which])
            assert_same(args[which], rows, f"rows of {n}: in place (argument {which})")
        buf = np.full(61 * n + 2 * lanes, 7.0, dtype)
        out = buf[lanes:lanes + 61 * n].reshape(61, n)
        call(name, g, y, axis=-1, out=out)
        assert_same(out, rows, f"rows of {n}: into a view")
        assert (buf[:lanes] == 7).all() and (buf[-lanes:] == 7).all(), f"rows of {n}: written outside out"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_backward_rows_in_place_in_the_vector_match_axis_0(name, dtype, n, target):
    """Float rows of 2 and 4 are reduced where they lie, several to a vector, their one or two pair
    terms added in float (softmax_backward_lane_rows), and rows of one vector in batches of F64::N
    (softmax_backward_vector_rows): the bits of the same slices along axis 0, whose sums are added in
    double from +0, and of each row alone. Rows whose terms are all -0 (the sum must be +0: g - s keeps
    g's -0), +-0 products of signed zeros, subnormal terms, terms that cancel, inf and NaN, and for
    float32 pairs that overflow (float64 adds a row's terms one by one, in an order that depends on the
    layout, so a sum that overflows on the way may do so in one layout only); 61 rows, so the last
    vector is part full."""
    rng = np.random.default_rng(n)
    g, y = make_inputs(name, (61, n), dtype, seed=n)
    g, y = g.copy(), y.copy()
    tiny = float(np.finfo(dtype).smallest_subnormal)
    big = float(np.finfo(dtype).max) / 2
    half = n // 2
    specials = [
        ([-0.0] * n, [1.0] * n), ([-0.0] * n, [-0.0] * n), ([0.0] * n, [-1.0] * n), ([-0.0] * n, [0.5] * n),
        ([tiny] * n, [0.5] * n), ([-tiny, tiny] * half, [1.0] * n),
        ([big] * n, [1.5] * n), ([1e30, 1.0] * half, [1.0] * n), ([np.inf] + [0.0] * (n - 1), [1.0] * n),
        ([1.0] * n, [np.nan] + [0.5] * (n - 1)), ([np.inf] * half + [-np.inf] * half, [1.0] * n),
    ]
    if dtype == "float32":  # pairs overflow in float (in every layout) though the exact sum is 0
        specials += [([big, -big] * half, [1.0] * n), ([big] * half + [-big] * half, [1.0] * n)]
    rows_at = rng.choice(61, len(specials), replace=False)
    for r, (gs, ys) in zip(rows_at, specials):
        g[r], y[r] = gs, ys
    with np.errstate(all="ignore"):
        rows = call(name, g, y, axis=-1)
    cols = call(name, np.ascontiguousarray(g.T), np.ascontiguousarray(y.T), axis=0).T
    assert_same(rows, cols, f"rows of {n}: axis 0 of the transpose")
    alone = np.concatenate([call(name, g[r:r + 1], y[r:r + 1], axis=-1) for r in range(61)])
    assert_same(rows, alone, f"rows of {n}: each row alone")
    zero_row = rows_at[0]
    if name == "softmax_backward":  # y (-0 - (+0)) = -0; with a sum of -0 it would be +0
        assert np.all(np.signbit(rows[zero_row])), f"rows of {n}: {rows[zero_row]}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
def test_backward_column_blocks_and_chunks_match_single_columns(name, dtype, target):
    """Along axis 0, the backward runs blocks of 4 vectors of columns, each block's last pass in one loop
    with the next block's sum (softmax_backward_col_blocks), or, for long slices and for arrays near
    one page offset at strides of 2 KB multiples (in place, here), chunks of up to 4 KB of each row
    with the sums kept in memory (softmax_backward_col_chunk). Every column must get the bits it gets
    alone (a one-column view, a masked block of its own), for odd and even slice lengths, also in
    place (into g and into y); 129 rows take chunks, and 1100 or 1024 columns more than one."""
    for shape in ((15, 203), (16, 200), (33, 130), (7, 1100), (9, 1024), (129, 1100)):
        g, y = make_inputs(name, shape, dtype, seed=shape[0], axis=0)
        whole = call(name, g, y, axis=0)
        assert_correct(name, whole, g, y, axis=0)
        alone = np.stack([call(name, g[:, c:c + 1], y[:, c:c + 1], axis=0)[:, 0] for c in range(shape[1])], axis=1)
        assert_same(whole, alone, f"{shape}: whole against one column at a time")
        for which in (0, 1):
            args = [g.copy(), y.copy()]
            call(name, *args, axis=0, out=args[which])
            assert_same(args[which], whole, f"{shape}: in place (argument {which})")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_long_rows_in_turn_match_single_rows(name, dtype, target):
    """Rows of 16 vectors or more run each row's exp loop with the next row's max and the previous row's
    last pass beside it: every row must equal the same row passed alone, bit for bit, with NaN, +inf
    and all -inf rows first, last and next to each other (their neighbours then take the passes apart),
    at lengths with and without tails, and in place."""
    rng = np.random.default_rng(17)
    for n in (256, 257, 1000, 1024, 1031, 4099):
        x = rng.uniform(-30.0, 5.0, (9, n)).astype(dtype)
        x[0, 3] = np.nan
        x[4, :] = -np.inf
        x[5, n // 2] = np.inf
        x[8, n - 1] = np.nan
        x[2, :7] = -np.inf
        r = call(name, x, axis=-1)
        for i in range(9):
            assert_same(r[i], call(name, x[i:i + 1], axis=-1)[0], f"{name}, row {i} of 9 rows of {n}")
        assert np.isnan(r[[0, 4, 5, 8]]).all() and not np.isnan(r[[1, 2, 3, 6, 7]]).any()
        assert_correct(name, r[[1, 2, 3, 6, 7]], x[[1, 2, 3, 6, 7]], axis=-1)
        inplace = x.copy()
        call(name, inplace, axis=-1, out=inplace)
        assert_same(inplace, r, f"{name}, rows of {n} in place")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FAMILY)
def test_every_slice_length(name, dtype, target):
    """Slices are split at len/2 for pairing and into vectors, short and long loops, and tails:
    every length up to 69 and every remainder around the short/long switch (128 floats, 64
    doubles) and beyond, along the last axis and along axis 0. For float32 the two give the same
    bits (their sums are in double, exact for these logits; for logits spread further the double
    additions round, in an order that depends on the layout: see
    test_row_batches_match_single_rows_bit_for_bit); float64 sums, compensated, may differ in the last
    bit."""
    for n in SLICE_LENGTHS:
        args = make_inputs(name, (3, n), dtype, seed=n, axis=-1)
        r = call(name, *args)
        assert_correct(name, r, *args, axis=-1)
        cols = [np.ascontiguousarray(a.T) for a in args]
        r0 = call(name, *cols, axis=0)
        assert_correct(name, r0, *cols, axis=0)
        if dtype == "float32":
            assert_same(r0.T, r, f"length {n}: axis 0 of the transpose")


@pytest.mark.parametrize("name", FAMILY)
def test_axis_errors(name):
    args = make_inputs(name, (2, 3, 4), np.float32)
    for axis in (3, -4, (0, 3), (-4,), 100):
        with pytest.raises(AxisError):
            call(name, *args, axis=axis)
    for axis in ((1, 1), (0, -3), (2, -1, 0)):
        with pytest.raises(ValueError, match="(?i)duplicate|repeat"):
            call(name, *args, axis=axis)


@pytest.mark.parametrize("name", SOFTMAX_BACKWARD)
def test_backward_shape_mismatch_names_both_arguments(name):
    second = SECOND_ARG[name]
    for gshape, yshape in (((3, 4), (3, 5)), ((3, 1), (3, 4)), ((4,), (3, 4)), ((3, 4), (3, 4, 1))):
        with pytest.raises(ValueError) as info:
            call(name, np.ones(gshape), np.zeros(yshape))
        msg = str(info.value)
        assert "grad" in msg and re.search(rf"\b{second}\b", msg), f"{name}: message must name grad and {second}: {msg!r}"


# -- special slices -------------------------------------------------------------------------------
ROW = 37  # slices long enough for a vector body and a tail; specials placed in both


# float32 slices of at least this many bytes take the two-pass (online max and sum) form: kOnlineMinLen
# in csrc/kernels/online_softmax.h. float64 slices as long keep three passes; they are tested alike.
TWO_PASS_BYTES = 16 << 20


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_slices_past_the_cache(name, dtype, target):
    """Slices too long for the cache (float32: the two-pass form): a running max per lane raised block
    by block (a rising slice raises it in every block), the lanes' sums combined, a tail past the last
    block and vector, and the special slices, within the same bounds as shorter slices."""
    n = TWO_PASS_BYTES // np.dtype(dtype).itemsize + 37
    rng = np.random.default_rng(5)
    rows = [rng.normal(0, 4, n), np.linspace(-60, 40, n), np.linspace(40, -60, n)]
    spiky = rng.normal(0, 1, n)
    spiky[rng.integers(0, n, 50)] = 30.0  # a few lanes' max far above the rest
    spiky[-1] = 35.0  # the largest value in the tail
    rows.append(spiky)
    with_neg_inf = rng.normal(0, 4, n)
    with_neg_inf[::7] = -np.inf
    rows.append(with_neg_inf)
    x = np.array(rows).astype(dtype)
    r = call(name, x)
    assert_correct(name, r, x)
    assert np.all(r[-1][::7] == (0 if name == "softmax" else -np.inf))
    if name == "softmax":
        np.testing.assert_allclose(r.astype(np.float64).sum(axis=-1), 1.0, rtol=1e-5 if dtype == "float32" else 1e-12)

    special = np.zeros((5, n), dtype)
    special[0, -1] = np.nan  # in the tail
    special[1, n // 3] = np.inf
    special[2, :] = -np.inf
    special[3, :] = -np.inf
    special[3, n - 5] = 1.0  # the only finite entry, in the tail
    special[4, 12345] = np.nan
    special[4, 23456] = -np.inf
    r = call(name, special)
    assert np.all(np.isnan(r[[0, 1, 2, 4]])), "a NaN, +inf or all -inf slice is all NaN"
    single = r[3]
    assert single[n - 5] == (1.0 if name == "softmax" else 0.0)
    others = np.delete(single, n - 5)
    assert np.all(others == 0) if name == "softmax" else np.all(np.isneginf(others))

    inplace = x[:2].copy()
    assert call(name, inplace, out=inplace) is inplace
    assert_same(inplace, call(name, x[:2]), "in place")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_special_slices(name, dtype, target):
    positions = (0, 5, 8, 17, 31, 36)
    rows = []
    expect_nan = []
    for pos in positions:
        for special in (np.nan, np.inf):
            row = np.linspace(-3, 3, ROW)
            row[pos] = special
            rows.append(row)
            expect_nan.append(True)
        row = np.linspace(-3, 3, ROW)
        row[pos] = -np.inf
        rows.append(row)
        expect_nan.append(False)
        row = np.linspace(-3, 3, ROW)  # +inf and -inf together: NaN
        row[pos], row[-1 - pos] = np.inf, -np.inf
        rows.append(row)
        expect_nan.append(True)
    rows.append(np.full(ROW, -np.inf))  # all -inf: NaN
    expect_nan.append(True)
    rows.append(np.full(ROW, -np.inf))
    rows[-1][3] = 2.0  # one finite entry: 1 there (log: 0), 0 elsewhere (log: -inf)
    expect_nan.append(False)
    rows.append(np.linspace(-3, 3, ROW))
    expect_nan.append(False)
    x = np.array(rows).astype(dtype)
    for axis, xx in ((-1, x), (0, np.ascontiguousarray(x.T))):
        r = call(name, xx, axis=axis)
        rr = r if axis == -1 else r.T
        assert_correct(name, r, xx, axis=axis)
        for i, nan in enumerate(expect_nan):
            finite_in = np.isfinite(x[i])
            if nan:
                assert np.all(np.isnan(rr[i])), f"row {i} ({x[i][~finite_in]}) must be all NaN"
                continue
            assert not np.any(np.isnan(rr[i])), f"row {i} must not hold NaN"
            neg = np.isneginf(x[i])
            if name == "softmax":
                assert np.all(rr[i][neg] == 0) and not np.any(np.signbit(rr[i][neg])), "-inf entries give +0"
            else:
                assert np.all(np.isneginf(rr[i][neg])), "-inf entries give -inf"
        single = rr[-2]
        assert (single[3] == 1.0) if name == "softmax" else (single[3] == 0.0)


def test_backward_special_values_propagate(target):
    g = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    y = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    r = call("softmax_backward", g, y)
    assert np.all(np.isnan(r[0])) and not np.any(np.isnan(r[1]))
    assert_correct("softmax_backward", r, g, y)
    ly = np.log(y)
    r = call("log_softmax_backward", g, ly)
    assert np.all(np.isnan(r[0])) and not np.any(np.isnan(r[1]))
    assert_correct("log_softmax_backward", r, g, ly)


# -- empty and 0-d ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILY)
def test_zero_length_slices_give_empty_results(name):
    for shape, axis in (((3, 0), -1), ((3, 0), 0), ((0, 4), -1), ((0, 4), 0), ((2, 0, 3), 1), ((2, 0, 3), None),
                        ((2, 0, 3), (0, 2)), ((0,), 0)):
        for dtype in ("float32", "float64", "float16"):
            args = [np.empty(shape, dtype) for _ in range(1 if name in SOFTMAX else 2)]
            r = call(name, *args, axis=axis)
            assert isinstance(r, np.ndarray) and r.shape == shape and r.dtype == np.dtype(dtype)


@pytest.mark.parametrize("name", SOFTMAX)
def test_zero_d_input(name):
    one = 1.0 if name == "softmax" else 0.0
    for x, dt in ((2.5, np.float64), (np.float32(-7.0), np.float32), (np.array(3.0, np.float16), np.float16),
                  (np.array(1e30), np.float64), (7, np.float64), (np.array(-np.inf), None), (np.nan, None)):
        for axis in (-1, 0, None):
            r = call(name, x, axis=axis)
            assert isinstance(r, np.generic) and not isinstance(r, np.ndarray)
            if dt is None:
                assert np.isnan(r), "0-d NaN or -inf: a NaN (all -inf) slice"
            else:
                assert r.dtype == np.dtype(dt) and r == one and not np.signbit(r)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_rows_sum_to_one(name, dtype, target):
    """A direct check of the output independent of the reference: softmax rows sum to 1, and
    log_softmax's exp sums to 1, to within the rounding of n terms."""
    rng = np.random.default_rng(12)
    for n in (1, 2, 7, 64, 1000):
        x = (rng.standard_normal((16, n)) * 5).astype(dtype)
        y = call(name, x).astype(np.float64)
        p = y if name == "softmax" else np.exp(y)
        tol = 8 * np.finfo(dtype).eps * max(1, np.sqrt(n))
        assert np.all(np.abs(p.sum(axis=-1) - 1) <= tol)


def test_log_softmax_of_equal_logits_is_minus_log_of_the_length(target):
    """n equal logits sum to exactly n, so log_softmax is -log(n): for float32 the vector log of the
    sums (log_for_float: exponent/significand split, atanh series), rounded once, must give the
    correctly rounded -log(n) for every n up to 4096 and around every power of two and sqrt(2) times
    one up to 2^21, along the last axis (row batches and long rows) and axis 0 (column blocks)."""
    lengths = set(range(1, 4097))
    for k in range(12, 22):
        for base in (2 ** k, round(2 ** k * np.sqrt(2))):
            lengths.update(range(base - 2, base + 3))
    short = [n for n in sorted(lengths) if n <= 4096]
    for n in short[::7] + [n for n in sorted(lengths) if n > 4096]:
        want = np.float32(-np.log(np.float64(n)))
        row = fastact.log_softmax(np.zeros((1, n), np.float32))
        assert row[0, 0] == want and row[0, -1] == want, f"rows of {n}: {row[0, 0]!r} != {want!r}"
    # every short length at once, as a batch of rows per length and as columns
    for n in short:
        if n % 97 == 0:
            cols = fastact.log_softmax(np.zeros((n, 5), np.float32), axis=0)
            assert (cols == np.float32(-np.log(np.float64(n)))).all(), f"axis 0, {n} rows"
    batch = [fastact.log_softmax(np.zeros((3, n), np.float32))[1, 0] for n in short]
    want = np.float32(-np.log(np.asarray(short, np.float64)))
    bad = np.flatnonzero(np.asarray(batch) != want)
    assert bad.size == 0, f"lengths {[short[i] for i in bad[:5]]}: {np.asarray(batch)[bad[:5]]} != {want[bad[:5]]}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_across_its_range_inside_softmax(dtype, target):
    """softmax([0, d]) = e^d / (1 + e^d), where 1 + e^d rounds to 1 for d below -40, so these rows
    check the kernels' exp itself, to 1.5 ULP, subnormal results included (in one long row, the float64
    sum of all of them is not 1: 2 ULP, its division added): every d from -110 to -40
    in steps finer than the table form's (ln2/16, see math-inl.h exp_table16), plus both sides of each
    reduction boundary, of the underflow thresholds (-87.3, -103.97, -104) and -inf. As rows of 2 (row
    batches), as a 2-row axis 0 (columns) and as one long row (the exp loops that store e)."""
    dt = np.dtype(dtype)
    edges = [k * np.log(2) / 16 + s for k in range(-2600, -900) for s in (-1e-5, 0.0, 1e-5)]
    edges += [-87.3365, -87.3366, -103.972, -103.973, -104.0, -104.0001, -np.inf]
    d = np.concatenate([np.linspace(-110.0, -40.0, 200_003), edges]).astype(dt)
    with np.errstate(under="ignore"):
        e = np.exp(d.astype(np.longdouble))
    for label, y, want, bound in (
            ("rows of 2", fastact.softmax(np.stack([np.zeros_like(d), d], axis=1))[:, 1], e / (1 + e), 1.5),
            ("axis 0", fastact.softmax(np.stack([np.zeros_like(d), d]), axis=0)[1], e / (1 + e), 1.5),
            ("one row", fastact.softmax(np.concatenate([[0], d]).astype(dt))[1:], e / (1 + e.sum()), 2.0)):
        err = _accuracy.ulp_error(y, want)
        worst = int(np.argmax(err))
        assert err[worst] <= bound, (f"{label}: softmax at {d[worst]!r} = {y[worst]!r}, {err[worst]:.2f} ULP "
                                     f"[{target}]")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_softmax_backward_where_exp_of_log_y_leaves_the_normal_range(dtype, target):
    """log_softmax_backward's term exp(log_y) * sum(g) is one rounding of the product, also where
    exp(log_y) alone would be subnormal, 0 or inf while the product is a normal number (a large or tiny
    sum(g)): g = [0, 54], log_y = [-103, 0] once gave -7.6e-44 for -1.0e-43 (17 ULP). log_y runs over
    both underflow thresholds and past the overflow one, against sums from 1e-30 to 1e30 (float64:
    1e-300 to 1e300), in rows (short-row and row kernels) and along axis 0 (column kernels)."""
    dt = np.dtype(dtype)
    big = 1e30 if dt == np.float32 else 1e300
    under = [-87.5, -95.0, -103.0, -103.97, -104.5, -110.0, -130.0, -160.0, -200.0, -1e4, -np.inf]
    over = [87.5, 88.0, 100.0, 150.0]
    if dt == np.float64:
        under = [-708.5, -720.0, -745.0, -746.0, -800.0, -1000.0, -1300.0, -1450.0, -1e5, -np.inf]
        over = [708.5, 710.0, 800.0, 1300.0]
    rng = np.random.default_rng(7)
    for n in (2, 3, 7, 16, 40):
        rows_g, rows_ly = [], []
        for v in under + over:
            for s in ((54.0, 1e10, big) if v < 0 else (1e-10, 1.0 / big)):
                ly = rng.uniform(-3, 0, n)
                ly[n - 1] = v
                g = np.zeros(n)
                g[0] = s  # sum(g) = s; the result at n - 1 is -exp(v) * s
                rows_g.append(g)
                rows_ly.append(ly)
        g, ly = np.array(rows_g).astype(dt), np.array(rows_ly).astype(dt)
        for axis, gg, ll in ((-1, g, ly), (0, np.ascontiguousarray(g.T), np.ascontiguousarray(ly.T))):
            with np.errstate(over="ignore", under="ignore"):
                r = call("log_softmax_backward", gg, ll, axis=axis)
            assert_correct("log_softmax_backward", r, gg, ll, axis=axis)


@pytest.mark.parametrize("name", FAMILY)
def test_row_batches_match_single_rows_bit_for_bit(name, target):
    """Short float32 rows are reduced in batches of 8 (AVX-512: the batch's totals at once, by the
    same additions as one row at a time): each of 19 rows (two full batches and a partial one) must
    equal the same row passed alone. Logits spread over [-80, 0] make the double sums of a row's lanes
    round, so another order of additions would change bits. Every length to 40 and some longer,
    among them rows of 2-8 whole vectors on every target (softmax_backward_whole_vector_rows); the
    rows must also be within the bound of the reference."""
    rng = np.random.default_rng(11)
    for n in list(range(1, 41)) + [48, 56, 63, 64, 80, 96, 100, 112, 127, 128, 255]:
        x = rng.uniform(-80.0, 0.0, (19, n)).astype(np.float32)
        args = (x,) if name in SOFTMAX else (rng.standard_normal((19, n)).astype(np.float32), fastact.softmax(x))
        r = call(name, *args)
        assert_correct(name, r, *args)
        for i in range(19):
            assert_same(r[i], call(name, *[a[i:i + 1] for a in args])[0], f"{name}, row {i} of 19 rows of {n}")


def _exp_reduction_ties():
    """float32 x in [-87, -1] near (k + 1/2) ln 2 whose x * log2(e), rounded to float first, rounds to
    another integer k than the exact product does (one of exp's range reductions rounds the product,
    the other does not)."""
    log2e = np.float32(float.fromhex("0x1.715476p+0"))
    near = np.array([-(k + 0.5) / float(log2e) for k in range(2, 125)], np.float32)
    steps = np.arange(-300, 301, dtype=np.int32)
    x = (near.view(np.int32)[:, None] + steps[None, :]).ravel().view(np.float32)
    exact = x.astype(np.float64) * np.float64(log2e)  # exact: a product of two 24-bit significands
    return x[np.rint(exact) != np.rint((x * log2e).astype(np.float64))]


@pytest.mark.parametrize("name", SOFTMAX)
def test_a_rows_bits_do_not_depend_on_the_rows_beside_it(name, target):
    """Short rows share vectors (a block of rows, one lane each; along axis 0, a block of columns). A
    vector with a lane whose e^x is subnormal takes exp's careful path; a lane beside it whose result is
    normal must get the bits it gets on the fast path, or a row's result would depend on which rows
    share its block, and so on how the rows are split between threads. Rows whose x - max is where exp's
    two range reductions could pick different n (a float32 product rounded first, or not), each beside
    a row with e^-95 (subnormal), against each row alone: rows of 3, and the same along axis 0."""
    ties = _exp_reduction_ties()
    assert len(ties) > 40
    x = np.zeros((2 * len(ties), 3), np.float32)
    x[:, 2] = -1.0
    x[0::2, 1] = ties
    x[1::2, 1] = -95.0
    rows = call(name, x, axis=-1)
    alone = np.concatenate([call(name, x[r:r + 1], axis=-1) for r in range(len(x))])
    assert_same(rows, alone, "rows of 3 against each row alone")
    cols = call(name, np.ascontiguousarray(x.T), axis=0)
    cols_alone = np.concatenate([call(name, np.ascontiguousarray(x[r:r + 1].T), axis=0) for r in range(len(x))], axis=1)
    assert_same(cols, cols_alone, "along axis 0 against each column alone")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("length", [24, 64, 128, 256, 1000, 4096])
def test_rows_on_both_sides_of_exps_range_check(name, dtype, length, target):
    """A row whose every x - max lies within exp's normal range takes exp without its per-vector range
    check (softmax-inl.h, LaneRange); one element past it sends the row back to the checked exp. Rows
    whose least x - max sits just inside, at, and just past that bound (87 float, 708 double), where the
    unchecked form would scale by a wrapped-around power of two (5 past it), past the underflow to 0,
    and rows with a -inf or a NaN, against the reference, along both axes."""
    limit = 87.0 if dtype == "float32" else 708.0
    rng = np.random.default_rng(length)
    for spread in (limit - 0.5, limit, np.nextafter(limit, np.inf, dtype=dtype), limit + 0.5, limit + 5.0,
                   limit + 30.0):
        x = rng.uniform(-spread, 0.0, (12, length)).astype(dtype)
        x[:, 0] = 0.0
        x[:, length // 3] = -spread  # the least element, exactly
        x[7, length // 2] = -np.inf
        x[9, 1] = np.nan
        y = call(name, x, axis=-1)
        assert np.isnan(y[9]).all() and not np.isnan(np.delete(y, 9, axis=0)).any()
        assert y[7, length // 2] == (-np.inf if name == "log_softmax" else 0.0)
        assert_correct(name, np.delete(y, 9, axis=0), np.delete(x, 9, axis=0), axis=-1)
        x_t = np.delete(x, 9, axis=0).T
        assert_correct(name, call(name, x_t, axis=0), x_t, axis=0)
