#!/usr/bin/env python3
"""Fit the minimax polynomials used by fastact's SIMD kernels.

What it does
------------
The exp kernel (csrc/kernels/math-inl.h; sigmoid, tanh and softmax are built
on it) evaluates a short polynomial whose coefficients live in
csrc/kernels/poly_coefficients.h. This script derives them from scratch, so
every constant in that header can be reproduced:

* exp(r) ~= 1 + r + r^2 * Q(r) for |r| <= ln(2)/2, widened to |r| <= 0.3476 so
  that the rounding of the range reduction r = x - n*ln2 is covered. Q is
  fitted to (exp(r) - 1 - r)/r^2 with weight r^2/exp(r): again the relative
  error of the whole expression.
* The Cody-Waite split ln2 = kLn2Hi + kLn2Lo for that range reduction: kLn2Hi
  has enough trailing zero bits that n*kLn2Hi is exact for every exponent n
  the kernels can produce.
* The table form of float32 exp, for targets with a one-instruction lane
  permute (AVX-512): e^x = 2^k * 2^(j/16) * e^r with x = (16k + j) ln2/16 + r,
  |r| <= ln(2)/32 (widened to 0.0218), 2^(j/16) looked up in a 16-entry table
  (kExp2Table16F32, each entry rounded to float, and what that rounding lost,
  kExp2Table16LoF32, rounded too), e^r ~= 1 + r + r^2 * Q(r)
  with Q = kExpTable16F32, and its own Cody-Waite split (kLn2HiTable16F32 has
  fewer bits: the multiplier n/16 has four more).

How
---
Each fit is a weighted Chebyshev-node least-squares fit in mpmath (50
digits), refined by Remez multiple exchange until the weighted error
equioscillates. The coefficients are then ROUNDED to the target precision
(float32 or float64, round-to-nearest), in two ways: all at once, and one at
a time from the lowest degree up, re-fitting (Remez, with the rounded ones
held fixed) the coefficients not yet rounded; plain rounding of c0 alone
would otherwise cost up to a few bits. The relative error of each rounded
polynomial is RE-MEASURED in mpmath on a dense uniform grid (20001 points,
both endpoints included), each local maximum being polished by a
golden-section search. That measured error is the purely mathematical error,
before any floating-point evaluation rounding; the better of the two rounded
sets is kept and its error is what the header reports. For each function and precision the smallest degree whose rounded
coefficients meet the budget is chosen: 2^-27 for float32 and 2^-57 for
float64, leaving most of the ULP budget to the evaluation itself.

Finally the script prints every constant as a C++17 hex-float literal (with
an `f` suffix for float) and checks, by parsing each literal back with
float.fromhex, that it denotes exactly the rounded value.

Usage
-----
    python3 tools/fit_coefficients.py            # fit, verify and print the report
    python3 tools/fit_coefficients.py --write    # ... and regenerate the header

Takes about 20 seconds on one core.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import mpmath
import numpy as np

mp = mpmath.mp
mp.dps = 50

HEADER_PATH = Path(__file__).resolve().parents[1] / "csrc" / "kernels" / "poly_coefficients.h"

# Error budgets for the rounded coefficients (mathematical error only).
BUDGET_LOG2 = {"f32": -27, "f64": -57}
# Significand widths (including the implicit bit).
SIGNIFICAND_BITS = {"f32": 24, "f64": 53}

# exp: reduced argument range |r| <= ln(2)/2 ~= 0.3466, plus 1e-3 of slack.
EXP_LIMIT = 0.3476

# Cody-Waite: largest |n| in r = x - n*ln2 for each precision.
CODY_WAITE_N_MAX = {"f32": 160, "f64": 1100}

# The table form of float32 exp: 2^EXP_TABLE_BITS entries, so |r| <= ln(2)/32 ~= 0.02166,
# plus slack, and multipliers n/16 with |n| up to 16 times the float32 n_max.
EXP_TABLE_BITS = 4
EXP_TABLE_LIMIT = 0.0218

FIT_GRID_POINTS = 3000        # Remez search grid (Chebyshev-distributed)
MEASURE_GRID_POINTS = 20001   # verification grid (uniform, endpoints included)
MAX_DEGREE = 16


# --------------------------------------------------------------------------
# Problem definitions
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """A weighted polynomial approximation problem.

    The fit minimises max over t in [fit_lo, fit_hi] of |w(t) * (p(t) - f(t))|.
    That weighted error equals the relative error of the full approximation
    `approx(coeffs, x)` of `reference(x)`, which is re-measured over
    x in [measure_lo, measure_hi].
    """

    name: str
    fit_lo: mpmath.mpf
    fit_hi: mpmath.mpf
    target: Callable[[mpmath.mpf], mpmath.mpf]
    weight: Callable[[mpmath.mpf], mpmath.mpf]
    measure_lo: mpmath.mpf
    measure_hi: mpmath.mpf
    reference: Callable[[mpmath.mpf], mpmath.mpf]
    approx: Callable[[Sequence, mpmath.mpf], mpmath.mpf]
    form: str        # human-readable form of the approximation
    domain: str      # human-readable domain (filled with C literals)
    precisions: tuple[str, ...] = ("f32", "f64")


def horner(coeffs: Sequence, t):
    """Evaluate sum(coeffs[i] * t**i) in the current mpmath precision."""
    acc = mpmath.mpf(0)
    for c in reversed(coeffs):
        acc = acc * t + c
    return acc


def extra_digits(t, power: int) -> int:
    """Guard digits to absorb the cancellation in a target near t = 0."""
    if t == 0:
        return 0
    return power * max(0, int(math.ceil(-float(mpmath.log10(abs(t)))))) + 10


def exp_target(r):
    """(exp(r) - 1 - r) / r^2; the limit at r = 0 is 1/2."""
    if r == 0:
        return mpmath.mpf(1) / 2
    with mpmath.workdps(mp.dps + extra_digits(r, 2)):
        return +((mpmath.expm1(r) - r) / (r * r))


def exp_weight(r):
    """r^2 / exp(r): turns Q's error into exp's relative error."""
    return r * r * mpmath.exp(-r)


def exp_approx(coeffs, r):
    return 1 + r + r * r * horner(coeffs, r)


def exp_problem(name: str, limit: float, form: str, domain: str,
                precisions: tuple[str, ...] = ("f32", "f64")) -> Problem:
    """exp(r) ~= 1 + r + r^2*Q(r) for |r| <= limit, its relative error measured on the same range."""
    lim = mpmath.mpf(limit)
    return Problem(name=name, fit_lo=-lim, fit_hi=lim, target=exp_target, weight=exp_weight,
                   measure_lo=-lim, measure_hi=lim, reference=mpmath.exp, approx=exp_approx,
                   form=form, domain=domain, precisions=precisions)


def make_problems() -> dict[str, Problem]:
    assert mpmath.mpf(EXP_TABLE_LIMIT) >= mpmath.ln2 / 2 ** (EXP_TABLE_BITS + 1)
    return {
        "exp": exp_problem("exp", EXP_LIMIT, "exp(r) ~= 1 + r + r^2*Q(r)",
                           f"|r| <= {EXP_LIMIT} (>= ln(2)/2 + 1e-3)"),
        "exp_table16": exp_problem("exp_table16", EXP_TABLE_LIMIT, "exp(r) ~= 1 + r + r^2*Q(r) (table form)",
                                   f"|r| <= {EXP_TABLE_LIMIT} (>= ln(2)/32)", precisions=("f32",)),
    }


# --------------------------------------------------------------------------
# Fitting: least squares on Chebyshev nodes, then Remez multiple exchange
# --------------------------------------------------------------------------

def chebyshev_points(lo, hi, count: int, include_ends: bool):
    """Chebyshev points on [lo, hi]: extrema (with ends) or roots (without)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    if include_ends:
        angles = [mpmath.pi * i / (count - 1) for i in range(count)]
    else:
        angles = [mpmath.pi * (2 * i + 1) / (2 * count) for i in range(count)]
    return sorted(mid - half * mpmath.cos(a) for a in angles)


