// Spectral contrast (librosa 0.11 feature/spectral.py: spectral_contrast, linear=False).
#pragma once

#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Octave bands of spectral_contrast for one (sr, n_fft): band k uses bins [begin[k], end[k]) after librosa's
/// edge rules, and averages the q[k] lowest / highest values.
struct ContrastBands {
  std::vector<int> begin, end, q;
};
ContrastBands spectral_contrast_bands(int sample_rate, int n_fft, const SpectralContrastOptions& opt);

/// power_to_db's options for the peak and the valley arrays: librosa's defaults (spectral_contrast calls
/// power_to_db(peak) with no arguments), whatever FeatureOptions::db says. Each array is clipped against its own
/// global max over the whole track (all bands, all frames).
inline constexpr DbOptions kSpectralContrastDb{};

/// S: [T, n_fft/2+1] MAGNITUDE -> [T, n_bands+1]: power_to_db(peak) - power_to_db(valley), where each of the
/// peak and valley arrays is clipped at (its own global max - 80 dB). Computed in float64, returned as float32.
FeatureMatrix spectral_contrast_from_magnitude(const FeatureMatrix& S, int sample_rate, int n_fft,
                                               const SpectralContrastOptions& opt);

/// spectral_contrast in two steps, for a track that arrives in pieces. Step 1, per frame: the mean of the q
/// largest (peak) and q smallest (valley) magnitudes of each band, float32 as librosa computes them.
/// S: [rows, n_fft/2+1] magnitude -> peak, valley: [rows, n_bands+1] row-major.
void spectral_contrast_peaks_valleys(const float* S, int64_t rows, int n_fft, const ContrastBands& bands, float* peak,
                                     float* valley);
/// Step 2, over the whole track (count = frames * (n_bands+1) values): power_to_db of the peaks and of the
/// valleys, each clipped at its own global max - 80 dB, and their difference into out (float32).
/// spectral_contrast_from_magnitude = step 1 on all frames, then step 2, bit for bit.
void spectral_contrast_from_peaks_valleys(const float* peak, const float* valley, int64_t count, float* out);

}  // namespace songlines::features
