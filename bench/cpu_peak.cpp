// cpu_peak: measure the achievable single-precision FMA throughput and the
// memory copy bandwidth of this machine, to put the engine's GFLOP/s in context.
//
//   cpu_peak [--json] [--seconds S] [--threads N] [--buffer-mb M] [--flops-per-cycle F]
//
// Figures:
//   * FMA peak on 1 thread and on N threads (default: all hardware threads): a loop
//     of independent 8-wide FMAs on 12 accumulators (enough to cover 2 FMA pipes with
//     a 4-5 cycle latency), 2 FLOP per lane per FMA.
//   * Theoretical peak from the nominal clock in /proc/cpuinfo ("cpu MHz") times the
//     assumed FLOP/cycle/core (32 = 2 pipes x 8 lanes x 2 for AVX2 with FMA) times the
//     number of physical cores.
//   * memcpy bandwidth on a buffer of M MiB (default 256), 1 thread and N threads
//     (each thread copies its own slice). Reported as bytes copied per second; the
//     memory traffic is at least twice that (read + write).
//
//   * The same with AVX-512 (16-wide FMAs) where the CPU has it: the avx512 kernel set's peak.
//   * Per core, in CPU time (bench/fma_peak.hpp) for each kernel set: FLOP per second of the
//     thread's own CPU time, which a machine shared with other work does not lower (wall-clock
//     rates fall with every time slice another process takes). bench_cpu_engine's %peak is
//     against this figure for the set in use.
//
// Human-readable lines go to stdout, or to stderr with --json (then stdout carries a
// single JSON object). Build: g++ -O2 -mavx2 -mfma -std=c++17 -pthread cpu_peak.cpp

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fma_peak.hpp"

#if defined(__AVX__) && defined(__FMA__)
#include <immintrin.h>
#define CPU_PEAK_HAVE_FMA256 1
#else
#define CPU_PEAK_HAVE_FMA256 0
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

volatile float g_sink = 0.0f;  // keeps the FMA results alive

constexpr int kAccumulators = 12;
constexpr int kLanes = 8;
constexpr double kFlopsPerIteration = 2.0 * kLanes * kAccumulators;  // FMA = 2 FLOP

#if CPU_PEAK_HAVE_FMA256
const char* kKernelName = "avx2-fma 256-bit, 12 accumulators";

// acc = acc * m + c on 12 independent registers; converges (m < 1), so no overflow
// and no denormals however long it runs.
float fma_kernel(std::uint64_t iterations, float seed) {
    const __m256 m = _mm256_set1_ps(0.999999f);
    const __m256 c = _mm256_set1_ps(1e-6f);
    __m256 a0 = _mm256_set1_ps(seed + 0.0f), a1 = _mm256_set1_ps(seed + 0.1f);
    __m256 a2 = _mm256_set1_ps(seed + 0.2f), a3 = _mm256_set1_ps(seed + 0.3f);
    __m256 a4 = _mm256_set1_ps(seed + 0.4f), a5 = _mm256_set1_ps(seed + 0.5f);
    __m256 a6 = _mm256_set1_ps(seed + 0.6f), a7 = _mm256_set1_ps(seed + 0.7f);
    __m256 a8 = _mm256_set1_ps(seed + 0.8f), a9 = _mm256_set1_ps(seed + 0.9f);
    __m256 a10 = _mm256_set1_ps(seed + 1.0f), a11 = _mm256_set1_ps(seed + 1.1f);
    for (std::uint64_t i = 0; i < iterations; ++i) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    alignas(32) float lanes[kLanes];
    _mm256_store_ps(lanes, s);
    float total = 0.0f;
    for (float v : lanes) total += v;
    return total;
}
#else
const char* kKernelName = "generic vector extension (no AVX+FMA at compile time: mul+add)";

typedef float v8f __attribute__((vector_size(32)));

