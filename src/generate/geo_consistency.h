// Geo-consistency of generated audio (issue 7, "Metrics"): does music generated for a place sound like that
// place to a location model trained on real audio? Clips are turned into the seed's summary features (time
// means of mfcc, chroma_stft, spectral_contrast, tonnetz from the CPU feature engine, in the location dataset's
// block order), located, and scored by the great-circle km between the prediction and the place the clip was
// generated for. The control generates with another place's condition (a derangement of the places) and is
// scored against the intended place: a decoder that ignores its condition scores the same on both.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "features/feature_extractor.h"
#include "geo/great_circle.h"
#include "train/estimator.h"

namespace songlines::generate {

struct GeoConsistencyOptions {
  int seeds = 3;              ///< sample seeds (run seed + 1000 + s); figures are mean +- std over them
  double seconds = 4.0;       ///< length of each generated or transferred clip
  int max_places = 12;        ///< generation places: distinct training places, seeded pick of this many (0: all)
  int knn_k = 3;              ///< the location model: kNN (standardised summaries) fitted on the training tracks
  int transfer_tracks = 8;    ///< held-out tracks decoded under another place (0: no transfer figures)
  /// Fit the kNN (and score real held-out tracks) on the tracks rendered through the audio path (mel_db ->
  /// NNLS -> Griffin-Lim) instead of the shards' summaries of the source audio.
  bool vocoded_reference = true;

  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("seeds", s.seeds);
    v("seconds", s.seconds);
    v("max_places", s.max_places);
    v("knn_k", s.knn_k);
    v("transfer_tracks", s.transfer_tracks);
    v("vocoded_reference", s.vocoded_reference);
  }
  static GeoConsistencyOptions from_json(const Json& j, const std::string& path);
  Json to_json() const;
  /// ConfigError naming path.key when a value is out of range.
  void validate(const std::string& path) const;
};

/// Mean km of each seed, and their mean and sample standard deviation (0 for one seed).
struct SeedSpread {
  std::vector<double> per_seed_km;
  double mean_km = 0;
  double std_km = 0;
  static SeedSpread of(std::vector<double> per_seed_km);
  Json to_json() const;
};

/// A clip of audio generated for `condition` with `seed` (samples at the feature engine's rate).
using ClipMaker = std::function<std::vector<float>(const geo::LatLon& condition, uint64_t seed)>;
/// Predicted places of clips, one per clip.
using ClipLocator = std::function<std::vector<geo::LatLon>(const std::vector<std::vector<float>>& clips)>;

/// Index of the condition used for target place i under a seed in the control: (i + shift) % n with
/// shift = 1 + seed % (n - 1), a derangement (never i itself) that changes with the seed. n >= 2.
size_t shuffled_condition_index(size_t i, size_t n, uint64_t seed);

struct GeoConsistencyScores {
  SeedSpread conditioned;  ///< clip generated for place i, scored against place i
  SeedSpread shuffled;     ///< clip generated for place shuffled_condition_index(i), scored against place i
};

/// Scores generation over places (distinct, n >= 2) and seeds. Throws UsageError for fewer than two places or
/// no seeds, InputError when the locator returns the wrong count.
GeoConsistencyScores score_geo_consistency(const std::vector<geo::LatLon>& places, const std::vector<uint64_t>& seeds,
                                           const ClipMaker& make_clip, const ClipLocator& locate);

/// Summary vectors of clips: the concatenated time means of `blocks` (feature names) from the extractor,
/// [clips, D] row-major. Uses shards::summarize so the numbers match the shards' /summary means.
std::vector<float> clip_summaries(const features::FeatureExtractor& extractor, const std::vector<std::string>& blocks,
                                  const std::vector<std::vector<float>>& clips);

/// A ClipLocator from a feature extractor and a fitted estimator (predict_raw on clip_summaries).
ClipLocator make_clip_locator(std::shared_ptr<const features::FeatureExtractor> extractor, std::vector<std::string> blocks,
                              std::shared_ptr<train::LocationEstimator> estimator);

}  // namespace songlines::generate
