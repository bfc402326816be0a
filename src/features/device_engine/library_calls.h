// The device engine's two library calls, behind one small interface per backend: a batched real FFT (cuFFT on
// CUDA, FFTW float32 plans on the host) and a row-major SGEMM (cuBLAS on CUDA, cblas on the host). Pointers are
// in the backend's device memory (host memory for the host backend). No CUDA header here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace songlines::features::device_engine {

/// frames [n_frames, n_fft] float32 -> spectra [n_frames, n_fft/2+1] complex64, interleaved (re, im).
class BatchedRealFft {
 public:
  virtual ~BatchedRealFft() = default;
  virtual void forward(const float* frames, float* spectra, int64_t n_frames) = 0;
};

/// frames [n_frames, n_fft] float64 -> spectra [n_frames, n_fft/2+1] complex128, interleaved (re, im): the CQT's
/// frames, transformed in float64 as librosa does (a float32 FFT errs by up to 0.2 of a frame's in-band response
/// when most of its energy lies outside the CQT's range, docs/features-cqt.md).
class BatchedRealFft64 {
 public:
  virtual ~BatchedRealFft64() = default;
  virtual void forward(const double* frames, double* spectra, int64_t n_frames) = 0;
};
/// Makes the backend's BatchedRealFft64 of one size (the CQT's octaves may differ in n_fft).
using RealFft64Factory = std::function<std::unique_ptr<BatchedRealFft64>(int64_t n_fft)>;

/// c[m, n] = a[m, k] @ b[n, k]^T, all row-major float32, no TF32 or other reduced precision.
class RowMajorGemm {
 public:
  virtual ~RowMajorGemm() = default;
  virtual void abt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) = 0;
};

}  // namespace songlines::features::device_engine
