#include "bench/synthetic_shards.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace songlines::bench {

namespace fs = std::filesystem;

std::vector<fs::path> write_synthetic_shards(const fs::path& dir, const SyntheticShards& s) {
  std::vector<fs::path> files;
  std::mt19937_64 rng(0);
  std::normal_distribution<float> value(s.mean, s.stddev);
  std::uniform_real_distribution<float> lat(-60, 70), lon(-180, 180);
  for (int64_t first = 0; first < s.tracks; first += s.tracks_per_shard) {
    char name[32];
    std::snprintf(name, sizeof name, "shard-%05lld.h5", static_cast<long long>(first / s.tracks_per_shard));
    shards::ShardWriter w(dir / name, s.attributes);
    for (int64_t i = first; i < std::min<int64_t>(s.tracks, first + s.tracks_per_shard); ++i) {
      shards::TrackRecord t;
      t.id = "t" + std::to_string(i);
      t.path = t.id + ".wav";
      t.latitude = lat(rng);
      t.longitude = lon(rng);
      for (const auto& [block, d] : s.blocks) {
        features::FeatureMatrix m(s.frames, d);
        for (auto& v : m.data) v = value(rng);
        t.frames.emplace(block, std::move(m));
      }
      w.add(t);
    }
    w.close();
    files.push_back(dir / name);
  }
  return files;
}

}  // namespace songlines::bench
