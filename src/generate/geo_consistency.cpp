#include "generate/geo_consistency.h"

#include <cmath>

#include "core/error.h"
#include "shards/shard.h"

namespace songlines::generate {

GeoConsistencyOptions GeoConsistencyOptions::from_json(const Json& j, const std::string& path) {
  return fields_from_json<GeoConsistencyOptions>(j, path);
}

Json GeoConsistencyOptions::to_json() const { return fields_to_json(*this); }

void GeoConsistencyOptions::validate(const std::string& path) const {
  if (seeds < 0) throw ConfigError(path + ".seeds: must be >= 0 (0: no geo-consistency)");
  if (!(seconds > 0)) throw ConfigError(path + ".seconds: must be > 0");
  if (max_places < 0 || max_places == 1) throw ConfigError(path + ".max_places: 0 (all) or at least 2");
  if (knn_k < 1) throw ConfigError(path + ".knn_k: must be >= 1");
  if (transfer_tracks < 0) throw ConfigError(path + ".transfer_tracks: must be >= 0");
}

SeedSpread SeedSpread::of(std::vector<double> per_seed_km) {
  SeedSpread s;
  s.per_seed_km = std::move(per_seed_km);
  const double n = static_cast<double>(s.per_seed_km.size());
  if (n == 0) return s;
  for (double v : s.per_seed_km) s.mean_km += v / n;
  if (n > 1) {
    double ss = 0;
    for (double v : s.per_seed_km) ss += (v - s.mean_km) * (v - s.mean_km);
    s.std_km = std::sqrt(ss / (n - 1));
  }
  return s;
}

Json SeedSpread::to_json() const { return Json{{"mean_km", mean_km}, {"std_km", std_km}, {"per_seed_km", per_seed_km}}; }

size_t shuffled_condition_index(size_t i, size_t n, uint64_t seed) {
  if (n < 2) throw UsageError("geo-consistency: the shuffled control needs at least two places");
  const size_t shift = 1 + static_cast<size_t>(seed % (n - 1));
  return (i + shift) % n;
}

GeoConsistencyScores score_geo_consistency(const std::vector<geo::LatLon>& places, const std::vector<uint64_t>& seeds,
                                           const ClipMaker& make_clip, const ClipLocator& locate) {
  if (places.size() < 2) throw UsageError("geo-consistency: needs at least two places, got " + std::to_string(places.size()));
  if (seeds.empty()) throw UsageError("geo-consistency: needs at least one seed");
  const size_t n = places.size();
  std::vector<double> own_km, control_km;
  for (const uint64_t seed : seeds) {
    std::vector<std::vector<float>> clips;
    clips.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) clips.push_back(make_clip(places[i], seed));
    for (size_t i = 0; i < n; ++i) clips.push_back(make_clip(places[shuffled_condition_index(i, n, seed)], seed));
    const auto located = locate(clips);
    if (located.size() != clips.size())
      throw InputError("geo-consistency", "locator returned " + std::to_string(located.size()) + " places for " +
                                              std::to_string(clips.size()) + " clips");
    double own = 0, control = 0;
    for (size_t i = 0; i < n; ++i) {
      own += geo::distance_km(located[i], places[i]) / static_cast<double>(n);
      control += geo::distance_km(located[n + i], places[i]) / static_cast<double>(n);
    }
    own_km.push_back(own);
    control_km.push_back(control);
  }
  return {SeedSpread::of(own_km), SeedSpread::of(control_km)};
}

std::vector<float> clip_summaries(const features::FeatureExtractor& extractor, const std::vector<std::string>& blocks,
                                  const std::vector<std::vector<float>>& clips) {
  std::vector<float> x;
  for (const auto& clip : clips) {
    const auto f = extractor.compute(clip.data(), static_cast<int64_t>(clip.size()));
    for (const auto& name : blocks) {
      auto it = f.frames.find(name);
      if (it == f.frames.end()) throw InputError("geo-consistency", "feature engine did not compute " + name);
      for (double v : shards::summarize(it->second).mean) x.push_back(static_cast<float>(v));
    }
  }
  return x;
}

ClipLocator make_clip_locator(std::shared_ptr<const features::FeatureExtractor> extractor, std::vector<std::string> blocks,
                              std::shared_ptr<train::LocationEstimator> estimator) {
  return [extractor, blocks, estimator](const std::vector<std::vector<float>>& clips) {
    const auto x = clip_summaries(*extractor, blocks, clips);
    return estimator->predict_raw(x, static_cast<int64_t>(clips.size())).points;
  };
}

}  // namespace songlines::generate