def least_squares_fit(problem: Problem, degree: int, fixed: Sequence = ()) -> list:
    """Weighted least-squares fit on Chebyshev roots: a near-minimax start.

    The lowest len(fixed) coefficients are held at the given values.
    """
    m = len(fixed)
    nodes = chebyshev_points(problem.fit_lo, problem.fit_hi, 8 * (degree + 1) + 16,
                             include_ends=False)
    rows, rhs = [], []
    for t in nodes:
        w = problem.weight(t)
        rows.append([w * t ** j for j in range(m, degree + 1)])
        rhs.append(w * (problem.target(t) - horner(fixed, t)))
    solution, _residual = mpmath.qr_solve(mpmath.matrix(rows), mpmath.matrix(rhs))
    return list(fixed) + [solution[j] for j in range(degree + 1 - m)]


def golden_max(func, lo, hi, iterations: int = 40):
    """Locate the maximum of a unimodal func on [lo, hi]; returns (x, func(x))."""
    ratio = (mpmath.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = func(c), func(d)
    for _ in range(iterations):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = func(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = func(d)
    best = max([(func(lo), lo), (fc, c), (fd, d), (func(hi), hi)], key=lambda p: p[0])
    return best[1], best[0]


def alternating_extrema(errors):
    """One (index, error) per maximal run of equal sign: the largest |error| of the run.

    Points where the error is exactly zero (zero weight) belong to no run.
    Consecutive entries of the result have opposite signs.
    """
    runs: list[tuple[int, mpmath.mpf]] = []
    for i, e in enumerate(errors):
        if e == 0:
            continue
        if runs and (runs[-1][1] > 0) == (e > 0):
            if abs(e) > abs(runs[-1][1]):
                runs[-1] = (i, e)
        else:
            runs.append((i, e))
    return runs


def select_reference(extrema, size: int):
    """Shrink an alternating list of extrema to `size` entries, keeping alternation.

    Repeatedly drops the smallest extremum: from an end alone, from the
    interior together with its smaller neighbour (so the signs still alternate).
    """
    ext = list(extrema)
    while len(ext) > size:
        if len(ext) == size + 1:
            ext.pop(0 if abs(ext[0][1]) < abs(ext[-1][1]) else -1)
            continue
        i = min(range(len(ext)), key=lambda k: abs(ext[k][1]))
        if i == 0 or i == len(ext) - 1:
            ext.pop(i)
        else:
            j = i - 1 if abs(ext[i - 1][1]) < abs(ext[i + 1][1]) else i + 1
            for k in sorted((i, j), reverse=True):
                ext.pop(k)
    return ext


@dataclass
class FitResult:
    coeffs: list
    levelled_error: mpmath.mpf    # |E| of the last Remez system
    max_error: mpmath.mpf         # max weighted error on the fit grid
    iterations: int
    converged: bool               # max_error within tol of levelled_error


class RemezFitter:
    """Weighted minimax fits for one problem, sharing a cached search grid."""

    def __init__(self, problem: Problem, grid_points: int = FIT_GRID_POINTS):
        self.problem = problem
        self.grid = chebyshev_points(problem.fit_lo, problem.fit_hi, grid_points,
                                     include_ends=True)
        self.f_vals = [problem.target(t) for t in self.grid]
        self.w_vals = [problem.weight(t) for t in self.grid]

    def weighted_error(self, coeffs, t, f=None, w=None):
        f = self.problem.target(t) if f is None else f
        w = self.problem.weight(t) if w is None else w
        return w * (horner(coeffs, t) - f)

    def fit(self, degree: int, fixed: Sequence = (), tol: float = 1e-4,
            max_iter: int = 25) -> FitResult:
        """Minimax fit of the given degree by Remez multiple exchange.

        Converged when the grid maximum is within a factor 1 + tol of the
        levelled error (tol = 1e-4 is 0.00014 bits).

        The lowest len(fixed) coefficients are held at the given values and
        the others fitted around them (used to re-fit after rounding). Such a
        constrained problem can be degenerate: once little freedom is left
        the error may already touch its maximum at many more points than
        there are unknowns, and the exchange can cycle between equivalent
        references. It then returns the best iterate seen (converged=False).
        """
        problem, grid = self.problem, self.grid
        m = len(fixed)
        n_ref = degree - m + 2            # free coefficients + the levelled error
        coeffs = least_squares_fit(problem, degree, fixed)
        levelled = mpmath.mpf(0)
        best = None
        for iteration in range(1, max_iter + 1):
            errors = [self.weighted_error(coeffs, t, f, w)
                      for t, f, w in zip(grid, self.f_vals, self.w_vals)]
            max_err = max(abs(e) for e in errors)
            if best is None or max_err < best.max_error:
                best = FitResult(coeffs, levelled, max_err, iteration - 1, False)
            if iteration > 1 and max_err <= levelled * (1 + tol):
                return FitResult(coeffs, levelled, max_err, iteration - 1, True)
            extrema = alternating_extrema(errors)
            if len(extrema) < n_ref:
                raise RuntimeError(f"{problem.name} degree {degree}: only {len(extrema)} "
                                   f"alternating extrema, need {n_ref}")
            reference = []
            for idx, _ in select_reference(extrema, n_ref):
                lo, hi = grid[max(idx - 1, 0)], grid[min(idx + 1, len(grid) - 1)]
                t, _ = golden_max(lambda u: abs(self.weighted_error(coeffs, u)), lo, hi,
                                  iterations=30)
                reference.append(t)
            # Solve  w_i * (p(t_i) - f(t_i)) = (-1)^i * E  for the free coefficients and E.
            rows, rhs = [], []
            for i, t in enumerate(reference):
                w = problem.weight(t)
                rows.append([w * t ** j for j in range(m, degree + 1)] + [-(-1) ** i])
                rhs.append(w * (problem.target(t) - horner(fixed, t)))
            solution = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix(rhs))
            coeffs = list(fixed) + [solution[j] for j in range(degree + 1 - m)]
            levelled = abs(solution[degree + 1 - m])
        if not fixed:
            raise RuntimeError(f"{problem.name} degree {degree}: Remez did not converge")
        return best

    def fit_rounded(self, degree: int, precision: str) -> list[float]:
        """Round coefficients one at a time, lowest degree first, re-fitting the rest.

        Rounding all minimax coefficients at once mostly pays for the rounding
        of c0 (the term that dominates); re-fitting the higher coefficients
        around each rounded one recovers most of that loss.
        """
        fixed: list[float] = []
        for _ in range(degree + 1):
            coeffs = self.fit(degree, fixed=[mpmath.mpf(c) for c in fixed]).coeffs
            fixed.append(round_to(coeffs[len(fixed)], precision))
        return fixed


# --------------------------------------------------------------------------
# Rounding, verification, formatting
# --------------------------------------------------------------------------

def round_to(value, precision: str) -> float:
    """Round an mpf to float32/float64 (nearest-even) and return it as a Python float."""
    with mpmath.workprec(SIGNIFICAND_BITS[precision]):
        rounded = float(+mpmath.mpf(value))   # exact: fits in 53 bits
    if precision == "f32":
        # Rounded directly from the mpf (no double rounding via float64), so
        # numpy.float32 must hold it exactly.
        assert float(np.float32(rounded)) == rounded
    return rounded


class RelativeErrorMeter:
    """Max relative error of problem.approx over a dense grid, at mpmath precision."""

    def __init__(self, problem: Problem, points: int = MEASURE_GRID_POINTS):
        self.problem = problem
        lo, hi = problem.measure_lo, problem.measure_hi
        self.grid = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        self.refs = [problem.reference(x) for x in self.grid]   # cached once

    def rel_error(self, coeffs, x, ref=None):
        ref = self.problem.reference(x) if ref is None else ref
        approx = self.problem.approx(coeffs, x)
        if ref == 0:
            return mpmath.mpf(0) if approx == 0 else mpmath.inf
        return (approx - ref) / ref

    def max_rel_error(self, coeffs) -> mpmath.mpf:
        """Grid maximum, with every local maximum polished by golden section."""
        coeffs = [mpmath.mpf(c) for c in coeffs]
        errs = [abs(self.rel_error(coeffs, x, r)) for x, r in zip(self.grid, self.refs)]
        best = max(errs)
        last = len(errs) - 1
        for i, e in enumerate(errs):
            left = errs[i - 1] if i > 0 else mpmath.mpf(-1)
            right = errs[i + 1] if i < last else mpmath.mpf(-1)
            if e >= left and e >= right and e > best / 2:
                _, polished = golden_max(lambda u: abs(self.rel_error(coeffs, u)),
                                         self.grid[max(i - 1, 0)], self.grid[min(i + 1, last)])
                best = max(best, polished)
        return best


def log2(value) -> float:
    return float(mpmath.log(value, 2)) if value > 0 else float("-inf")


def hex_literal(value: float, single: bool) -> str:
    """C++17 hex-float literal for value (trailing zero digits trimmed; `f` suffix if single)."""
    mantissa, exponent = value.hex().split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}" + ("f" if single else "")


