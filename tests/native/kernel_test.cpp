// Native test of the SIMD kernels: every function of the KernelTable, float32 and float64, on every
// target compiled in and runnable on this CPU, against a wider reference and DESIGN.md's bounds.
// No Python, no framework: one line per target x dtype x function, then "N passed, M failed".
//
//   fastact_kernel_test [--target NAME]... [--quick] [--exhaustive]
//
// --exhaustive adds float32 sigmoid and tanh on every one of the 2^32 bit patterns (about a minute
// per function and target), for the claim that the bounds hold everywhere, not just on the sweep.
//
// What each line checks (DESIGN.md §1-§2; the metrics are those of fastact/_accuracy.py):
//   relu, leaky_relu (slopes 0.01, 0, -0.5, 1.5), *_backward   bitwise equal to the formula, computed
//       here in the same dtype (tanh_backward with std::fma), max "ulp" 0
//   sigmoid   <= 2 ULP where the reference is a normal number (else the result lies in [0, 2*tiny])
//   tanh      <= 2 ULP everywhere, subnormal inputs included
//   softmax   <= 4 ULP vs the reference computed from x - max rounded to the dtype
//   log_softmax   absolute error <= 2 ULP of max(|y|, 1)
//   softmax/log_softmax backward   absolute error <= 8 ULP of the terms' magnitude (our bound, as
//       the Python suite's: |y| * (|g| + sum|g*y|), and |g| + exp(log_y) * sum|g|)
// Special values are exact: sigmoid(+-inf) = 1, 0; tanh(+-0) = +-0; tanh(+-inf) = +-1; NaN in,
// NaN out; a softmax slice holding NaN or +inf, or all -inf, is all NaN.
// The reference is float64 for float32 results (as DESIGN.md §2 and the Python tests; a double
// reference is 2^29 times finer than a float32 ULP) and long double for float64 results.
//
// Inputs: float32 every bit pattern in [-20, 20] at a stride of 1021 (all binades, subnormals
// included), the same stride on 20..128, 16381 on 128..FLT_MAX, 66 mantissas of every binade
// below 1, the specials, both signs; float64 a seeded random sweep (log-uniform magnitudes,
// uniform on [-40, 40] and [-750, -20], 11 mantissas of every binade below 1, the specials).
// Tails: every length 0..40 at offsets 0..3, rotating a pool of special and sweep values through
// every position, so specials reach the vector body and the tail alike. Every call also checks
// that nothing outside [0, n) was written, the inputs were not modified, and in-place calls
// (out == an input) give the same bits.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "kernels/kernel_table.h"