float fma_kernel(std::uint64_t iterations, float seed) {
    const v8f m = {0.999999f, 0.999999f, 0.999999f, 0.999999f,
                   0.999999f, 0.999999f, 0.999999f, 0.999999f};
    const v8f c = {1e-6f, 1e-6f, 1e-6f, 1e-6f, 1e-6f, 1e-6f, 1e-6f, 1e-6f};
    v8f a[kAccumulators];
    for (int k = 0; k < kAccumulators; ++k)
        for (int l = 0; l < kLanes; ++l) a[k][l] = seed + 0.1f * static_cast<float>(k);
    for (std::uint64_t i = 0; i < iterations; ++i)
        for (int k = 0; k < kAccumulators; ++k) a[k] = a[k] * m + c;
    float total = 0.0f;
    for (int k = 0; k < kAccumulators; ++k)
        for (int l = 0; l < kLanes; ++l) total += a[k][l];
    return total;
}
#endif

// Runs `fn(thread_index)` on n threads that start together; returns the wall time
// from the common start to the last thread's finish.
template <class Fn>
double run_parallel(int n, Fn fn) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        pool.emplace_back([&, i] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            fn(i);
        });
    }
    while (ready.load() < n) std::this_thread::yield();
    const auto t0 = Clock::now();
    go.store(true, std::memory_order_release);
    for (auto& t : pool) t.join();
    return seconds_since(t0);
}

// Best-of-`reps` FMA throughput in GFLOP/s on `threads` threads, each running
// `iterations` loop iterations.
double measure_fma(int threads, std::uint64_t iterations, int reps) {
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        std::vector<float> results(static_cast<std::size_t>(threads), 0.0f);
        const double secs = run_parallel(threads, [&](int i) {
            results[static_cast<std::size_t>(i)] =
                fma_kernel(iterations, 0.5f + 0.01f * static_cast<float>(i));
        });
        float s = 0.0f;
        for (float v : results) s += v;
        g_sink = g_sink + s;
        const double gflops = kFlopsPerIteration * static_cast<double>(iterations) *
                              static_cast<double>(threads) / secs / 1e9;
        best = std::max(best, gflops);
    }
    return best;
}

// The AVX-512 peak on `threads` threads, wall clock, best of `reps` (0 without AVX-512).
double measure_fma512(int threads, double target_seconds, int reps) {
#if defined(__x86_64__) || defined(__i386__)
    if (!__builtin_cpu_supports("avx512f")) return 0.0;
    std::uint64_t it = 1u << 16;
    for (;;) {  // calibrate on one thread
        const auto t0 = Clock::now();
        g_sink = g_sink + fma_peak::run512(it);
        const double s = seconds_since(t0);
        if (s > 0.05) {
            it = std::max<std::uint64_t>(it, static_cast<std::uint64_t>(it * target_seconds / s));
            break;
        }
        it *= 4;
    }
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const double secs = run_parallel(threads, [&](int) { g_sink = g_sink + fma_peak::run512(it); });
        best = std::max(best, 2.0 * 16 * fma_peak::kChains * double(it) * threads / secs / 1e9);
    }
    return best;
#else
    (void)threads, (void)target_seconds, (void)reps;
    return 0.0;
#endif
}

// Iteration count that keeps one single-thread FMA run near `target_seconds`.
std::uint64_t calibrate_fma(double target_seconds) {
    std::uint64_t it = 1u << 16;
    for (;;) {
        const auto t0 = Clock::now();
        g_sink = g_sink + fma_kernel(it, 0.5f);
        const double s = seconds_since(t0);
        if (s > 0.05 || it > (1ull << 40)) {
            const double scaled = static_cast<double>(it) * target_seconds / std::max(s, 1e-9);
            return std::max<std::uint64_t>(1u << 16, static_cast<std::uint64_t>(scaled));
        }
        it *= 4;
    }
}

// Best-of-`reps` memcpy bandwidth (bytes copied per second, in GB/s = 1e9 B/s) of a
// `bytes` buffer split evenly over `threads` threads.
double measure_memcpy(char* dst, const char* src, std::size_t bytes, int threads, int reps) {
    double best = 0.0;
    const std::size_t slice = (bytes / static_cast<std::size_t>(threads)) & ~std::size_t(63);
    for (int r = 0; r < reps; ++r) {
        const double secs = run_parallel(threads, [&](int i) {
            const std::size_t begin = slice * static_cast<std::size_t>(i);
            const std::size_t len = (i == threads - 1) ? bytes - begin : slice;
            std::memcpy(dst + begin, src + begin, len);
        });
        g_sink = g_sink + static_cast<float>(dst[bytes / 2]);
        best = std::max(best, static_cast<double>(bytes) / secs / 1e9);
    }
    return best;
}

