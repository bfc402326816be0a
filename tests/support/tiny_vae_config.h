// The VAE run config of the tests that run `songlines run` on a tiny VAE: a 32-band, 32-frame model of two levels
// that trains in seconds on the mel_db shards in "shards/" beside the config, samples of a quarter second at one
// place, and no audio or geo-consistency evaluation; and the writer of such a shard.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/config.h"
#include "geo/great_circle.h"
#include "shards/shard.h"

namespace songlines::testing {

/// The config (task "vae", device cpu); train: its "train" section (steps, batch_size, ...).
inline Json tiny_vae_run_config(const std::string& experiment, uint64_t seed, double val_fraction, const Json& train) {
  return {{"task", "vae"},
          {"experiment", experiment},
          {"seed", seed},
          {"device", "cpu"},
          {"data", {{"shards", {"shards"}}, {"val_fraction", val_fraction}}},
          {"model",
           {{"n_mels", 32}, {"segment_frames", 32}, {"channels", {4, 8}}, {"latent_channels", 2}, {"n_fourier", 2},
            {"cond_dim", 8}}},
          {"train", train},
          {"samples",
           {{"seconds", 0.25},
            {"griffin_lim_iterations", 2},
            {"training_capitals", false},
            {"places", {{{"name", "lima"}, {"latitude", -12.05}, {"longitude", -77.04}}}}}},
          {"evaluation", {{"audio_tracks", 0}, {"geo_consistency", {{"seeds", 0}}}}}};
}

/// Writes file: a shard (8 kHz, n_fft 256, hop 64) of `tracks` tracks "t0", "t1", ... of frames x 32 mel_db
/// bands, track i at places[i % places.size()]; band k of frame f is level(i, k) plus N(0, noise_sd) noise drawn
/// in frame-major order from a mt19937 seeded with seed.
inline void write_tiny_mel_shard(const std::filesystem::path& file, int tracks, int64_t frames,
                                 const std::vector<geo::LatLon>& places, uint32_t seed, float noise_sd,
                                 const std::function<float(int track, int64_t band)>& level) {
  constexpr int64_t kBands = 32;
  shards::ShardAttributes a;
  a.sample_rate = 8000;
  a.n_fft = 256;
  a.hop_length = 64;
  shards::ShardWriter w(file, a);
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, noise_sd);
  for (int i = 0; i < tracks; ++i) {
    const geo::LatLon& place = places[static_cast<size_t>(i) % places.size()];
    shards::TrackRecord t;
    t.id = "t" + std::to_string(i);
    t.latitude = static_cast<float>(place.lat);
    t.longitude = static_cast<float>(place.lon);
    features::FeatureMatrix m(frames, kBands);
    for (int64_t f = 0; f < frames; ++f)
      for (int64_t k = 0; k < kBands; ++k) m.data[f * kBands + k] = level(i, k) + noise(rng);
    t.frames["mel_db"] = std::move(m);
    w.add(t);
  }
  w.close();
}

}  // namespace songlines::testing
