// The device engine's host backend: mel_chain.inl compiled by the host compiler on Thrust's OpenMP backend, with
// FFTW float32 plans for the FFT and cblas (OpenBLAS at run time) for the GEMMs. Always built; it is how every
// line of the device logic runs in CI (docs/cuda.md, "Two backends").
//
// Compiled with -fopenmp, THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP and THRUST_CUB_WRAPPED_NAMESPACE (Thrust
// in a namespace of its own, so that a binary holding the CUDA backend too never sees two definitions of one
// Thrust entity): see src/CMakeLists.txt.
#if !defined(THRUST_DEVICE_SYSTEM) || !defined(THRUST_CUB_WRAPPED_NAMESPACE)
#error "host_backend.cpp needs THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP and THRUST_CUB_WRAPPED_NAMESPACE"
#endif

#define SONGLINES_DEVICE_BACKEND_NS host
#include "features/device_engine/mel_chain.inl"

#include <cblas.h>
#include <fftw3.h>

#include <array>
#include <climits>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"
#include "features/fftw_planner.h"

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP, "the host backend runs on Thrust's OpenMP system");

namespace songlines::features::device_engine {
namespace {

/// FFTW's float32 (fftwf_) and float64 (fftw_) entry points under one name.
template <class Real>
struct Fftw;
template <>
struct Fftw<float> {
  using Plan = fftwf_plan;
  using Complex = fftwf_complex;
  static constexpr const char* kName = "float32";
  static Plan plan_many(int n, int howmany, float* in, Complex* out) {
    return fftwf_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, kFftwPlannerFlags);
  }
  static void execute(Plan p, float* in, Complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void destroy(Plan p) { fftwf_destroy_plan(p); }
  static int alignment(float* p) { return fftwf_alignment_of(p); }
};
template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  using Complex = fftw_complex;
  static constexpr const char* kName = "float64";
  static Plan plan_many(int n, int howmany, double* in, Complex* out) {
    return fftw_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, kFftwPlannerFlags);
  }
  static void execute(Plan p, double* in, Complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
  static int alignment(double* p) { return fftw_alignment_of(p); }
};

/// FFTW r2c in precision Real over chunks of kChunkFrames frames, the chunks in parallel (execute on new arrays is
/// thread-safe). Rows are n_fft reals in and n_fft/2+1 complex out, so every chunk start is congruent to the
/// buffer's start modulo 64 bytes when kChunkFrames is a multiple of 8: one plan per (chunk size, input and
/// output alignment) serves every chunk, with FFTW's SIMD codelets (an FFTW_UNALIGNED plan per frame ran about 3x
/// slower). Plans are made with kFftwPlannerFlags (FFTW_ESTIMATE, which never touches the arrays) on the actual
/// buffers, under the process-wide planner mutex.
template <class Real>
class FftwChunkedR2C {
 public:
  static constexpr int64_t kChunkFrames = 32;
  using F = Fftw<Real>;

  explicit FftwChunkedR2C(int64_t n_fft) : n_fft_(n_fft) {}
  ~FftwChunkedR2C() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    for (auto& [key, plan] : plans_) F::destroy(plan);
  }
  FftwChunkedR2C(const FftwChunkedR2C&) = delete;
  FftwChunkedR2C& operator=(const FftwChunkedR2C&) = delete;

  void forward(const Real* frames, Real* spectra, int64_t n_frames) {
    if (n_frames <= 0) return;
    const int64_t n_bins = n_fft_ / 2 + 1;
    Real* in = const_cast<Real*>(frames);  // r2c out of place leaves its input untouched
    auto* out = reinterpret_cast<typename F::Complex*>(spectra);
    const int64_t full = n_frames / kChunkFrames, rest = n_frames - full * kChunkFrames;
    const typename F::Plan full_plan = full > 0 ? plan(kChunkFrames, in, out) : nullptr;
    const typename F::Plan rest_plan =
        rest > 0 ? plan(rest, in + full * kChunkFrames * n_fft_, out + full * kChunkFrames * n_bins) : nullptr;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < full; ++c) F::execute(full_plan, in + c * kChunkFrames * n_fft_, out + c * kChunkFrames * n_bins);
    if (rest_plan) F::execute(rest_plan, in + full * kChunkFrames * n_fft_, out + full * kChunkFrames * n_bins);
  }

 private:
  typename F::Plan plan(int64_t howmany, Real* in, typename F::Complex* out) {
    const std::array<int64_t, 3> key = {howmany, F::alignment(in), F::alignment(reinterpret_cast<Real*>(out))};
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    typename F::Plan p = F::plan_many(static_cast<int>(n_fft_), static_cast<int>(howmany), in, out);
    if (p == nullptr)
      throw Error("FFTW could not plan " + std::to_string(howmany) + " " + F::kName + " real FFTs of size " +
                  std::to_string(n_fft_));
    plans_.emplace(key, p);
    return p;
  }

  int64_t n_fft_;
  std::map<std::array<int64_t, 3>, typename F::Plan> plans_;  // (howmany, input alignment, output alignment) -> plan
};

class FftwFft final : public BatchedRealFft {
 public:
  explicit FftwFft(int64_t n_fft) : f32_(n_fft), f64_(n_fft) {}
  void forward(const float* frames, float* spectra, int64_t n_frames) override { f32_.forward(frames, spectra, n_frames); }
  void forward(const double* frames, double* spectra, int64_t n_frames) override {
    f64_.forward(frames, spectra, n_frames);
  }

 private:
  FftwChunkedR2C<float> f32_;
  FftwChunkedR2C<double> f64_;
};

int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw Error(std::string("host backend: GEMM ") + what + " = " + std::to_string(v) +
                " does not fit cblas's int; lower max_batch_frames");
  return static_cast<int>(v);
}

class CblasGemm final : public RowMajorGemm {
 public:
  void abt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) override {
    if (m == 0) return;
    const int M = blas_int(m, "rows"), N = blas_int(n, "columns"), K = blas_int(k, "depth");
    blas_int(m * k, "rows x depth");  // OpenBLAS's offsets are int too
    blas_int(m * n, "rows x columns");
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
  }
};

}  // namespace

std::unique_ptr<Chain> make_host_chain(const ChainConstants& constants, std::unique_ptr<CopyQueue> copies) {
  if (!copies) copies = std::make_unique<HostCopyQueue>();  // ordinary buffers, copies done at once
  return std::make_unique<host::MelChain>(
      constants, [](int64_t n_fft) -> std::unique_ptr<BatchedRealFft> { return std::make_unique<FftwFft>(n_fft); },
      std::make_unique<CblasGemm>(), std::move(copies));
}

}  // namespace songlines::features::device_engine
