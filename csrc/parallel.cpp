#include "parallel.h"

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#define FASTACT_HAVE_ATFORK 1
#endif
#if defined(__linux__)
#include <sched.h>
#endif

namespace fastact {
namespace {

std::atomic<int> g_threads{0};
std::atomic<bool> g_forked_child{false};
std::atomic<bool> g_team_started{false};  // a parallel region has run in this process

int cpu_count() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

int env_threads(const char* name) {
  const char* s = std::getenv(name);
  if (!s || !*s) return 0;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  return (end != s && v >= 1 && v <= 1 << 16) ? static_cast<int>(v) : 0;
}

int default_threads() {
  if (int n = env_threads("FASTACT_NUM_THREADS")) return n;
  if (int n = env_threads("OMP_NUM_THREADS")) return n;
  return cpu_count();
}

#ifdef FASTACT_HAVE_ATFORK
// Only a child of a process whose OpenMP pool exists is affected.
void on_fork_child() {
  if (g_team_started.load()) g_forked_child.store(true);
}
struct AtForkRegistration {
  AtForkRegistration() { pthread_atfork(nullptr, nullptr, on_fork_child); }
} g_atfork;
#endif

}  // namespace

int max_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_max_threads(int n) { g_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

namespace detail {
int team_size(std::size_t n, std::size_t grain) {
#ifdef _OPENMP
  if (g_forked_child.load(std::memory_order_relaxed) || omp_in_parallel()) return 1;
  const std::size_t chunks = grain ? n / grain : n;
  const int want = max_threads();
  const int team = chunks < static_cast<std::size_t>(want) ? static_cast<int>(chunks ? chunks : 1) : want;
  if (team > 1) g_team_started.store(true, std::memory_order_relaxed);
  return team;
#else
  (void)n, (void)grain;
  return 1;
#endif
}
}  // namespace detail

}  // namespace fastact
