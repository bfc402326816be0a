// The VAE run config of the tests that run `songlines run` on a tiny VAE: a 32-band, 32-frame model of two levels
// that trains in seconds on the mel_db shards in "shards/" beside the config, samples of a quarter second at one
// place, and no audio or geo-consistency evaluation.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

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

}  // namespace songlines::testing
