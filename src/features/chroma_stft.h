// Chroma filterbank and chroma_stft (librosa 0.11 filters.py: chroma; feature/spectral.py: chroma_stft).
#pragma once

#include <cstdint>
#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// librosa.filters.chroma(sr, n_fft, n_chroma, tuning, ctroct=5, octwidth=2, norm=2, base_c=True), float32.
/// Dense [n_chroma, n_fft/2+1].
class ChromaFilterbank {
 public:
  ChromaFilterbank(int sample_rate, int n_fft, int n_chroma, double tuning);
  int n_chroma() const { return n_chroma_; }
  int n_bins() const { return n_bins_; }
  const std::vector<float>& dense() const { return weights_; }
  /// raw[t, c] = sum_k W[c, k] S[t, k], then each frame divided by its max (norm=inf; frames whose max is
  /// below float32 tiny are left unchanged). S: [T, n_fft/2+1] power -> [T, n_chroma].
  FeatureMatrix apply(const FeatureMatrix& S) const;
  /// The same on `rows` rows: S [rows, n_fft/2+1] -> out [rows, n_chroma], both row-major.
  void apply_rows(const float* S, int64_t rows, float* out) const;

 private:
  int n_chroma_ = 0;
  int n_bins_ = 0;
  std::vector<float> weights_;             // [n_chroma, n_bins]
  std::vector<float> weights_by_bin_;      // [n_bins, n_chroma]: the same weights, bin-major for apply()
};

/// chroma_stft from the power spectrogram S: [T, n_fft/2+1]. tuning: options.tuning or estimate_tuning(S).
/// Returns [T, n_chroma]; *tuning_out (if not null) gets the tuning used.
FeatureMatrix chroma_stft_from_power(const FeatureMatrix& S, int sample_rate, int n_fft,
                                     const ChromaStftOptions& opt, double* tuning_out = nullptr);

}  // namespace songlines::features
