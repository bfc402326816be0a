// Short-time Fourier transform magnitude / power (librosa 0.11 core/spectrum.py: stft, feature/spectral.py:
// _spectrogram). Periodic Hann window, center zero padding of n_fft/2, T = 1 + n // hop frames; each frame's
// FFT is computed in float64 and rounded to float32, as librosa (scipy.fft.rfft on window_f64 * frame_f32) does.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Number of frames librosa's centred stft produces: 1 + n / hop.
int64_t stft_num_frames(int64_t n, const StftOptions& opt);

/// Periodic Hann window of length n (scipy.signal.get_window("hann", n, fftbins=True)), float64.
std::vector<double> periodic_hann(int n);

/// Which |X|^p the spectrogram holds.
enum class SpectrumKind { kMagnitude, kPower };

/// Reusable real-FFT plan + window for one StftOptions (FFTW plans are created once, under a global mutex;
/// compute() is thread-safe: it executes the plan on per-call buffers).
class StftPlan {
 public:
  explicit StftPlan(const StftOptions& opt);
  ~StftPlan();
  StftPlan(const StftPlan&) = delete;
  StftPlan& operator=(const StftPlan&) = delete;

  const StftOptions& options() const { return opt_; }
  /// Magnitude and/or power of the stft of y[0..n): [T, n_fft/2+1] float32 each (nullptr: not wanted).
  /// Power is |X|^2 computed from the complex64-rounded X, as librosa does. The matrices are resized in place
  /// (their allocations reused), so a caller may pass the same scratch matrices for every track.
  void compute(const float* y, int64_t n, FeatureMatrix* magnitude, FeatureMatrix* power) const;
  /// Frames [t0, t1) of the stft of y[0..n) (0 <= t0 <= t1 <= stft_num_frames(n)), the same values compute()
  /// gives them: magnitude / power rows into [t1 - t0, n_fft/2+1] row-major arrays (nullptr: not wanted).
  void compute_frames(const float* y, int64_t n, int64_t t0, int64_t t1, float* magnitude, float* power) const;

 private:
  struct Impl;
  StftOptions opt_;
  std::unique_ptr<Impl> impl_;
};

/// |stft(y)|: [T, n_fft/2+1] float32.
FeatureMatrix stft_magnitude(const float* y, int64_t n, const StftOptions& opt);
/// |stft(y)|^2: [T, n_fft/2+1] float32.
FeatureMatrix stft_power(const float* y, int64_t n, const StftOptions& opt);

}  // namespace songlines::features
