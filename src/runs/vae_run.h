// The VAE task (`songlines run` with "task": "vae"; `train-vae` is its old name): reads mel_db
// frames and places from shards, trains the VAE, evaluates held-out reconstruction (normalised MSE, and the
// MR-STFT distance on the source audio beside Griffin-Lim's ceiling when the shards' track paths are readable
// audio files), and writes a run directory: config.json (resolved), env.json, metrics.jsonl,
// metrics.json (with "geo_consistency", generate/geo_consistency.h), checkpoints/vae.{json,pt},
// samples/<place>.wav with a spectrogram samples/<place>.png, and samples/places.csv.
// docs/vae.md lists every config key.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "generate/geo_consistency.h"
#include "generate/vae_training.h"
#include "runs/task.h"

namespace songlines::runs {

struct SamplePlace {
  std::string name;
  geo::LatLon place;

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("name", s.name, kRequired);
    v("latitude", s.place.lat, kRequired);
    v("longitude", s.place.lon, kRequired);
  }
  void validate(const std::string& path) const;
};

struct VaeRunConfig {
  std::string experiment = "vae";     ///< runs/<experiment>/
  uint64_t seed = 0;                  ///< split, weights, crops, samples
  std::string device = "auto";        ///< cpu, cuda, auto
  std::vector<std::string> shards;    ///< shard files or directories (mel_db frames + coordinates)
  std::string feature = "mel_db";     ///< frame array the VAE models
  double val_fraction = 0.1;          ///< held-out share of tracks (seeded shuffle)
  int max_tracks = 0;                 ///< 0: all tracks with coordinates
  /// MiB of frames held in memory (0: a quarter of physical memory); the chosen tracks' frames load into memory
  /// when they fit, else they are read on demand through a cache of this size (docs/scaling.md). Not part of
  /// the run's identity.
  int64_t memory_budget_mb = 0;
  models::VaeOptions model;
  generate::VaeTrainOptions train;    ///< seed and device come from the top level (train.seed is refused)
  double sample_seconds = 8.0;        ///< length of each samples/*.wav
  int griffin_lim_iterations = 32;
  bool sample_training_capitals = true;  ///< a sample for each training country's capital
  std::vector<SamplePlace> sample_places;  ///< extra places (defaults: five never in the anthems set)
  int eval_audio_tracks = 4;          ///< held-out tracks scored by MR-STFT on their audio (0: off)
  double eval_audio_seconds = 4.0;    ///< seconds of each, from the middle of the track
  generate::GeoConsistencyOptions geo;  ///< evaluation.geo_consistency (seeds 0: off)
  std::string vocoder;  ///< a vocoder run directory (runs/vocoder_run.h) for the samples and checkpoint; "": Griffin-Lim

  /// Its JSON keys but "task" and "vocoder" (written only when set) (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v.ignore("type");  // the older spelling of "task": "vae" (runs/task.h)
    v("experiment", s.experiment);
    v("seed", s.seed);
    v("device", s.device);
    v.group("data", [&](auto& d) {
      d("shards", s.shards, kRequired);
      d("feature", s.feature);
      d("val_fraction", s.val_fraction);
      d("max_tracks", s.max_tracks);
      d("memory_budget_mb", s.memory_budget_mb);
    });
    v("model", s.model);
    v("train", s.train);  // its seed and device are the top level's: refused in, left out
    v.group("samples", [&](auto& g) {
      g("seconds", s.sample_seconds);
      g("griffin_lim_iterations", s.griffin_lim_iterations);
      g("training_capitals", s.sample_training_capitals);
      g("places", s.sample_places);
    });
    v.group("evaluation", [&](auto& e) {
      e("audio_tracks", s.eval_audio_tracks);
      e("audio_seconds", s.eval_audio_seconds);
      e("geo_consistency", s.geo);
    });
  }

  static VaeRunConfig from_json(const Json& j, const std::filesystem::path& base_dir);
  Json to_json() const;
};

/// Loads CONFIG.json with key=value overrides and parses it.
VaeRunConfig load_vae_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

/// Trains and evaluates; returns metrics.json's content. A finished run directory with the same config is not
/// redone (its metrics.json is returned); one with a different config is refused (UsageError, exit 2) before
/// anything is written, so a finished result is never replaced.
Json run_vae_experiment(const VaeRunConfig& config, const std::filesystem::path& run_dir, std::ostream& log);

/// The mel analysis the first shard of `shards` (a file or folder) made `feature` with: what a VAE trained on
/// them decodes, and so what a vocoder for that VAE must read. InputError when there is no shard.
generate::MelAnalysisOptions shards_mel_analysis(const std::filesystem::path& shards, const std::string& feature = "mel_db");

/// The VAE task's entry in the task table (runs/task.h): parses j as a VaeRunConfig.
PreparedRun prepare_vae_run(const Json& j, const std::filesystem::path& base_dir);

}  // namespace songlines::runs
