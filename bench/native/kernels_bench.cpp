// Native benchmark of the SIMD kernels, no Python in the loop: every kernel of the KernelTable,
// float32 and float64, on every target compiled in and runnable on this CPU, one thread, on
// sizes from L1 to DRAM. Google Benchmark reports items_per_second (elements: 1 G/s = 1 element
// per ns) and bytes_per_second.
//
//   fastact_kernels_bench [--fastact_max_elements=N] [--fastact_targets=a,b] [--fastact_dtypes=float32]
//                         [Google Benchmark flags, e.g. --benchmark_filter=REGEX --benchmark_min_time=0.1]
//
// Names are <dtype>/<kernel>/<target>/<elements>, ordered by size so one size's rows sit together.
// Sizes: 1K, 16K, 256K, 4M, 64M elements (FASTACT_BENCH_MAX_ELEMENTS or --fastact_max_elements
// lowers the top, e.g. 256K for a quick run; K/M suffixes accepted).
// Bytes are the logical traffic: every input read once plus the output written once, i.e. what
// a plain copy moving the same data moves (softmax's extra passes over a cached row not counted).
// The baseline/ rows are that copy (memcpy, one input) and c = a + b (two inputs), for the
// memory-speed comparison of DESIGN.md §3.
// Softmax kernels: rows of 1024 elements (rows kernels); 256 columns reduced along n/256 rows
// (cols kernels, the column-block width ops.cpp uses).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels/kernel_table.h"

namespace {

using fastact::KernelSet;
using fastact::KernelTable;

constexpr std::size_t kSizes[] = {std::size_t{1} << 10, std::size_t{1} << 14, std::size_t{1} << 18,
                                  std::size_t{1} << 22, std::size_t{1} << 26};
constexpr std::size_t kRowLen = 1024;     // softmax rows kernels
constexpr std::size_t kColWidth = 256;    // softmax cols kernels: slices side by side
constexpr double kLeakySlope = 0.01;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Three 64-byte-aligned buffers of n elements, filled once per size and shared by every benchmark
// of that size (so a 64M-element run does not re-initialise 0.75 GB per benchmark).
template <class T>
struct Buffers {
  std::size_t n = 0;
  std::unique_ptr<T, FreeDeleter> a, b, out;

  static T* alloc(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p) {
      std::fprintf(stderr, "fastact_kernels_bench: out of memory for %zu elements\n", n);
      std::exit(1);
    }
    return p;
  }
  void ensure(std::size_t size) {
    if (n == size) return;
    a.reset();
    b.reset();
    out.reset();
    a.reset(alloc(size));
    b.reset(alloc(size));
    out.reset(alloc(size));
    // a: activations in [-10, 10); b: values in (0, 1) (probabilities, sigmoid outputs).
    for (std::size_t i = 0; i < size; ++i) {
      const std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u;
      a.get()[i] = static_cast<T>((h >> 8) * (20.0 / 16777216.0) - 10.0);
      b.get()[i] = static_cast<T>(((h >> 12) + 0.5) * (1.0 / 1048576.0));
      out.get()[i] = T(0);
    }
    n = size;
  }
  void release() {
    a.reset();
    b.reset();
    out.reset();
    n = 0;
  }
};

template <class T>
Buffers<T>& buffers() {
  static Buffers<T> b;
  return b;
}

// The buffers of n elements of T, the other dtype's released (at most one set lives at a time).
template <class T>
Buffers<T>& prepare(std::size_t n) {
  if constexpr (sizeof(T) == sizeof(float)) {
    buffers<double>().release();
  } else {
    buffers<float>().release();
  }
  Buffers<T>& m = buffers<T>();
  m.ensure(n);
  return m;
}

enum class Shape { unary, binary, rows, cols };

template <class T>
struct Kernel {
  const char* name;
  Shape shape;
  int inputs;  // arrays read (for the byte count)
  void (*run)(const KernelSet<T>&, Buffers<T>&, std::size_t);
};

