// The CPU feature engine's front end: every frame-level feature of one track, librosa 0.11-exact
// (shared golden LIBROSA_DEFINITIONS.md). One STFT per track feeds mel, mfcc, chroma_stft, spectral_contrast and
// both tuning estimates; filterbanks and the FFTW plan are built once per extractor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Features of one track by librosa name (all_feature_names()), each [n_frames, dim] (transposed vs librosa).
struct TrackFeatures {
  int64_t n_frames = 0;                          ///< 1 + n_samples / hop_length
  std::map<std::string, FeatureMatrix> frames;   ///< name -> [n_frames, feature_dim(name)]
  /// estimate_tuning(S=|stft|^2, bins_per_octave=n_chroma) (or options.chroma_stft.tuning), fraction of a chroma
  /// bin; NaN when no requested feature needs it.
  double tuning_chroma_stft = 0.0;
  /// estimate_tuning(|stft|, bins_per_octave=cqt.bins_per_octave) (or options.cqt.tuning), fraction of a CQT bin;
  /// NaN when no requested feature needs it.
  double tuning_cqt = 0.0;
};

/// Time of each stage of one compute() call, in the order the stages ran (for `songlines bench features`).
/// Stage names: input_check, stft, mel (mel + power_to_db), mfcc, tuning_stft, chroma_stft, spectral_contrast,
/// tuning_cqt, cqt, chroma_cqt, tonnetz; a stage that did not run is absent.
struct StageTimes {
  struct Stage {
    std::string name;
    double wall_s = 0.0;  ///< wall clock (steady_clock)
    double cpu_s = 0.0;   ///< CPU time of the calling thread (excludes time the thread waited for a core)
  };
  std::vector<Stage> stages;
};

/// How compute() bounds its memory on long tracks. The features do not depend on it: every chunk size gives the
/// same output, bit for bit (tests/features/long_track_test.cpp), so it is not a feature option (not in shards).
struct ChunkOptions {
  /// STFT frames computed at a time. A track of more frames goes through the engine in chunks of this many frames
  /// (the CQT's rows likewise), and the per-track reductions (power_to_db's global max, the tunings' global median
  /// and histogram, spectral_contrast's clip) are made over the whole track, so the working memory is
  /// O(chunk_frames) beside the input and the outputs. Default: 8192 frames (190 s at hop 512 / 22050 Hz), so an
  /// ordinary track is one chunk; about 10 KB of scratch per frame (two STFT spectra, the CQT's octaves).
  int64_t chunk_frames = 8192;
  bool operator==(const ChunkOptions&) const = default;
};

class FeatureExtractor {
 public:
  /// Validates the options (ConfigError on a bad value) and builds the FFT plan and filterbanks.
  explicit FeatureExtractor(FeatureOptions options, ChunkOptions chunking = {});
  ~FeatureExtractor();
  FeatureExtractor(const FeatureExtractor&) = delete;
  FeatureExtractor& operator=(const FeatureExtractor&) = delete;

  const FeatureOptions& options() const { return options_; }
  const ChunkOptions& chunking() const { return chunking_; }
  /// Names computed by compute(): options.features, or all_feature_names() when that is empty.
  const std::vector<std::string>& feature_names() const { return names_; }

  /// y: mono float32 at options.sample_rate, n samples. Thread-safe (several threads may share one extractor).
  /// Throws InputError (path "track") for an empty or non-finite signal. times: when given, receives the
  /// per-stage wall-clock split, summed over the chunks (the timing costs two clock reads per stage and chunk).
  /// A track of more than chunking().chunk_frames frames is computed in chunks (see ChunkOptions).
  TrackFeatures compute(const float* y, int64_t n, StageTimes* times = nullptr) const;

 private:
  struct Impl;
  FeatureOptions options_;
  ChunkOptions chunking_;
  std::vector<std::string> names_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace songlines::features