// Nominal clock from /proc/cpuinfo ("cpu MHz" of the first processor), 0 if unreadable.
double read_cpu_mhz() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("cpu MHz", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return std::atof(line.c_str() + colon + 1);
        }
    }
    return 0.0;
}

std::string read_model_name() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                std::string s = line.substr(colon + 1);
                s.erase(0, s.find_first_not_of(" \t"));
                return s;
            }
        }
    }
    return "unknown";
}

// Physical cores: distinct (physical id, core id) pairs; 0 if /proc/cpuinfo lacks them.
int count_physical_cores() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    std::set<std::pair<int, int>> cores;
    int phys = 0;
    bool have_core = false;
    while (std::getline(f, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const int value = std::atoi(line.c_str() + colon + 1);
        if (line.rfind("physical id", 0) == 0) phys = value;
        if (line.rfind("core id", 0) == 0) {
            cores.insert({phys, value});
            have_core = true;
        }
    }
    return have_core ? static_cast<int>(cores.size()) : 0;
}

std::string json_escape(const std::string& s) {
    std::string out;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            out += ' ';
        } else {
            out += ch;
        }
    }
    return out;
}

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--json] [--seconds S] [--threads N] [--buffer-mb M] "
                 "[--flops-per-cycle F]\n"
                 "  --seconds S          target duration of one FMA measurement (default 0.3)\n"
                 "  --threads N          threads for the all-threads figures (default: all)\n"
                 "  --buffer-mb M        memcpy buffer size in MiB (default 256)\n"
                 "  --flops-per-cycle F  FP32 FLOP/cycle/core for the theoretical figure "
                 "(default 32: AVX2, 2 FMA pipes)\n",
                 argv0);
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    double target_seconds = 0.3;
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
    std::size_t buffer_mb = 256;
    double flops_per_cycle = 32.0;

    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage(argv[0]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--json") {
            json = true;
        } else if (a == "--seconds") {
            target_seconds = std::atof(next());
        } else if (a == "--threads") {
            threads = std::max(1, std::atoi(next()));
        } else if (a == "--buffer-mb") {
            buffer_mb = static_cast<std::size_t>(std::max(1, std::atoi(next())));
        } else if (a == "--flops-per-cycle") {
            flops_per_cycle = std::atof(next());
        } else if (a == "-h" || a == "--help") {
            usage(argv[0]);
            return 0;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (target_seconds <= 0.0) target_seconds = 0.3;

    FILE* human = json ? stderr : stdout;
    const int hw_threads = static_cast<int>(std::thread::hardware_concurrency());
    int phys_cores = count_physical_cores();
    if (phys_cores <= 0) phys_cores = std::max(1, hw_threads);
    const std::string model = read_model_name();
    const double mhz = read_cpu_mhz();

    // FMA peak.
    const std::uint64_t iterations = calibrate_fma(target_seconds);
    const double fma1 = measure_fma(1, iterations, 5);
    const double fmaN = measure_fma(threads, iterations, 5);
    const double implied_ghz = fma1 / (flops_per_cycle > 0 ? flops_per_cycle : 32.0);
    const double theo_core = mhz > 0 ? mhz * 1e-3 * flops_per_cycle : 0.0;
    const double theo_all = theo_core * phys_cores;

    std::fprintf(human, "cpu: %s, %d hardware threads, %d physical cores, kernel: %s\n",
                 model.c_str(), hw_threads, phys_cores, kKernelName);
    std::fprintf(human, "fp32 FMA peak, 1 thread:            %8.1f GFLOP/s\n", fma1);
    std::fprintf(human, "fp32 FMA peak, %2d threads:           %8.1f GFLOP/s\n", threads, fmaN);
    if (mhz > 0) {
        std::fprintf(human,
                     "theoretical fp32 peak (%.0f MHz x %.0f FLOP/cycle x 1 core):   %8.1f GFLOP/s\n",
                     mhz, flops_per_cycle, theo_core);
        std::fprintf(human,
                     "theoretical fp32 peak (%.0f MHz x %.0f FLOP/cycle x %d cores):  %8.1f GFLOP/s\n",
                     mhz, flops_per_cycle, phys_cores, theo_all);
    } else {
        std::fprintf(human, "theoretical fp32 peak: n/a (no \"cpu MHz\" in /proc/cpuinfo)\n");
    }
    std::fprintf(human, "clock implied by 1-thread FMA rate at %.0f FLOP/cycle: %.2f GHz%s\n",
                 flops_per_cycle, implied_ghz,
                 (mhz > 0 && implied_ghz * 1e3 > mhz * 1.02)
                     ? " (above the nominal clock: turbo/boost; use the measured peak)"
                     : "");
    const double fma512_1 = measure_fma512(1, target_seconds, 5);
    const double fma512_N = measure_fma512(threads, target_seconds, 5);
    if (fma512_1 > 0) {
        std::fprintf(human, "fp32 FMA peak, AVX-512, 1 thread:   %8.1f GFLOP/s\n", fma512_1);
        std::fprintf(human, "fp32 FMA peak, AVX-512, %2d threads:  %8.1f GFLOP/s\n", threads, fma512_N);
    }
    const double core_baseline = fma_peak::gflops_per_core("baseline");
    const double core_avx2 = fma_peak::gflops_per_core("avx2");
    const double core_avx512 = fma_peak::gflops_per_core("avx512");
    std::fprintf(human, "fp32 peak per core, CPU time: baseline %.1f, avx2 %.1f, avx512 %.1f GFLOP/s\n",
                 core_baseline, core_avx2, core_avx512);
    std::fflush(human);

    // memcpy bandwidth.
    const std::size_t bytes = buffer_mb << 20;
    std::vector<char> src(bytes), dst(bytes);  // value-initialised: pages are touched
    for (std::size_t i = 0; i < bytes; i += 4096) src[i] = static_cast<char>(i >> 12);
    const double copy1 = measure_memcpy(dst.data(), src.data(), bytes, 1, 5);
    const double copyN = measure_memcpy(dst.data(), src.data(), bytes, threads, 5);
    std::fprintf(human,
                 "memcpy %zu MiB, 1 thread:          %8.1f GB/s copied (%.1f GB/s read+write)\n",
                 buffer_mb, copy1, 2 * copy1);
    std::fprintf(human,
                 "memcpy %zu MiB, %2d threads:         %8.1f GB/s copied (%.1f GB/s read+write)\n",
                 buffer_mb, threads, copyN, 2 * copyN);
    std::fflush(human);

    if (json) {
        std::ostringstream o;
        o.precision(6);
        o << "{\n"
          << "  \"cpu_model\": \"" << json_escape(model) << "\",\n"
          << "  \"hardware_threads\": " << hw_threads << ",\n"
          << "  \"physical_cores\": " << phys_cores << ",\n"
          << "  \"threads\": " << threads << ",\n"
          << "  \"fma_kernel\": \"" << json_escape(kKernelName) << "\",\n"
          << "  \"fma_gflops_1thread\": " << fma1 << ",\n"
          << "  \"fma_gflops_all_threads\": " << fmaN << ",\n"
          << "  \"fma512_gflops_1thread\": " << fma512_1 << ",\n"
          << "  \"fma512_gflops_all_threads\": " << fma512_N << ",\n"
          << "  \"core_gflops_cpu_time\": {\"baseline\": " << core_baseline << ", \"avx2\": "
          << core_avx2 << ", \"avx512\": " << core_avx512 << "},\n"
          << "  \"nominal_mhz\": " << mhz << ",\n"
          << "  \"flops_per_cycle_assumed\": " << flops_per_cycle << ",\n"
          << "  \"theoretical_gflops_1core\": " << theo_core << ",\n"
          << "  \"theoretical_gflops_all_cores\": " << theo_all << ",\n"
          << "  \"implied_ghz_1thread\": " << implied_ghz << ",\n"
          << "  \"memcpy_buffer_mib\": " << buffer_mb << ",\n"
          << "  \"memcpy_gbps_1thread\": " << copy1 << ",\n"
          << "  \"memcpy_gbps_all_threads\": " << copyN << "\n"
          << "}\n";
        std::fputs(o.str().c_str(), stdout);
    }
    return 0;
}