template <class T>
std::vector<Kernel<T>> kernels() {
  using K = const KernelSet<T>&;
  using B = Buffers<T>&;
  using S = std::size_t;
  return {
      {"relu", Shape::unary, 1, [](K k, B m, S n) { k.relu(m.a.get(), m.out.get(), n); }},
      {"leaky_relu", Shape::unary, 1,
       [](K k, B m, S n) { k.leaky_relu(m.a.get(), m.out.get(), n, static_cast<T>(kLeakySlope)); }},
      {"sigmoid", Shape::unary, 1, [](K k, B m, S n) { k.sigmoid(m.a.get(), m.out.get(), n); }},
      {"tanh", Shape::unary, 1, [](K k, B m, S n) { k.tanh(m.a.get(), m.out.get(), n); }},
      {"relu_backward", Shape::binary, 2,
       [](K k, B m, S n) { k.relu_backward(m.a.get(), m.b.get(), m.out.get(), n); }},
      {"leaky_relu_backward", Shape::binary, 2,
       [](K k, B m, S n) {
         k.leaky_relu_backward(m.b.get(), m.a.get(), m.out.get(), n, static_cast<T>(kLeakySlope));
       }},
      {"sigmoid_backward", Shape::binary, 2,
       [](K k, B m, S n) { k.sigmoid_backward(m.a.get(), m.b.get(), m.out.get(), n); }},
      {"tanh_backward", Shape::binary, 2,
       [](K k, B m, S n) { k.tanh_backward(m.a.get(), m.b.get(), m.out.get(), n); }},
      {"softmax_rows", Shape::rows, 1,
       [](K k, B m, S n) { k.softmax_rows(m.a.get(), m.out.get(), n / kRowLen, kRowLen); }},
      {"log_softmax_rows", Shape::rows, 1,
       [](K k, B m, S n) { k.log_softmax_rows(m.a.get(), m.out.get(), n / kRowLen, kRowLen); }},
      {"softmax_cols", Shape::cols, 1,
       [](K k, B m, S n) { k.softmax_cols(m.a.get(), m.out.get(), n / kColWidth, kColWidth, kColWidth); }},
      {"log_softmax_cols", Shape::cols, 1,
       [](K k, B m, S n) { k.log_softmax_cols(m.a.get(), m.out.get(), n / kColWidth, kColWidth, kColWidth); }},
      {"softmax_backward_rows", Shape::rows, 2,
       [](K k, B m, S n) { k.softmax_backward_rows(m.a.get(), m.b.get(), m.out.get(), n / kRowLen, kRowLen); }},
      {"log_softmax_backward_rows", Shape::rows, 2,
       [](K k, B m, S n) {
         k.log_softmax_backward_rows(m.a.get(), m.b.get(), m.out.get(), n / kRowLen, kRowLen);
       }},
      {"softmax_backward_cols", Shape::cols, 2,
       [](K k, B m, S n) {
         k.softmax_backward_cols(m.a.get(), m.b.get(), m.out.get(), n / kColWidth, kColWidth, kColWidth);
       }},
      {"log_softmax_backward_cols", Shape::cols, 2,
       [](K k, B m, S n) {
         k.log_softmax_backward_cols(m.a.get(), m.b.get(), m.out.get(), n / kColWidth, kColWidth, kColWidth);
       }},
  };
}

