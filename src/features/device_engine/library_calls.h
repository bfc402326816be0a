// The device engine's two library calls, behind one small interface per backend: a batched real FFT (cuFFT on
// CUDA, FFTW plans on the host) and a row-major SGEMM (cuBLAS on CUDA, cblas on the host). Pointers are
// in the backend's device memory (host memory for the host backend). No CUDA header here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace songlines::features::device_engine {

/// frames [n_frames, n_fft] -> spectra [n_frames, n_fft/2+1] complex, interleaved (re, im), in float32 or in
/// float64. float64 where the reference transforms in float64 and rounds to complex64 afterwards (librosa's stft):
/// the STFT when spectral_contrast is requested (ChainConstants::fft_float64) and every CQT octave (a float32 FFT
/// errs by up to 0.2 of a frame's in-band response when most of its energy lies outside the CQT's range,
/// docs/features-cqt.md).
class BatchedRealFft {
 public:
  virtual ~BatchedRealFft() = default;
  virtual void forward(const float* frames, float* spectra, int64_t n_frames) = 0;
  virtual void forward(const double* frames, double* spectra, int64_t n_frames) = 0;
};
/// Makes the backend's BatchedRealFft of one size (the STFT's n_fft; the CQT's octaves may differ in n_fft).
using RealFftFactory = std::function<std::unique_ptr<BatchedRealFft>(int64_t n_fft)>;

/// c[m, n] = a[m, k] @ b[n, k]^T, all row-major float32, no TF32 or other reduced precision.
class RowMajorGemm {
 public:
  virtual ~RowMajorGemm() = default;
  virtual void abt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) = 0;
};

}  // namespace songlines::features::device_engine
