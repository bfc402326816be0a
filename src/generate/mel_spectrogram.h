// The audio path of the VAE in torch, on the model's device: waveform -> log-mel (as the shards' mel_db) and
// back (mel -> linear magnitude by non-negative least squares). The mel basis is built here in torch so that
// generation runs wherever the model runs; it follows librosa 0.11 librosa/filters.py: mel (htk=False,
// norm="slaney"), and the feature engine (src/features) is the CPU reference the shards were written with.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "core/json_fields.h"

namespace songlines::generate {

/// The analysis the VAE's mel_db segments come from (must equal the shards' feature options).
struct MelAnalysisOptions {
  int sample_rate = 22050;  ///< Hz
  int n_fft = 2048;         ///< samples; periodic Hann window of n_fft
  int hop_length = 512;     ///< samples
  int n_mels = 128;         ///< bands
  double fmin = 0.0;        ///< Hz
  double fmax = 0.0;        ///< Hz, 0: Nyquist
  double amin = 1e-10;      ///< power floor of power_to_db
  double top_db = 80.0;     ///< power_to_db clipping below the maximum; <= 0 disables
  bool operator==(const MelAnalysisOptions&) const = default;
  int64_t n_bins() const { return n_fft / 2 + 1; }
  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("sample_rate", s.sample_rate);
    v("n_fft", s.n_fft);
    v("hop_length", s.hop_length);
    v("n_mels", s.n_mels);
    v("fmin", s.fmin);
    v("fmax", s.fmax);
    v("amin", s.amin);
    v("top_db", s.top_db);
  }
  Json to_json() const;
  static MelAnalysisOptions from_json(const Json& j, const std::string& path = "audio");
  /// ConfigError naming path when a size is not positive.
  void validate(const std::string& path) const;
};

/// Slaney-scale mel filterbank [n_mels, n_fft/2+1] float32 with Slaney area normalisation
/// (librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")).
torch::Tensor mel_basis(const MelAnalysisOptions& o);

/// Magnitude STFT [n_bins, frames] of mono y [n] (centered, zero padding: librosa.stft pad_mode="constant").
torch::Tensor magnitude_stft(const torch::Tensor& y, int64_t n_fft, int64_t hop);

/// mel_db [frames, n_mels] of mono y [n]: power_to_db(melspectrogram(y, power=2), ref=1, amin, top_db)
/// (librosa/feature/spectral.py: melspectrogram; librosa/core/spectrum.py: power_to_db).
torch::Tensor mel_db(const torch::Tensor& y, const MelAnalysisOptions& o);

/// Inverse of the mel projection: linear magnitude [n_bins, frames] from mel_db [frames, n_mels], like
/// librosa.feature.inverse.mel_to_stft (power 2): S >= 0 minimising ||W S - M|| with M = 10^(db/10),
/// by a clamped pseudo-inverse start and multiplicative NNLS updates; returns sqrt(S).
torch::Tensor mel_db_to_magnitude(const torch::Tensor& mel_db, const MelAnalysisOptions& o, int nnls_iterations = 30);

}  // namespace songlines::generate