def check_literal(literal: str, value: float, single: bool) -> None:
    """The literal must parse back to exactly `value`, itself exact in its type."""
    text = literal.removesuffix("f") if single else literal
    parsed = float.fromhex(text)
    if parsed != value:
        raise AssertionError(f"literal {literal} parses to {parsed!r}, expected {value!r}")
    if single and float(np.float32(parsed)) != parsed:
        raise AssertionError(f"literal {literal} is not exactly representable in float32")


def significant_bits(fr: Fraction) -> int:
    """Significand width a nonzero dyadic rational needs (length of its odd part)."""
    assert fr != 0 and fr.denominator & (fr.denominator - 1) == 0, "not a nonzero dyadic"
    num = abs(fr.numerator)
    return (num // (num & -num)).bit_length()


def fits_in(fr: Fraction, bits: int) -> bool:
    """True if the dyadic rational fr is representable with a `bits`-bit significand."""
    return fr == 0 or significant_bits(fr) <= bits


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

@dataclass
class Choice:
    problem: Problem
    precision: str
    degree: int
    coeffs: list[float]          # rounded
    minimax_log2: float          # error of the unrounded fit
    rounded_log2: float          # measured error of the rounded coefficients


def choose_degrees(problem: Problem) -> dict[str, Choice]:
    """Smallest degree per precision whose rounded coefficients meet the budget.

    Two roundings are tried for each candidate degree: all minimax
    coefficients at once ("plain"), and one at a time with the remaining ones
    re-fitted ("refit"). The better measured one is kept.
    """
    fitter = RemezFitter(problem)
    meter = RelativeErrorMeter(problem)
    chosen: dict[str, Choice] = {}
    print(f"\n== {problem.form}, {problem.domain}")
    print("   log2 of max relative error; rounded coefficients given as plain / refit; "
          "'*' = chosen")
    print(f"   {'deg':>3}  {'minimax':>8}  {'float32':>15}  {'float64':>15}")
    for degree in range(0, MAX_DEGREE + 1):
        fit = fitter.fit(degree)
        minimax = log2(fit.max_error)
        cells = {}
        for prec in ("f32", "f64"):
            if prec not in problem.precisions or prec in chosen or minimax > BUDGET_LOG2[prec]:
                cells[prec] = "-"
                continue
            plain = [round_to(c, prec) for c in fit.coeffs]
            refit = fitter.fit_rounded(degree, prec)
            plain_err = log2(meter.max_rel_error(plain))
            refit_err = log2(meter.max_rel_error(refit))
            best, best_err = (refit, refit_err) if refit_err <= plain_err else (plain, plain_err)
            cells[prec] = f"{plain_err:.2f} / {refit_err:.2f}"
            if best_err <= BUDGET_LOG2[prec]:
                chosen[prec] = Choice(problem, prec, degree, best, minimax, best_err)
                cells[prec] += "*"
        print(f"   {degree:>3}  {minimax:>8.2f}  {cells['f32']:>15}  {cells['f64']:>15}")
        if len(chosen) == len(problem.precisions):
            return chosen
    raise RuntimeError(f"{problem.name}: no degree <= {MAX_DEGREE} meets the budgets")


@dataclass
class CodyWaite:
    precision: str
    hi: float
    lo: float
    n_checked: int
    trailing_zeros: int
    split_error: mpmath.mpf      # |hi + lo - ln2|
    name: str = ""               # suffix of the C names after "kLn2Hi"/"kLn2Lo"


def cody_waite(precision: str, n_max: int | None = None, name: str = "") -> CodyWaite:
    """Split ln2 = hi + lo, hi having enough trailing zero bits for n*hi to be exact.

    hi is ln2 rounded to (significand - bits of n_max) bits, lo is ln2 - hi
    rounded to the precision. Exactness of n*hi is then checked for every
    |n| < 2^(bits of n_max), a range that includes |n| <= n_max.
    """
    bits = SIGNIFICAND_BITS[precision]
    n_bits = (CODY_WAITE_N_MAX[precision] if n_max is None else n_max).bit_length()
    hi_bits = bits - n_bits
    with mpmath.workprec(hi_bits):
        hi = float(+mpmath.ln2)
    lo = round_to(mpmath.ln2 - hi, precision)
    trailing = bits - significant_bits(Fraction(hi))
    if trailing < n_bits:
        raise AssertionError(f"{precision} ln2 hi has only {trailing} trailing zero bits")
    n_checked = (1 << n_bits) - 1          # >= n_max
    hi_fr = Fraction(hi)
    for n in range(-n_checked, n_checked + 1):
        if not fits_in(n * hi_fr, bits):
            raise AssertionError(f"{precision}: {n} * ln2_hi is not exact")
    split_error = abs(mpmath.mpf(hi) + mpmath.mpf(lo) - mpmath.ln2)
    return CodyWaite(precision, hi, lo, n_checked, trailing, split_error,
                     name or ("F32" if precision == "f32" else "F64"))


@dataclass
class Exp2Table:
    entries: list[float]         # 2^(j/size) rounded to float32
    lows: list[float]            # 2^(j/size) - entries[j], rounded to float32
    max_rel_error: mpmath.mpf    # of the rounding, over the entries
    max_rel_error_hi_lo: mpmath.mpf   # of entries[j] + lows[j]


def exp2_table(bits: int) -> Exp2Table:
    """2^(j/2^bits) for j < 2^bits, each rounded to float32 once, from 50 digits."""
    size = 1 << bits
    entries, lows, worst, worst_hi_lo = [], [], mpmath.mpf(0), mpmath.mpf(0)
    for j in range(size):
        exact = mpmath.power(2, mpmath.mpf(j) / size)
        entry = round_to(exact, "f32")
        low = round_to(exact - entry, "f32")
        entries.append(entry)
        lows.append(low)
        worst = max(worst, abs((mpmath.mpf(entry) - exact) / exact))
        worst_hi_lo = max(worst_hi_lo, abs((mpmath.mpf(entry) + low - exact) / exact))
    return Exp2Table(entries, lows, worst, worst_hi_lo)


ARRAY_NAMES = {("exp", "f32"): "kExpF32", ("exp", "f64"): "kExpF64",
               ("exp_table16", "f32"): "kExpTable16F32"}
C_TYPES = {"f32": "float", "f64": "double"}


def suffix_default(precision: str) -> str:
    return "F32" if precision == "f32" else "F64"


def render_header(choices: list[Choice], splits: list[CodyWaite], table: Exp2Table) -> str:
    lines = [
        "#pragma once",
        "// Generated by tools/fit_coefficients.py; do not edit by hand.",
        "namespace fastact::coeff {",
        "",
    ]
    for ch in choices:
        name = ARRAY_NAMES[(ch.problem.name, ch.precision)]
        poly = "Q"
        single = ch.precision == "f32"
        literals = [hex_literal(c, single) for c in ch.coeffs]
        for lit, c in zip(literals, ch.coeffs):
            check_literal(lit, c, single)
        lines.append(f"// {ch.problem.form}, {poly} = {name} (degree {ch.degree}, lowest first), "
                     f"{ch.problem.domain}; max rel. error (these coefficients, exact arithmetic) "
                     f"2^{ch.rounded_log2:.2f}")
        lines.append(f"inline constexpr {C_TYPES[ch.precision]} {name}[] = {{")
        lines.extend(f"    {lit}," for lit in literals)
        lines.append("};")
        lines.append("")
    for cw in splits:
        single = cw.precision == "f32"
        suffix = cw.name
        hi_lit, lo_lit = hex_literal(cw.hi, single), hex_literal(cw.lo, single)
        check_literal(hi_lit, cw.hi, single)
        check_literal(lo_lit, cw.lo, single)
        lines.append(f"// Cody-Waite ln2 = Hi + Lo ({C_TYPES[cw.precision]}): Hi has {cw.trailing_zeros} trailing zero "
                     f"bits, so n*Hi is exact for |n| <= {cw.n_checked}; |Hi + Lo - ln2| = 2^{log2(cw.split_error):.2f}")
        if cw.name != suffix_default(cw.precision):
            lines.append(f"// (for the table form: n/{1 << EXP_TABLE_BITS} * Hi is exact as n * Hi is)")
        ctype = C_TYPES[cw.precision]
        lines.append(f"inline constexpr {ctype} kLn2Hi{suffix} = {hi_lit};")
        lines.append(f"inline constexpr {ctype} kLn2Lo{suffix} = {lo_lit};")
        lines.append("")
    literals = [hex_literal(v, True) for v in table.entries]
    for lit, v in zip(literals, table.entries):
        check_literal(lit, v, True)
    lines.append(f"// 2^(j/{len(table.entries)}) for j < {len(table.entries)}, rounded to float: max rel. error "
                 f"2^{log2(table.max_rel_error):.2f}")
    lines.append(f"inline constexpr float kExp2Table{len(table.entries)}F32[] = {{")
    lines.extend(f"    {lit}," for lit in literals)
    lines.append("};")
    lines.append("")
    low_literals = [hex_literal(v, True) for v in table.lows]
    for lit, v in zip(low_literals, table.lows):
        check_literal(lit, v, True)
    lines.append(f"// 2^(j/{len(table.entries)}) - kExp2Table{len(table.entries)}F32[j], rounded to float: the two "
                 f"together have max rel. error 2^{log2(table.max_rel_error_hi_lo):.2f}")
    lines.append(f"inline constexpr float kExp2Table{len(table.entries)}LoF32[] = {{")
    lines.extend(f"    {lit}," for lit in low_literals)
    lines.append("};")
    lines.append("")
    lines.append("}  // namespace fastact::coeff")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help=f"regenerate {HEADER_PATH.relative_to(HEADER_PATH.parents[2])}")
    parser.add_argument("--output", type=Path, default=HEADER_PATH,
                        help="header path used with --write (default: %(default)s)")
    args = parser.parse_args(argv)

    print(f"mpmath {mpmath.__version__} at {mp.dps} digits; budgets: "
          f"float32 2^{BUDGET_LOG2['f32']}, float64 2^{BUDGET_LOG2['f64']}")
    choices: list[Choice] = []
    for problem in make_problems().values():
        picked = choose_degrees(problem)
        choices += [picked[prec] for prec in problem.precisions]

    table_n_max = CODY_WAITE_N_MAX["f32"] << EXP_TABLE_BITS
    splits = [cody_waite("f32"), cody_waite("f64"),
              cody_waite("f32", table_n_max, f"Table{1 << EXP_TABLE_BITS}F32")]
    table = exp2_table(EXP_TABLE_BITS)
    print("\n== Cody-Waite ln2 split (exactness of n*Hi verified)")
    for cw in splits:
        single = cw.precision == "f32"
        print(f"   {cw.precision}: Hi = {hex_literal(cw.hi, single)} ({cw.trailing_zeros} trailing zeros, "
              f"exact for |n| <= {cw.n_checked}), Lo = {hex_literal(cw.lo, single)}, "
              f"|Hi+Lo-ln2| = 2^{log2(cw.split_error):.2f}")

    print(f"\n== 2^(j/{len(table.entries)}) table: entries rounded to float32, max rel. error "
          f"2^{log2(table.max_rel_error):.2f}; with the low parts 2^{log2(table.max_rel_error_hi_lo):.2f}")

    header = render_header(choices, splits, table)   # also round-trip checks every literal
    print("\n== Summary (all hex literals round-trip through float.fromhex)")
    for ch in choices:
        print(f"   {ARRAY_NAMES[(ch.problem.name, ch.precision)]:9} degree {ch.degree:2}  "
              f"minimax 2^{ch.minimax_log2:.2f}  rounded 2^{ch.rounded_log2:.2f}")
    if args.write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(header)
        print(f"\nwrote {args.output}")
    else:
        print("\n" + header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
