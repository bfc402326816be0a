// Tuning estimation (librosa 0.11 core/pitch.py: estimate_tuning -> piptrack -> pitch_tuning).
#pragma once

#include <cstdint>
#include <vector>

#include "features/feature_matrix.h"

namespace songlines::features {

inline constexpr float kPiptrackThreshold = 0.1f;  ///< piptrack default threshold (relative to the frame max)

/// piptrack's frequency mask fmin <= k sr / n_fft < min(fmax, sr/2) with its defaults (fmin 150 Hz, fmax
/// 4000 Hz), as the bins [k_lo, k_hi) of an n_fft/2+1-bin spectrum; k_lo = K, k_hi = 0 when no bin is in the band.
struct PiptrackBand {
  int64_t k_lo = 0;
  int64_t k_hi = 0;
};
PiptrackBand piptrack_band(int sample_rate, int n_fft);

/// pitch_tuning's histogram edges np.linspace(-0.5, 0.5, ceil(1/resolution) + 1) (float64); resolution in (0, 1).
std::vector<double> tuning_histogram_edges(double resolution);

/// librosa.estimate_tuning(S=S^T, sr, n_fft, bins_per_octave, resolution) with piptrack's defaults
/// (fmin 150 Hz, fmax 4000 Hz, threshold 0.1, ref = per-frame max), a GLOBAL median magnitude threshold
/// over all frames, and the left edge of the first maximal bin of a `resolution`-step histogram on [-0.5, 0.5).
/// S: [frames, n_fft/2+1]; power for chroma_stft, magnitude for the CQT's tuning (the caller decides).
/// Returns the tuning as a fraction of a bin (1/bins_per_octave octave); 0.0 when no pitch survives.
double estimate_tuning(const FeatureMatrix& S, int sample_rate, int n_fft, int bins_per_octave,
                       double resolution = 0.01);

/// estimate_tuning in two steps, for a track that arrives in pieces: piptrack_peaks appends the candidates of some
/// rows (the peaks with a positive pitch: the only ones estimate_tuning uses), tuning_from_peaks reduces all of a
/// track's candidates (the GLOBAL median threshold and the histogram). The candidates' order does not matter.
/// estimate_tuning(S) = tuning_from_peaks(piptrack_peaks of all rows of S), bit for bit.
struct PitchPeaks {
  std::vector<float> pitch;  ///< Hz, > 0
  std::vector<float> mag;    ///< S at the peak plus the parabolic skew (piptrack's mags)
  void clear() {
    pitch.clear();
    mag.clear();
  }
};
/// S: [rows, n_fft/2+1] row-major (power or magnitude).
void piptrack_peaks(const float* S, int64_t rows, int sample_rate, int n_fft, PitchPeaks& peaks);
double tuning_from_peaks(const PitchPeaks& peaks, int bins_per_octave, double resolution = 0.01);

}  // namespace songlines::features
