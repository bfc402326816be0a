// The device engine's two library calls, behind one small interface per backend: a batched real FFT (cuFFT on
// CUDA, FFTW float32 plans on the host) and a row-major SGEMM (cuBLAS on CUDA, cblas on the host). Pointers are
// in the backend's device memory (host memory for the host backend). No CUDA header here.
#pragma once

#include <cstdint>

namespace songlines::features::device_engine {

/// frames [n_frames, n_fft] -> spectra [n_frames, n_fft/2+1] complex, interleaved (re, im), in float32 or in
/// float64 (the reference's precision: ChainConstants::fft_float64).
class BatchedRealFft {
 public:
  virtual ~BatchedRealFft() = default;
  virtual void forward(const float* frames, float* spectra, int64_t n_frames) = 0;
  virtual void forward(const double* frames, double* spectra, int64_t n_frames) = 0;
};

/// c[m, n] = a[m, k] @ b[n, k]^T, all row-major float32, no TF32 or other reduced precision.
class RowMajorGemm {
 public:
  virtual ~RowMajorGemm() = default;
  virtual void abt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) = 0;
};

}  // namespace songlines::features::device_engine