// The memory-speed references: a copy (one input) and c = a + b (two inputs).
template <class T>
void copy_baseline(Buffers<T>& m, std::size_t n) {
  std::memcpy(m.out.get(), m.a.get(), n * sizeof(T));
}
template <class T>
void add_baseline(Buffers<T>& m, std::size_t n) {
  const T* __restrict a = m.a.get();
  const T* __restrict b = m.b.get();
  T* __restrict c = m.out.get();
  for (std::size_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
}

void set_counters(benchmark::State& state, std::size_t n, std::size_t bytes_per_call) {
  const auto iters = static_cast<std::int64_t>(state.iterations());
  state.SetItemsProcessed(iters * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(iters * static_cast<std::int64_t>(bytes_per_call));
}

template <class T>
void register_size(const std::vector<const KernelTable*>& targets, std::size_t n, const char* dtype) {
  const std::string size = std::to_string(n);
  auto name = [&](const char* kernel, const char* target) {
    return std::string(dtype) + "/" + kernel + "/" + target + "/" + size;
  };
  const std::size_t bytes1 = 2 * n * sizeof(T), bytes2 = 3 * n * sizeof(T);
  benchmark::RegisterBenchmark(name("copy", "baseline").c_str(), [n, bytes1](benchmark::State& state) {
    Buffers<T>& m = prepare<T>(n);
    for (auto _ : state) {
      copy_baseline(m, n);
      benchmark::ClobberMemory();
    }
    set_counters(state, n, bytes1);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(name("add", "baseline").c_str(), [n, bytes2](benchmark::State& state) {
    Buffers<T>& m = prepare<T>(n);
    for (auto _ : state) {
      add_baseline(m, n);
      benchmark::ClobberMemory();
    }
    set_counters(state, n, bytes2);
  })->Unit(benchmark::kMicrosecond);
  for (const Kernel<T>& kernel : kernels<T>()) {
    if (kernel.shape == Shape::rows && n < kRowLen) continue;
    if (kernel.shape == Shape::cols && n < kColWidth) continue;
    for (const KernelTable* t : targets) {
      const std::size_t bytes = static_cast<std::size_t>(kernel.inputs + 1) * n * sizeof(T);
      auto run = kernel.run;
      benchmark::RegisterBenchmark(name(kernel.name, t->name).c_str(), [t, n, bytes, run](benchmark::State& state) {
        Buffers<T>& m = prepare<T>(n);
        const KernelSet<T>& k = t->get<T>();
        for (auto _ : state) {
          run(k, m, n);
          benchmark::ClobberMemory();
        }
        set_counters(state, n, bytes);
      })->Unit(benchmark::kMicrosecond);
    }
  }
}

// "262144", "256K", "64M" -> elements; 0 on a bad value.
std::size_t parse_size(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return 0;
  const std::string suffix = end;
  if (suffix.empty()) return v;
  if (suffix == "K" || suffix == "k") return v << 10;
  if (suffix == "M" || suffix == "m") return v << 20;
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    const std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

int main(int argc, char** argv) {
  std::size_t max_elements = kSizes[sizeof kSizes / sizeof kSizes[0] - 1];
  std::vector<std::string> want_targets, want_dtypes = {"float32", "float64"};
  if (const char* env = std::getenv("FASTACT_BENCH_MAX_ELEMENTS")) max_elements = parse_size(env);
  if (const char* env = std::getenv("FASTACT_BENCH_TARGETS")) want_targets = split(env);

  // Our flags first; the rest go to Google Benchmark.
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (starts_with(a, "--fastact_max_elements=")) {
      max_elements = parse_size(a.substr(23));
    } else if (starts_with(a, "--fastact_targets=")) {
      want_targets = split(a.substr(18));
    } else if (starts_with(a, "--fastact_dtypes=")) {
      want_dtypes = split(a.substr(17));
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (max_elements == 0) {
    std::fprintf(stderr, "fastact_kernels_bench: bad maximum size (use e.g. 262144, 256K or 4M)\n");
    return 2;
  }

  const std::vector<const KernelTable*> runnable = fastact::supported_targets();
  std::vector<const KernelTable*> targets;
  std::string runnable_names;
  for (const KernelTable* t : runnable) runnable_names += std::string(runnable_names.empty() ? "" : ",") + t->name;
  if (want_targets.empty()) {
    targets = runnable;
  } else {
    for (const std::string& w : want_targets) {
      const KernelTable* found = nullptr;
      for (const KernelTable* t : runnable)
        if (w == t->name) found = t;
      if (!found) {
        std::fprintf(stderr, "fastact_kernels_bench: target '%s' is not runnable here; runnable: %s\n", w.c_str(),
                     runnable_names.c_str());
        return 2;
      }
      targets.push_back(found);
    }
  }
  for (const std::string& d : want_dtypes) {
    if (d != "float32" && d != "float64") {
      std::fprintf(stderr, "fastact_kernels_bench: unknown dtype '%s' (float32, float64)\n", d.c_str());
      return 2;
    }
  }
  const bool f32 = std::find(want_dtypes.begin(), want_dtypes.end(), "float32") != want_dtypes.end();
  const bool f64 = std::find(want_dtypes.begin(), want_dtypes.end(), "float64") != want_dtypes.end();

  std::string compiled;
  for (const std::string& n : fastact::compiled_target_names()) compiled += (compiled.empty() ? "" : ",") + n;
  std::string chosen;
  for (const KernelTable* t : targets) chosen += std::string(chosen.empty() ? "" : ",") + t->name;
  benchmark::AddCustomContext("fastact_targets_compiled", compiled);
  benchmark::AddCustomContext("fastact_targets_runnable", runnable_names);
  benchmark::AddCustomContext("fastact_targets_benchmarked", chosen);
  benchmark::AddCustomContext("fastact_max_elements", std::to_string(max_elements));

  for (std::size_t n : kSizes) {
    if (n > max_elements) continue;
    if (f32) register_size<float>(targets, n, "float32");
    if (f64) register_size<double>(targets, n, "float64");
  }

  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