namespace {

using fastact::KernelSet;
using fastact::KernelTable;

// ---- dtype helpers ---------------------------------------------------------------------------

template <class T>
struct Traits;
template <>
struct Traits<float> {
  using U = std::uint32_t;
  using W = double;  // the reference type
  static constexpr const char* name = "float32";
  static constexpr int mant_bits = 23;
  static constexpr U sentinel = 0x7FDEAD5Au;  // a quiet NaN no kernel produces
};
template <>
struct Traits<double> {
  using U = std::uint64_t;
  using W = long double;
  static constexpr const char* name = "float64";
  static constexpr int mant_bits = 52;
  static constexpr U sentinel = 0x7FFDEADBEEF5A5A5ull;
};
template <class T>
using U = typename Traits<T>::U;
template <class T>
using W = typename Traits<T>::W;

template <class T>
U<T> bits(T x) {
  U<T> u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
template <class T>
T from_bits(U<T> u) {
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class T>
T sentinel() {
  return from_bits<T>(Traits<T>::sentinel);
}
// Same value: equal bits (so -0 != +0), or both NaN.
template <class T>
bool same(T a, T b) {
  return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b));
}

template <class T>
std::string show(T x) {
  char buf[96];
  if constexpr (std::is_same_v<T, long double>) {
    std::snprintf(buf, sizeof buf, "%.21Lg (%La)", x, x);
  } else {
    std::snprintf(buf, sizeof buf, "%.*g (%a)", std::is_same_v<T, float> ? 9 : 17, static_cast<double>(x),
                  static_cast<double>(x));
  }
  return buf;
}

// ---- expectations and errors -----------------------------------------------------------------

enum class Kind : std::uint8_t {
  exact,       // bitwise equal to value (any NaN matches any NaN)
  ulp,         // ULP error against value
  ulp_normal,  // ULP where value is a normal number; a subnormal value allows [0, 2 * tiny]
  scaled,      // absolute error in ULP of scale
  untouched,   // outside every slice: must keep what was there
};

template <class T>
struct Expect {
  W<T> value;
  W<T> scale;
  Kind kind;
};

template <class T>
Expect<T> exact(T v) {
  return {W<T>(v), 0, Kind::exact};
}

// The ULP of |v| rounded to T: the smallest subnormal for subnormals and zero, the ULP of the
// largest finite number where the rounding overflows (numpy.spacing's convention, as _accuracy.py).
template <class T>
W<T> unit(W<T> v) {
  using L = std::numeric_limits<T>;
  const W<T> a = std::fabs(v);
  const T r = static_cast<T>(a);
  if (std::isnan(a)) return std::numeric_limits<W<T>>::quiet_NaN();
  if (std::isinf(a)) return std::numeric_limits<W<T>>::infinity();
  if (std::isinf(r) || r == L::max()) return W<T>(L::max()) - W<T>(std::nextafter(L::max(), T(0)));
  return W<T>(std::nextafter(r, L::infinity())) - W<T>(r);
}

// |a - r| / u with the special values settled: both NaN count 0, NaN on one side inf; an infinite
// result counts 0 only if the reference rounds to it; a finite result of an infinite reference, inf.
template <class T>
double error_in_units(T a, W<T> r, W<T> u) {
  const bool an = std::isnan(a), rn = std::isnan(r);
  if (an || rn) return an && rn ? 0.0 : HUGE_VAL;
  if (std::isinf(a)) return a == static_cast<T>(r) ? 0.0 : HUGE_VAL;
  if (std::isinf(r)) return HUGE_VAL;
  const double e = static_cast<double>(std::fabs(W<T>(a) - r) / u);
  return std::isnan(e) ? HUGE_VAL : e;
}

template <class T>
double score(T a, const Expect<T>& e) {
  switch (e.kind) {
    case Kind::exact: {
      if (same(a, static_cast<T>(e.value))) return 0.0;
      return std::max(1.0, error_in_units<T>(a, e.value, unit<T>(e.value)));
    }
    case Kind::ulp_normal: {
      const T tiny = std::numeric_limits<T>::min();
      if (e.value != 0 && std::fabs(e.value) < W<T>(tiny)) return a >= 0 && a <= 2 * tiny ? 0.0 : HUGE_VAL;
      return error_in_units<T>(a, e.value, unit<T>(e.value));
    }
    case Kind::ulp:
      return error_in_units<T>(a, e.value, unit<T>(e.value));
    case Kind::scaled:
      return error_in_units<T>(a, e.value, unit<T>(e.scale));
    case Kind::untouched:
      break;
  }
  return 0.0;
}

// ---- the formulas (DESIGN.md §1), in the dtype itself; the build passes -ffp-contract=off -----

template <class T>
Expect<T> expect_relu(T x) {
  return exact<T>(x < T(0) ? T(0) : x);
}
template <class T>
Expect<T> expect_leaky_relu(T x, T slope) {
  return exact<T>(x > T(0) ? x : x * slope);
}
template <class T>
Expect<T> expect_relu_backward(T g, T y) {
  return exact<T>(y <= T(0) ? T(0) : g);
}
template <class T>
Expect<T> expect_leaky_relu_backward(T g, T x, T slope) {
  return exact<T>(x > T(0) ? g : g * slope);
}
template <class T>
Expect<T> expect_sigmoid_backward(T g, T y) {
  return exact<T>((g * (T(1) - y)) * y);
}
template <class T>
Expect<T> expect_tanh_backward(T g, T y) {
  return exact<T>(g * std::fma(-y, y, T(1)));
}

template <class T>
Expect<T> expect_sigmoid(T x) {
  if (std::isnan(x)) return exact<T>(x);
  if (std::isinf(x)) return exact<T>(x > 0 ? T(1) : T(0));
  const W<T> w = x;
  if (w >= 0) return {W<T>(1) / (W<T>(1) + std::exp(-w)), 0, Kind::ulp_normal};
  const W<T> e = std::exp(w);
  return {e / (W<T>(1) + e), 0, Kind::ulp_normal};
}
template <class T>
Expect<T> expect_tanh(T x) {
  if (std::isnan(x) || x == 0) return exact<T>(x);
  if (std::isinf(x)) return exact<T>(x > 0 ? T(1) : T(-1));
  return {std::tanh(W<T>(x)), 0, Kind::ulp};
}

// sum of term(j), j < len, compensated (Neumaier), so the reference's own sum error is negligible
// even for 100000-element slices.
template <class T, class Term>
W<T> neumaier_sum(std::size_t len, Term term) {
  W<T> s = 0, c = 0;
  for (std::size_t j = 0; j < len; ++j) {
    const W<T> v = term(j), t = s + v;
    c += std::fabs(s) >= std::fabs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

// softmax / log_softmax of one slice (x[j * step], j < len) into out[j * step].
template <class T>
void expect_softmax_slice(const T* x, std::size_t len, std::size_t step, bool log, Expect<T>* out) {
  bool bad = false;
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t j = 0; j < len; ++j) {
    const T v = x[j * step];
    if (std::isnan(v)) bad = true;
    else if (v > m) m = v;
  }
  if (bad || std::isinf(m)) {
    for (std::size_t j = 0; j < len; ++j) out[j * step] = exact<T>(std::numeric_limits<T>::quiet_NaN());
    return;
  }
  const W<T> sum = neumaier_sum<T>(len, [&](std::size_t j) { return std::exp(W<T>(x[j * step] - m)); });  // x - max in T
  const W<T> log_sum = std::log(sum);
  for (std::size_t j = 0; j < len; ++j) {
    const W<T> s = x[j * step] - m;
    if (log) {
      const W<T> v = s - log_sum;
      out[j * step] = {v, std::max(std::fabs(v), W<T>(1)), Kind::scaled};
    } else {
      out[j * step] = {std::exp(s) / sum, 0, Kind::ulp};
    }
  }
}

// Backward of one slice: softmax y * (g - sum(g*y)); log_softmax g - exp(log_y) * sum(g).
template <class T>
void expect_softmax_backward_slice(const T* g, const T* v, std::size_t len, std::size_t step, bool log,
                                   Expect<T>* out) {
  auto term = [&](std::size_t j) { return log ? W<T>(g[j * step]) : W<T>(g[j * step]) * W<T>(v[j * step]); };
  const W<T> s = neumaier_sum<T>(len, term);
  const W<T> s_abs = neumaier_sum<T>(len, [&](std::size_t j) { return std::fabs(term(j)); });
  for (std::size_t j = 0; j < len; ++j) {
    const W<T> gj = g[j * step], vj = v[j * step];
    if (log) {
      const W<T> e = std::exp(vj);
      out[j * step] = {gj - e * s, std::fabs(gj) + e * s_abs, Kind::scaled};
    } else {
      out[j * step] = {vj * (gj - s), std::fabs(vj) * (std::fabs(gj) + s_abs), Kind::scaled};
    }
  }
}

// ---- one output line -------------------------------------------------------------------------

struct Line {
  Line(std::string target_, std::string dtype_, std::string function_, double bound_, const char* unit_)
      : target(std::move(target_)), dtype(std::move(dtype_)), function(std::move(function_)), bound(bound_),
        unit(unit_) {}
  std::string target, dtype, function;
  double bound;
  const char* unit;
  double max_err = 0;
  std::string worst;
  std::size_t count = 0;
  std::vector<std::string> problems, seen;
  std::size_t more_problems = 0;

  template <class Describe>
  void add(double e, Describe&& describe) {
    ++count;
    if (e > max_err) {
      max_err = e;
      worst = describe();
    }
  }
  // A failure that is not a number: reported once per distinct message, the first label that hit it.
  void problem(const std::string& label, const std::string& message) {
    if (problems.size() >= 6 || std::find(seen.begin(), seen.end(), message) != seen.end()) {
      ++more_problems;
      return;
    }
    seen.push_back(message);
    problems.push_back(label + ": " + message);
  }
  bool ok() const { return max_err <= bound && problems.empty(); }
};

constexpr std::size_t kGuard = 64;  // elements before and after every buffer, which must stay intact

// Runs run(a, b, out) over copies of a (and b) placed `off` elements past a guard zone and checks
// every output against `ex`, the guards, the inputs, and the in-place calls (out == a, out == b).
template <class T, class Run>
void check_call(Line& line, const std::string& label, Run&& run, const std::vector<T>& a, const std::vector<T>* b,
                const std::vector<Expect<T>>& ex, std::size_t off) {
  const std::size_t n = a.size(), at = kGuard + off, total = n + 2 * kGuard + off;
  std::vector<T> ia(total, sentinel<T>()), ib, out(total, sentinel<T>());
  std::copy(a.begin(), a.end(), ia.begin() + at);
  if (b) {
    ib.assign(total, sentinel<T>());
    std::copy(b->begin(), b->end(), ib.begin() + at);
  }
  const T* pb = b ? ib.data() + at : nullptr;
  run(ia.data() + at, pb, out.data() + at);

  for (std::size_t i = 0; i < total; ++i) {
    if (i >= at && i < at + n) continue;
    if (bits(out[i]) != bits(sentinel<T>())) {
      line.problem(label, "wrote outside the output, at index " +
                              std::to_string(static_cast<long long>(i) - static_cast<long long>(at)));
      break;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (bits(ia[at + i]) != bits(a[i]) || (b && bits(ib[at + i]) != bits((*b)[i]))) {
      line.problem(label, "modified an input at index " + std::to_string(i));
      break;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const T y = out[at + i];
    if (ex[i].kind == Kind::untouched) {
      if (bits(y) != bits(sentinel<T>())) {
        line.problem(label, "wrote into a gap between slices at index " + std::to_string(i));
        break;
      }
      continue;
    }
    line.add(score(y, ex[i]), [&] {
      std::string s = label + " i=" + std::to_string(i) + ": " + (b ? "g=" : "x=") + show(a[i]);
      if (b) s += " v=" + show((*b)[i]);
      return s + " got " + show(y) + " want " + show(ex[i].value);
    });
  }

  // In place: the same bits as out of place (gaps keep the input's values).
  for (int which = 0; which < (b ? 2 : 1); ++which) {
    std::vector<T> z = which == 0 ? ia : ib;
    if (which == 0) run(z.data() + at, pb, z.data() + at);
    else run(ia.data() + at, z.data() + at, z.data() + at);
    const std::vector<T>& src = which == 0 ? a : *b;
    for (std::size_t i = 0; i < n; ++i) {
      const T want = ex[i].kind == Kind::untouched ? src[i] : out[at + i];
      if (bits(z[at + i]) != bits(want)) {
        line.problem(label, std::string("in place (out == ") + (which == 0 ? "first" : "second") +
                                " input) differs from out of place at index " + std::to_string(i) + ": " +
                                show(z[at + i]) + " vs " + show(want));
        break;
      }
    }
  }
}

// ---- inputs ----------------------------------------------------------------------------------

template <class T>
std::vector<T> sweep(bool quick);

template <>
std::vector<float> sweep<float>(bool quick) {
  using u32 = std::uint32_t;
  const u32 k = quick ? 8 : 1;
  const u32 b20 = bits(20.0f), b128 = bits(128.0f), bmax = bits(std::numeric_limits<float>::max());
  std::vector<u32> pos;
  for (std::uint64_t u = 0; u <= b20; u += 1021 * k) pos.push_back(static_cast<u32>(u));
  for (std::uint64_t u = b20; u <= b128; u += 1021 * k) pos.push_back(static_cast<u32>(u));
  for (std::uint64_t u = b128; u <= bmax; u += 16381 * k) pos.push_back(static_cast<u32>(u));
  std::mt19937_64 rng(20240611);
  const u32 mant_max = (1u << 23) - 1;
  std::uniform_int_distribution<u32> mant(0, mant_max);
  for (u32 e = 0; e < 127; ++e) {  // every binade below 1, subnormals (exponent field 0) included
    for (u32 m : {0u, 1u, 2u, 3u, mant_max - 1, mant_max}) pos.push_back(e << 23 | m);
    for (int r = 0; r < 60; ++r) pos.push_back(e << 23 | mant(rng));
  }
  using L = std::numeric_limits<float>;
  for (float s : {0.0f, 1.0f, 0.5f, 20.0f, 128.0f, L::max(), L::min(), L::denorm_min(), L::infinity()})
    pos.push_back(bits(s));
  std::vector<float> x;
  x.reserve(2 * pos.size() + 2);
  for (u32 b : pos) x.push_back(from_bits<float>(b));
  for (u32 b : pos) x.push_back(from_bits<float>(b | 0x80000000u));
  x.push_back(from_bits<float>(0x7FC00000u));
  x.push_back(from_bits<float>(0xFFC00000u));
  return x;
}

template <>
std::vector<double> sweep<double>(bool quick) {
  using u64 = std::uint64_t;
  using L = std::numeric_limits<double>;
  const std::size_t k = quick ? 8 : 1;
  std::mt19937_64 rng(20240612);
  auto sign = [&rng](u64 b) { return from_bits<double>(b | (rng() & 1) << 63); };
  const u64 b1000 = bits(1000.0), bmax = bits(L::max()), mant_max = (u64{1} << 52) - 1;
  std::vector<double> x;
  std::uniform_int_distribution<u64> low(0, b1000 - 1), high(b1000, bmax - 1), mant(0, mant_max - 1);
  std::uniform_real_distribution<double> mid(-40.0, 40.0), tail(-750.0, -20.0);
  for (std::size_t i = 0; i < 200000 / k; ++i) x.push_back(sign(low(rng)));  // log-uniform, subnormals to 1000
  for (std::size_t i = 0; i < 300000 / k; ++i) x.push_back(mid(rng));
  for (std::size_t i = 0; i < 100000 / k; ++i) x.push_back(tail(rng));  // sigmoid's tail, past underflow
  for (std::size_t i = 0; i < 20000 / k; ++i) x.push_back(sign(high(rng)));
  for (u64 e = 0; e < 1023; ++e) {  // every binade below 1, subnormals included, both signs
    std::vector<u64> ms = {0, 1, mant_max};
    for (int r = 0; r < 8; ++r) ms.push_back(mant(rng));
    for (u64 m : ms) {
      x.push_back(from_bits<double>(e << 52 | m));
      x.push_back(from_bits<double>(e << 52 | m | u64{1} << 63));
    }
  }
  for (double s : {0.0, 1.0, 0.5, 20.0, 40.0, 710.0, 745.0, 1000.0, L::max(), L::min(), L::denorm_min(),
                   L::infinity()}) {
    x.push_back(s);
    x.push_back(-s);
  }
  x.push_back(from_bits<double>(0x7FF8000000000000ull));
  x.push_back(from_bits<double>(0xFFF8000000000000ull));
  return x;
}

// Special values (both signs) and the kernels' internal boundaries, for the tails and the pairs.
template <class T>
std::vector<T> specials() {
  using L = std::numeric_limits<T>;
  const T max_sub = from_bits<T>((U<T>{1} << Traits<T>::mant_bits) - 1);
  const bool f = std::is_same_v<T, float>;
  const T mags[] = {T(0),       L::denorm_min(), max_sub, L::min(), T(1e-4), T(0.25),          T(0.5),
                    T(0.5493061443340548), T(1), T(2),       T(10),   T(20),   T(f ? 88.7 : 709.7), T(f ? 104 : 746),
                    L::max(),   L::infinity()};
  std::vector<T> out;
  for (T m : mags) {
    out.push_back(m);
    out.push_back(-m);
  }
  out.push_back(L::quiet_NaN());
  out.push_back(-L::quiet_NaN());
  return out;
}

// specials() plus evenly spaced sweep values: what the tails rotate through.
template <class T>
std::vector<T> tail_pool(const std::vector<T>& sweep_values) {
  std::vector<T> pool = specials<T>();
  const std::size_t extra = 30;
  for (std::size_t i = 0; i < extra; ++i) pool.push_back(sweep_values[(i * 2654435761u) % sweep_values.size()]);
  return pool;
}

// ---- elementwise functions -------------------------------------------------------------------

// A unary kernel: the whole sweep, then every tail length at every offset.
template <class T, class Call, class ExpectFn>
void check_unary(Line& line, Call call, ExpectFn expect, const std::vector<T>& xs,
                 const std::vector<Expect<T>>* sweep_expect, const std::vector<T>& pool) {
  auto run = [&](const T* x, const T*, T* y, std::size_t n) { call(x, y, n); };
  {
    std::vector<Expect<T>> computed;
    if (!sweep_expect) {
      computed.reserve(xs.size());
      for (T x : xs) computed.push_back(expect(x));
    }
    const auto& ex = sweep_expect ? *sweep_expect : computed;
    check_call<T>(line, "sweep", [&](const T* a, const T* b, T* y) { run(a, b, y, xs.size()); }, xs, nullptr, ex, 1);
  }
  std::vector<Expect<T>> pool_ex;
  for (T x : pool) pool_ex.push_back(expect(x));
  const std::size_t P = pool.size();
  for (std::size_t n = 0; n <= 40; ++n) {
    for (std::size_t off = 0; off < 4; ++off) {
      for (std::size_t rot = 0; rot < (n ? P : 1); rot += (off ? 3 : 1)) {
        std::vector<T> x(n);
        std::vector<Expect<T>> ex(n);
        for (std::size_t i = 0; i < n; ++i) {
          x[i] = pool[(i + rot) % P];
          ex[i] = pool_ex[(i + rot) % P];
        }
        const std::string label = "tail n=" + std::to_string(n) + " off=" + std::to_string(off);
        check_call<T>(line, label, [&](const T* a, const T* b, T* y) { run(a, b, y, n); }, x, nullptr, ex, off);
      }
    }
  }
}

// A binary kernel (grad, v): the sweep (v) against a shuffled sweep (grad), every pair of specials,
// then every tail length at every offset.
template <class T, class Call, class ExpectFn>
void check_binary(Line& line, Call call, ExpectFn expect, const std::vector<T>& xs, const std::vector<T>& pool) {
  auto run_n = [&](std::size_t n) { return [&call, n](const T* g, const T* v, T* out) { call(g, v, out, n); }; };
  {
    std::vector<T> g = xs;
    std::shuffle(g.begin(), g.end(), std::mt19937_64(7));
    std::vector<Expect<T>> ex;
    ex.reserve(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) ex.push_back(expect(g[i], xs[i]));
    check_call<T>(line, "sweep", run_n(xs.size()), g, &xs, ex, 1);
  }
  {
    const std::vector<T> s = specials<T>();
    std::vector<T> g, v;
    std::vector<Expect<T>> ex;
    for (T a : s) {
      for (T c : s) {
        g.push_back(a);
        v.push_back(c);
        ex.push_back(expect(a, c));
      }
    }
    check_call<T>(line, "special pairs", run_n(g.size()), g, &v, ex, 0);
  }
  const std::size_t P = pool.size();
  for (std::size_t n = 0; n <= 40; ++n) {
    for (std::size_t off = 0; off < 4; ++off) {
      for (std::size_t rot = 0; rot < (n ? P : 1); rot += (off ? 3 : 1)) {
        std::vector<T> g(n), v(n);
        std::vector<Expect<T>> ex(n);
        for (std::size_t i = 0; i < n; ++i) {
          g[i] = pool[(3 * i + 5 * rot + 1) % P];
          v[i] = pool[(i + rot) % P];
          ex[i] = expect(g[i], v[i]);
        }
        const std::string label = "tail n=" + std::to_string(n) + " off=" + std::to_string(off);
        check_call<T>(line, label, run_n(n), g, &v, ex, off);
      }
    }
  }
}

// ---- softmax family --------------------------------------------------------------------------

// Kinds of slice: 0-3 random logits at growing scales (3 underflows some exps), 4 a NaN at p,
// 5 +inf at p, 6 all -inf, 7 -inf at p, 8 finite specials (+-0, subnormals, +-max), 9 -NaN at p,
// 10 huge values.
constexpr int kSliceKinds = 11;

template <class T>
void fill_slice(std::mt19937_64& rng, int kind, std::size_t len, T* x, std::size_t step) {
  using L = std::numeric_limits<T>;
  if (len == 0) return;
  static const double scales[] = {0.01, 1.0, 16.0, 50.0};
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> offset(-100.0, 100.0);
  const double scale = kind < 4 ? scales[kind] : 4.0;
  const double base = offset(rng);
  for (std::size_t j = 0; j < len; ++j) x[j * step] = static_cast<T>(normal(rng) * scale + base);
  const std::size_t p = static_cast<std::size_t>(rng() % len);
  const T max_sub = from_bits<T>((U<T>{1} << Traits<T>::mant_bits) - 1);
  const T fin[] = {T(0), -T(0), L::denorm_min(), -L::denorm_min(), max_sub, -L::min(), T(1), -T(1), L::max(), -L::max()};
  switch (kind) {
    case 4: x[p * step] = L::quiet_NaN(); break;
    case 5: x[p * step] = L::infinity(); break;
    case 6:
      for (std::size_t j = 0; j < len; ++j) x[j * step] = -L::infinity();
      break;
    case 7: x[p * step] = -L::infinity(); break;
    case 8:
      for (std::size_t j = 0; j < len; ++j) x[j * step] = fin[(j + p) % 10];
      break;
    case 9: x[p * step] = -L::quiet_NaN(); break;
    case 10:
      for (std::size_t j = 0; j < len; ++j) x[j * step] = static_cast<T>(normal(rng) * (sizeof(T) == 4 ? 1e30 : 1e300));
      break;
    default: break;
  }
}

// The slice kinds whose softmax is not NaN (used to make the backward ops' inputs).
constexpr int kFiniteKinds[] = {0, 1, 2, 3, 7, 8, 10};

template <class T>
void check_rows(Line& line, const KernelSet<T>& k, bool log, bool backward, std::size_t rows, std::size_t len,
                std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> x(rows * len), g(rows * len), v(rows * len);
  std::vector<Expect<T>> ex(rows * len);
  for (std::size_t r = 0; r < rows; ++r) {
    const int kind = backward ? kFiniteKinds[(r + seed) % 7] : static_cast<int>((r + seed) % kSliceKinds);
    fill_slice<T>(rng, kind, len, x.data() + r * len, 1);
  }
  const std::string label = std::string(backward ? "backward " : "") + "rows=" + std::to_string(rows) +
                            " len=" + std::to_string(len) + " (slice = i / len)";
  if (!backward) {
    for (std::size_t r = 0; r < rows; ++r) expect_softmax_slice<T>(x.data() + r * len, len, 1, log, ex.data() + r * len);
    auto fn = log ? k.log_softmax_rows : k.softmax_rows;
    check_call<T>(line, label, [&](const T* a, const T*, T* y) { fn(a, y, rows, len); }, x, nullptr, ex, len % 4);
    return;
  }
  std::normal_distribution<double> normal;
  for (std::size_t r = 0; r < rows; ++r) expect_softmax_slice<T>(x.data() + r * len, len, 1, log, ex.data() + r * len);
  for (std::size_t i = 0; i < rows * len; ++i) {
    v[i] = static_cast<T>(ex[i].value);
    g[i] = static_cast<T>(normal(rng));
  }
  for (std::size_t r = 0; r < rows; ++r)
    expect_softmax_backward_slice<T>(g.data() + r * len, v.data() + r * len, len, 1, log, ex.data() + r * len);
  auto fn = log ? k.log_softmax_backward_rows : k.softmax_backward_rows;
  check_call<T>(line, label, [&](const T* a, const T* b, T* y) { fn(a, b, y, rows, len); }, g, &v, ex, len % 4);
}

// `width` slices of `len` elements, element j of slice c at j * stride + c; the stride - width
// columns in between belong to no slice and must be left alone.
template <class T>
void check_cols(Line& line, const KernelSet<T>& k, bool log, bool backward, std::size_t len, std::size_t width,
                std::size_t stride, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::size_t total = len ? (len - 1) * stride + width : 0;
  std::vector<T> x(total, T(0)), g(total, T(0)), v(total, T(0));
  std::vector<Expect<T>> ex(total, Expect<T>{0, 0, Kind::untouched});
  for (std::size_t c = 0; c < width; ++c) {
    const int kind = backward ? kFiniteKinds[(c + seed) % 7] : static_cast<int>((c + seed) % kSliceKinds);
    fill_slice<T>(rng, kind, len, x.data() + c, stride);
    expect_softmax_slice<T>(x.data() + c, len, stride, log, ex.data() + c);
  }
  const std::string label = std::string(backward ? "backward " : "") + "len=" + std::to_string(len) +
                            " width=" + std::to_string(width) + " stride=" + std::to_string(stride) +
                            " (slice = i % stride)";
  if (!backward) {
    auto fn = log ? k.log_softmax_cols : k.softmax_cols;
    check_call<T>(line, label, [&](const T* a, const T*, T* y) { fn(a, y, len, width, stride); }, x, nullptr, ex,
                  width % 4);
    return;
  }
  std::normal_distribution<double> normal;
  for (std::size_t i = 0; i < total; ++i) {
    if (ex[i].kind == Kind::untouched) continue;
    v[i] = static_cast<T>(ex[i].value);
    g[i] = static_cast<T>(normal(rng));
  }
  for (std::size_t c = 0; c < width; ++c)
    expect_softmax_backward_slice<T>(g.data() + c, v.data() + c, len, stride, log, ex.data() + c);
  auto fn = log ? k.log_softmax_backward_cols : k.softmax_backward_cols;
  check_call<T>(line, label, [&](const T* a, const T* b, T* y) { fn(a, b, y, len, width, stride); }, g, &v, ex,
                width % 4);
}

template <class T>
void check_softmax(Line& line, const KernelSet<T>& k, bool log, bool backward, bool cols, bool quick) {
  std::uint64_t seed = 1000 * (log ? 2 : 1) + (backward ? 100 : 0) + (cols ? 10 : 0);
  if (!cols) {
    for (std::size_t len = 0; len <= 40; ++len) check_rows<T>(line, k, log, backward, len ? 2 * kSliceKinds : 3, len, ++seed);
    for (std::size_t len : {63, 64, 65, 255, 1000}) check_rows<T>(line, k, log, backward, kSliceKinds, len, ++seed);
    check_rows<T>(line, k, log, backward, 2, quick ? 20000 : 100000, ++seed);
    // float32 slices of 16 MB and more take the two-pass (online max and sum) form; 3 slice kinds
    // (random, a NaN, +inf), and a tail past the last block and vector.
    if (sizeof(T) == 4 && !backward) check_rows<T>(line, k, log, backward, 3, (std::size_t{16} << 20) / 4 + 37, 3);
    return;
  }
  std::vector<std::size_t> widths;
  for (std::size_t w = 1; w <= 40; ++w) widths.push_back(w);
  for (std::size_t w : {63, 64, 65, 100, 129}) widths.push_back(w);
  for (std::size_t w : widths) {
    for (std::size_t len : {1, 2, 7}) {
      const std::size_t stride = w % 3 == 0 ? w : w + 5;
      check_cols<T>(line, k, log, backward, len, w, stride, ++seed);
    }
  }
  check_cols<T>(line, k, log, backward, quick ? 200 : 1000, 70, 75, ++seed);
  // Strides of a multiple of 1 KB: softmax blocks are first copied to contiguous rows (pack_block in
  // softmax-inl.h); the columns between the slices must still be left alone.
  check_cols<T>(line, k, log, backward, quick ? 100 : 300, 70, 256, ++seed);
  check_cols<T>(line, k, log, backward, 40, 100, 1024, ++seed);
  check_cols<T>(line, k, log, backward, 0, 5, 9, ++seed);
  check_cols<T>(line, k, log, backward, 5, 0, 4, ++seed);
}

// ---- driver ----------------------------------------------------------------------------------

struct Summary {
  int passed = 0, failed = 0;
};

void finish(Summary& s, const Line& line) {
  std::printf("%-7s %-8s %-26s max %-9.3g bound %-3g %-20s %9zu values  %s\n", line.target.c_str(),
              line.dtype.c_str(), line.function.c_str(), line.max_err, line.bound, line.unit, line.count,
              line.ok() ? "ok" : "FAILED");
  if (!line.ok()) {
    if (line.max_err > line.bound) std::printf("    worst: %s\n", line.worst.c_str());
    for (const std::string& p : line.problems) std::printf("    %s\n", p.c_str());
    if (line.more_problems) std::printf("    ... and %zu more calls with a problem\n", line.more_problems);
  }
  std::fflush(stdout);
  (line.ok() ? s.passed : s.failed)++;
}

template <class T>
void run_dtype(const std::vector<const KernelTable*>& targets, bool quick, Summary& summary) {
  const std::vector<T> xs = sweep<T>(quick);
  const std::vector<T> pool = tail_pool<T>(xs);
  const char* dt = Traits<T>::name;
  auto line = [&](const KernelTable* t, const char* fn, double bound, const char* unit) {
    return Line(t->name, dt, fn, bound, unit);
  };
  const char* exact_unit = "ulp (exact)";

  // sigmoid and tanh: the reference over the sweep is computed once, shared by the targets.
  for (const char* name : {"sigmoid", "tanh"}) {
    const bool sig = name[0] == 's';
    auto expect = [sig](T x) { return sig ? expect_sigmoid<T>(x) : expect_tanh<T>(x); };
    std::vector<Expect<T>> ex;
    ex.reserve(xs.size());
    for (T x : xs) ex.push_back(expect(x));
    for (const KernelTable* t : targets) {
      const KernelSet<T>& k = t->get<T>();
      Line l = line(t, name, 2, sig ? "ulp (normal results)" : "ulp");
      check_unary<T>(l, sig ? k.sigmoid : k.tanh, expect, xs, &ex, pool);
      finish(summary, l);
    }
  }

  const T slopes[] = {T(0.01), T(0), T(-0.5), T(1.5)};
  for (const KernelTable* t : targets) {
    const KernelSet<T>& k = t->get<T>();
    {
      Line l = line(t, "relu", 0, exact_unit);
      check_unary<T>(l, k.relu, expect_relu<T>, xs, nullptr, pool);
      finish(summary, l);
    }
    {
      Line l = line(t, "leaky_relu", 0, exact_unit);
      for (T s : slopes) {
        check_unary<T>(l, [&](const T* x, T* y, std::size_t n) { k.leaky_relu(x, y, n, s); },
                       [s](T x) { return expect_leaky_relu<T>(x, s); }, xs, nullptr, pool);
      }
      finish(summary, l);
    }
    {
      Line l = line(t, "relu_backward", 0, exact_unit);
      check_binary<T>(l, k.relu_backward, expect_relu_backward<T>, xs, pool);
      finish(summary, l);
    }
    {
      Line l = line(t, "leaky_relu_backward", 0, exact_unit);
      for (T s : slopes) {
        check_binary<T>(l, [&](const T* g, const T* x, T* out, std::size_t n) { k.leaky_relu_backward(g, x, out, n, s); },
                        [s](T g, T x) { return expect_leaky_relu_backward<T>(g, x, s); }, xs, pool);
      }
      finish(summary, l);
    }
    {
      Line l = line(t, "sigmoid_backward", 0, exact_unit);
      check_binary<T>(l, k.sigmoid_backward, expect_sigmoid_backward<T>, xs, pool);
      finish(summary, l);
    }
    {
      Line l = line(t, "tanh_backward", 0, exact_unit);
      check_binary<T>(l, k.tanh_backward, expect_tanh_backward<T>, xs, pool);
      finish(summary, l);
    }
    struct SoftmaxLine {
      const char* name;
      bool log, backward, cols;
      double bound;
      const char* unit;
    };
    const SoftmaxLine softmax_lines[] = {
        {"softmax_rows", false, false, false, 4, "ulp"},
        {"softmax_cols", false, false, true, 4, "ulp"},
        {"log_softmax_rows", true, false, false, 2, "ulp of max(|y|,1)"},
        {"log_softmax_cols", true, false, true, 2, "ulp of max(|y|,1)"},
        {"softmax_backward_rows", false, true, false, 8, "ulp of the terms"},
        {"softmax_backward_cols", false, true, true, 8, "ulp of the terms"},
        {"log_softmax_backward_rows", true, true, false, 8, "ulp of the terms"},
        {"log_softmax_backward_cols", true, true, true, 8, "ulp of the terms"},
    };
    for (const SoftmaxLine& s : softmax_lines) {
      Line l = line(t, s.name, s.bound, s.unit);
      check_softmax<T>(l, k, s.log, s.backward, s.cols, quick);
      finish(summary, l);
    }
  }
}

int usage(const char* argv0, int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: %s [--target NAME]... [--quick]\n"
               "  Checks every kernel of every SIMD target compiled in and runnable on this CPU (or only the\n"
               "  --target ones) against a wider reference and DESIGN.md's bounds.\n"
               "  --quick  thin the sweeps 8x (for slow emulators)\n"
               "  --exhaustive  also float32 sigmoid and tanh on every bit pattern (minutes)\n",
               argv0);
  return code;
}

}  // namespace

// sigmoid and tanh on every float32, in chunks (the reference per chunk, shared by the targets).
void run_exhaustive(const std::vector<const KernelTable*>& targets, Summary& summary) {
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 22;
  std::vector<float> xs(kChunk);
  std::vector<Expect<float>> ex(kChunk);
  for (const char* name : {"sigmoid", "tanh"}) {
    const bool sig = name[0] == 's';
    std::vector<Line> lines;
    for (const KernelTable* t : targets)
      lines.emplace_back(t->name, "float32", std::string(name) + " every float", 2,
                         sig ? "ulp (normal results)" : "ulp");
    for (std::uint64_t start = 0; start < (std::uint64_t{1} << 32); start += kChunk) {
      for (std::uint64_t i = 0; i < kChunk; ++i) {
        xs[i] = from_bits<float>(static_cast<std::uint32_t>(start + i));
        ex[i] = sig ? expect_sigmoid<float>(xs[i]) : expect_tanh<float>(xs[i]);
      }
      for (std::size_t ti = 0; ti < targets.size(); ++ti) {
        const KernelSet<float>& k = targets[ti]->get<float>();
        const auto fn = sig ? k.sigmoid : k.tanh;
        const auto run = [&](const float* a, const float*, float* y) { fn(a, y, kChunk); };
        check_call<float>(lines[ti], "every float", run, xs, nullptr, ex, 0);
      }
    }
    for (const Line& l : lines) finish(summary, l);
  }
}

int main(int argc, char** argv) {
  std::vector<std::string> wanted;
  bool quick = false, exhaustive = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--target" && i + 1 < argc) {
      wanted.push_back(argv[++i]);
    } else if (a.rfind("--target=", 0) == 0) {
      wanted.push_back(a.substr(9));
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--exhaustive") {
      exhaustive = true;
    } else if (a == "-h" || a == "--help") {
      return usage(argv[0], 0);
    } else {
      std::fprintf(stderr, "fastact_kernel_test: unknown argument '%s'\n", a.c_str());
      return usage(argv[0], 2);
    }
  }

