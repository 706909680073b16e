// OpenMP work splitting with a grain size, the thread-count setting, and fork safety.
#pragma once
#include <cstddef>

namespace fastact {

// Grain sizes in elements: a call is split only into chunks at least this large, because
// waking the team costs more than smaller chunks save. Measured on a 2-core Zen 3 with
// bench/grain.py (speed-up of 2 threads over 1, float32): relu 1.00 at 64K (one chunk), 2.09 at
// 128K; sigmoid/tanh 1.00 at 16K, 1.80 at 32K; softmax rows 1.95 from 128K.
inline constexpr std::size_t kGrainMemoryBound = std::size_t{1} << 16;  // relu, leaky, backward
inline constexpr std::size_t kGrainCompute = std::size_t{1} << 14;      // sigmoid, tanh, softmax

int max_threads();          // the user's setting (set_num_threads / environment)
void set_max_threads(int n);  // n >= 1
bool openmp_enabled();

// Splits [0, n) into at most max_threads() contiguous chunks of at least `grain` items and
// calls body(begin, end) once per chunk, in parallel. Chunk boundaries are multiples of
// `align`. Runs serially when one chunk suffices, inside another parallel region, or in a
// child process forked after OpenMP started (GNU OpenMP's pool does not survive fork).
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, std::size_t align, Body&& body);

namespace detail {
int team_size(std::size_t n, std::size_t grain);
}

}  // namespace fastact

#ifdef _OPENMP
#include <omp.h>
#endif

template <class Body>
void fastact::parallel_for(std::size_t n, std::size_t grain, std::size_t align, Body&& body) {
  const int team = detail::team_size(n, grain);
  if (team <= 1) {
    if (n) body(std::size_t{0}, n);
    return;
  }
#ifdef _OPENMP
  const std::size_t per = ((n + team - 1) / team + align - 1) / align * align;
#pragma omp parallel num_threads(team)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t begin = t * per;
    const std::size_t end = begin + per < n ? begin + per : n;
    if (begin < end) body(begin, end);
  }
#else
  body(std::size_t{0}, n);
#endif
}
