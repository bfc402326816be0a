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

#include <climits>
#include <mutex>
#include <string>

#include "core/error.h"
#include "features/fftw_planner.h"

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP, "the host backend runs on Thrust's OpenMP system");

namespace songlines::features::device_engine {
namespace {

/// One FFTW float32 r2c plan of n_fft, executed on every frame in parallel (fftwf_execute_dft_r2c on new arrays
/// is thread-safe; FFTW_UNALIGNED lets it run on any frame's address with the same codelets, so a frame's
/// spectrum does not depend on where it sits in the batch).
class FftwFloatFft final : public BatchedRealFft {
 public:
  explicit FftwFloatFft(int64_t n_fft) : n_fft_(n_fft) {
    float* in = fftwf_alloc_real(static_cast<size_t>(n_fft));
    fftwf_complex* out = fftwf_alloc_complex(static_cast<size_t>(n_fft / 2 + 1));
    {
      std::lock_guard<std::mutex> lock(fftw_planner_mutex());
      plan_ = fftwf_plan_dft_r2c_1d(static_cast<int>(n_fft), in, out, kFftwPlannerFlags | FFTW_UNALIGNED);
    }
    fftwf_free(in);
    fftwf_free(out);
    if (plan_ == nullptr) throw Error("FFTW could not plan a float32 real FFT of size " + std::to_string(n_fft));
  }
  ~FftwFloatFft() override {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftwf_destroy_plan(plan_);
  }
  FftwFloatFft(const FftwFloatFft&) = delete;
  FftwFloatFft& operator=(const FftwFloatFft&) = delete;

  void forward(const float* frames, float* spectra, int64_t n_frames) override {
    const int64_t n_bins = n_fft_ / 2 + 1;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n_frames; ++f)  // r2c out of place leaves its input untouched
      fftwf_execute_dft_r2c(plan_, const_cast<float*>(frames + f * n_fft_),
                            reinterpret_cast<fftwf_complex*>(spectra + f * 2 * n_bins));
  }

 private:
  int64_t n_fft_;
  fftwf_plan plan_ = nullptr;
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

std::unique_ptr<Chain> make_host_chain(const ChainConstants& constants) {
  return std::make_unique<host::MelChain>(constants, std::make_unique<FftwFloatFft>(constants.n_fft),
                                          std::make_unique<CblasGemm>());
}

}  // namespace songlines::features::device_engine