  const std::vector<const KernelTable*> runnable = fastact::supported_targets();
  std::string compiled_list, runnable_list;
  for (const std::string& n : fastact::compiled_target_names()) compiled_list += " " + n;
  for (const KernelTable* t : runnable) runnable_list += " " + std::string(t->name);
  std::printf("compiled:%s\nrunnable on this CPU:%s\n", compiled_list.c_str(), runnable_list.c_str());
  for (const std::string& n : fastact::compiled_target_names()) {
    const bool ok = std::any_of(runnable.begin(), runnable.end(), [&](const KernelTable* t) { return n == t->name; });
    if (!ok) std::printf("skipped: %s (compiled in, this CPU cannot run it)\n", n.c_str());
  }

  std::vector<const KernelTable*> targets;
  if (wanted.empty()) {
    targets = runnable;
  } else {
    for (const std::string& w : wanted) {
      auto it = std::find_if(runnable.begin(), runnable.end(), [&](const KernelTable* t) { return w == t->name; });
      if (it == runnable.end()) {
        std::fprintf(stderr, "fastact_kernel_test: target '%s' is not compiled in or not runnable here; runnable:%s\n",
                     w.c_str(), runnable_list.c_str());
        return 2;
      }
      targets.push_back(*it);
    }
  }
  std::printf("reference: float32 vs double, float64 vs long double (%d-bit significand)%s\n",
              std::numeric_limits<long double>::digits, quick ? "; --quick: sweeps thinned 8x" : "");

  Summary summary;
  run_dtype<float>(targets, quick, summary);
  run_dtype<double>(targets, quick, summary);
  if (exhaustive) run_exhaustive(targets, summary);
  std::printf("%d passed, %d failed\n", summary.passed, summary.failed);
  return summary.failed ? 1 : 0;
}
