#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace fastact {

// Each target's translation unit defines its own kernel_table(); CMake tells us which exist.
#define FASTACT_DECLARE_TARGET(ns) \
  namespace ns {                   \
  const KernelTable& kernel_table(); \
  }
#ifdef FASTACT_HAVE_AVX512
FASTACT_DECLARE_TARGET(avx512)
#endif
#ifdef FASTACT_HAVE_AVX2
FASTACT_DECLARE_TARGET(avx2)
#endif
#ifdef FASTACT_HAVE_SSE2
FASTACT_DECLARE_TARGET(sse2)
#endif
#ifdef FASTACT_HAVE_NEON
FASTACT_DECLARE_TARGET(neon)
#endif
FASTACT_DECLARE_TARGET(scalar)

namespace {

struct Candidate {
  const char* name;
  const KernelTable& (*table)();
  bool (*runnable)();
};

bool always() { return true; }

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#if defined(_MSC_VER) && !defined(__clang__)
// MSVC: CPUID leaf 7 for AVX2/AVX-512F, leaf 1 for FMA/OSXSAVE, and XCR0 for the OS saving
// the YMM (bits 1-2) and ZMM (bits 5-7) state.
bool os_saves(unsigned long long mask) {
  int r[4];
  __cpuid(r, 1);
  const bool osxsave = (r[2] >> 27) & 1;
  return osxsave && (_xgetbv(0) & mask) == mask;
}
bool cpu_has_avx2_fma() {
  int r1[4], r7[4];
  __cpuid(r1, 1);
  __cpuidex(r7, 7, 0);
  return ((r1[2] >> 12) & 1) && ((r7[1] >> 5) & 1) && os_saves(0x6);
}
bool cpu_has_avx512f() {
  int r7[4];
  __cpuidex(r7, 7, 0);
  return cpu_has_avx2_fma() && ((r7[1] >> 16) & 1) && os_saves(0xe6);
}
#elif defined(__GNUC__)
// __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool cpu_has_avx512f() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && cpu_has_avx2_fma();
}
#else
bool cpu_has_avx2_fma() { return false; }
bool cpu_has_avx512f() { return false; }
#endif
#endif

const std::vector<Candidate>& candidates() {
  static const std::vector<Candidate> list = {
#ifdef FASTACT_HAVE_AVX512
      {"avx512", avx512::kernel_table, cpu_has_avx512f},
#endif
#ifdef FASTACT_HAVE_AVX2
      {"avx2", avx2::kernel_table, cpu_has_avx2_fma},
#endif
#ifdef FASTACT_HAVE_SSE2
      {"sse2", sse2::kernel_table, always},
#endif
#ifdef FASTACT_HAVE_NEON
      {"neon", neon::kernel_table, always},
#endif
      {"scalar", scalar::kernel_table, always},
  };
  return list;
}

std::atomic<const KernelTable*> g_active{nullptr};

std::string supported_list() {
  std::string s;
  for (const KernelTable* t : supported_targets()) s += (s.empty() ? "" : ", ") + std::string(t->name);
  return s;
}

}  // namespace

std::vector<const KernelTable*> supported_targets() {
  std::vector<const KernelTable*> out;
  for (const Candidate& c : candidates())
    if (c.runnable()) out.push_back(&c.table());
  return out;
}

std::vector<std::string> compiled_target_names() {
  std::vector<std::string> out;
  for (const Candidate& c : candidates()) out.emplace_back(c.name);
  return out;
}

const KernelTable& active_target() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  return t ? *t : *supported_targets().front();
}

void set_active_target(const std::string& name) {
  for (const Candidate& c : candidates()) {
    if (name != c.name) continue;
    if (!c.runnable())
      throw std::invalid_argument("SIMD target '" + name + "' is compiled in but this CPU cannot run it; supported: " +
                                  supported_list());
    g_active.store(&c.table(), std::memory_order_release);
    return;
  }
  throw std::invalid_argument("unknown SIMD target '" + name + "'; supported: " + supported_list());
}

void init_active_target() {
  const char* forced = std::getenv("FASTACT_SIMD");
  if (forced && *forced) {
    try {
      set_active_target(forced);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("FASTACT_SIMD: ") + e.what());
    }
    return;
  }
  g_active.store(supported_targets().front(), std::memory_order_release);
}

}  // namespace fastact
