// Options of the feature engine, one struct per op; every default equals librosa 0.11's default
// (shared golden LIBROSA_DEFINITIONS.md). operator== lets cached filterbanks and FFT plans be rebuilt only
// when options change. JSON round trip for shard attributes and experiment configs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/json_fields.h"

namespace songlines::features {

/// Short-time Fourier transform (librosa/core/spectrum.py: stft). Window: periodic Hann of n_fft.
struct StftOptions {
  int n_fft = 2048;      ///< FFT size and window length, samples
  int hop_length = 512;  ///< samples between frames
  bool center = true;    ///< zero-pad n_fft/2 on both sides (pad_mode "constant")
  bool operator==(const StftOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_fft", s.n_fft);
    v("hop_length", s.hop_length);
    v("center", s.center);
  }
};

/// Mel filterbank (librosa/filters.py: mel), Slaney scale and Slaney area normalisation.
struct MelOptions {
  int n_mels = 128;   ///< bands
  double fmin = 0.0;  ///< lowest edge, Hz
  double fmax = 0.0;  ///< highest edge, Hz (0: Nyquist)
  bool operator==(const MelOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_mels", s.n_mels);
    v("fmin", s.fmin);
    v("fmax", s.fmax);
  }
};

/// power_to_db (librosa/core/spectrum.py).
struct DbOptions {
  double ref = 1.0;      ///< reference power
  double amin = 1e-10;   ///< floor before log
  double top_db = 80.0;  ///< clip below global max - top_db; <= 0 disables
  bool operator==(const DbOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("ref", s.ref);
    v("amin", s.amin);
    v("top_db", s.top_db);
  }
};

/// MFCC (librosa/feature/spectral.py: mfcc): DCT-II ortho of mel_db.
struct MfccOptions {
  int n_mfcc = 20;  ///< coefficients kept
  int lifter = 0;   ///< cepstral liftering L (0: none)
  bool operator==(const MfccOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_mfcc", s.n_mfcc);
    v("lifter", s.lifter);
  }
};

/// chroma_stft (librosa/feature/spectral.py) with tuning estimation (core/pitch.py: estimate_tuning).
struct ChromaStftOptions {
  int n_chroma = 12;                  ///< pitch classes
  std::optional<double> tuning;       ///< fraction of a chroma bin; nullopt: estimate from the signal
  double tuning_resolution = 0.01;    ///< histogram step of estimate_tuning
  bool operator==(const ChromaStftOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_chroma", s.n_chroma);
    v("tuning", s.tuning);
    v("tuning_resolution", s.tuning_resolution);
  }
};

/// spectral_contrast (librosa/feature/spectral.py), on the magnitude STFT.
struct SpectralContrastOptions {
  double fmin = 200.0;     ///< upper edge of the lowest band, Hz
  int n_bands = 6;         ///< octave bands above fmin (output has n_bands + 1 rows)
  double quantile = 0.02;  ///< share of a band averaged for peak and valley
  bool operator==(const SpectralContrastOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("fmin", s.fmin);
    v("n_bands", s.n_bands);
    v("quantile", s.quantile);
  }
};

/// Constant-Q transform (librosa/core/constantq.py: cqt) as used by chroma_cqt.
struct CqtOptions {
  int n_bins = 252;                   ///< total bins
  int bins_per_octave = 36;           ///< resolution
  double fmin = 32.70319566257483;    ///< lowest bin before tuning, Hz (C1)
  std::optional<double> tuning;       ///< fraction of a CQT bin; nullopt: estimate_tuning(y, bins_per_octave)
  double sparsity = 0.01;             ///< share of each filter's L1 mass dropped from the FFT basis
  double filter_scale = 1.0;          ///< Q scale
  bool operator==(const CqtOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_bins", s.n_bins);
    v("bins_per_octave", s.bins_per_octave);
    v("fmin", s.fmin);
    v("tuning", s.tuning);
    v("sparsity", s.sparsity);
    v("filter_scale", s.filter_scale);
  }
};

/// chroma_cqt (librosa/feature/spectral.py).
struct ChromaCqtOptions {
  int n_chroma = 12;      ///< pitch classes
  double threshold = 0.0; ///< values below are zeroed
  bool operator==(const ChromaCqtOptions&) const = default;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_chroma", s.n_chroma);
    v("threshold", s.threshold);
  }
};

/// Which chroma tonnetz is computed from. librosa's default is chroma_cqt.
enum class TonnetzChroma { kCqt, kStft };
/// "cqt" | "stft" (the JSON of FeatureOptions::tonnetz_chroma).
std::string tonnetz_chroma_name(TonnetzChroma c);
/// ConfigError naming key_path for any other text.
TonnetzChroma parse_tonnetz_chroma(const std::string& text, const std::string& key_path);

/// Every frame-level feature songlines computes, named as librosa names them.
/// dims at defaults: stft_mag 1025, melspectrogram 128, mel_db 128, mfcc 20, chroma_stft 12,
/// spectral_contrast 7, cqt_mag 252, chroma_cqt 12, tonnetz 6.
const std::vector<std::string>& all_feature_names();
/// The features written by `extract` by default (the seed's four plus mel_db for the VAE).
const std::vector<std::string>& default_shard_feature_names();
/// The seed pipeline's four (features.csv columns).
const std::vector<std::string>& seed_feature_names();

struct FeatureOptions {
  int sample_rate = 22050;  ///< Hz; input audio must already be at this rate
  StftOptions stft;
  MelOptions mel;
  DbOptions db;
  MfccOptions mfcc;
  ChromaStftOptions chroma_stft;
  SpectralContrastOptions spectral_contrast;
  CqtOptions cqt;
  ChromaCqtOptions chroma_cqt;
  TonnetzChroma tonnetz_chroma = TonnetzChroma::kCqt;
  /// Which features to compute and return (names from all_feature_names()); empty: all.
  std::vector<std::string> features;
  bool operator==(const FeatureOptions&) const = default;

  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("sample_rate", s.sample_rate);
    v("stft", s.stft);
    v("mel", s.mel);
    v("db", s.db);
    v("mfcc", s.mfcc);
    v("chroma_stft", s.chroma_stft);
    v("spectral_contrast", s.spectral_contrast);
    v("cqt", s.cqt);
    v("chroma_cqt", s.chroma_cqt);
    v.text("tonnetz_chroma", s.tonnetz_chroma, &tonnetz_chroma_name, &parse_tonnetz_chroma);
    v("features", s.features);
  }
  /// Complete JSON of every field (stored in shard attributes and run configs).
  Json to_json() const;
  /// Strict parse: unknown keys and wrong types throw ConfigError naming the path.
  static FeatureOptions from_json(const Json& j, const std::string& path = "features");
  /// Throws ConfigError when a value is out of range (n_fft not positive, unknown feature name, ...), naming
  /// the key under path.
  void validate(const std::string& path = "features") const;
  /// Dimension of a named feature under these options.
  int64_t feature_dim(const std::string& name) const;
};

}  // namespace songlines::features
