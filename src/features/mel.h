// Mel filterbank, melspectrogram, power_to_db and MFCC (librosa 0.11 filters.py: mel; core/convert.py:
// hz_to_mel, mel_to_hz, mel_frequencies; feature/spectral.py: melspectrogram, mfcc; core/spectrum.py: power_to_db).
#pragma once

#include <cstdint>
#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Slaney mel scale (librosa hz_to_mel / mel_to_hz with htk=False).
double hz_to_mel_slaney(double hz);
double mel_to_hz_slaney(double mel);
/// librosa.mel_frequencies(n, fmin, fmax): n band edges evenly spaced on the Slaney mel scale, Hz.
std::vector<double> mel_frequencies(int n, double fmin, double fmax);

/// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, norm="slaney"), float32, stored sparsely:
/// row i is nonzero only on bins [begin[i], end[i]).
class MelFilterbank {
 public:
  MelFilterbank(int sample_rate, int n_fft, const MelOptions& opt);
  int n_mels() const { return n_mels_; }
  int n_bins() const { return n_bins_; }
  /// Dense [n_mels, n_fft/2+1] float32 (librosa's layout), for tests.
  const std::vector<float>& dense() const { return weights_; }
  /// mel[t, i] = sum_k W[i, k] * S[t, k].  S: [T, n_fft/2+1] (power) -> [T, n_mels].
  FeatureMatrix apply(const FeatureMatrix& S) const;
  /// The same on `rows` rows: S [rows, n_fft/2+1] -> out [rows, n_mels], both row-major.
  void apply_rows(const float* S, int64_t rows, float* out) const;

 private:
  int n_mels_ = 0;
  int n_bins_ = 0;
  std::vector<float> weights_;   // [n_mels, n_bins]
  std::vector<int> begin_, end_;  // nonzero support of each row
};

/// librosa.power_to_db(S, ref, amin, top_db) in float32; the top_db clip is relative to the GLOBAL max of S.
FeatureMatrix power_to_db(const FeatureMatrix& S, const DbOptions& opt);
/// power_to_db in two steps, for a track that arrives in pieces: db_unclipped writes 10 log10(max(amin, S)) -
/// 10 log10(max(amin, |ref|)) of S[0..count) to out and returns the largest value written (-inf when count is 0);
/// clip_db then raises x[0..count) to (the track's largest value - top_db) (nothing when top_db <= 0).
/// power_to_db(S) = db_unclipped of all of S, then clip_db with its return value, bit for bit.
float db_unclipped(const float* S, int64_t count, const DbOptions& opt, float* out);
void clip_db(float* x, int64_t count, float max_db, const DbOptions& opt);
/// The same on float64 values (used by spectral_contrast, whose peak/valley arrays are float64).
void power_to_db_inplace(std::vector<double>& x, const DbOptions& opt);

/// DCT-II (norm="ortho") of each row of mel_db, first n_mfcc coefficients, optional liftering.
/// mel_db: [T, n_mels] -> [T, n_mfcc]. (librosa.feature.mfcc with S = mel_db.)
class MfccTransform {
 public:
  MfccTransform(int n_mels, const MfccOptions& opt);
  FeatureMatrix apply(const FeatureMatrix& mel_db) const;
  /// Dense [n_mfcc, n_mels] basis (float64), for tests.
  const std::vector<double>& basis() const { return basis_; }

 private:
  int n_mels_ = 0;
  int n_mfcc_ = 0;
  std::vector<double> basis_;  // [n_mfcc, n_mels], liftering folded in
  std::vector<double> basis_t_;  // the same, [n_mels, n_mfcc] (apply's vectorised layout)
};

}  // namespace songlines::features
