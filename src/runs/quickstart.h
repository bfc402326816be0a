// The main job (`songlines run experiments/quickstart.json`, "task": "quickstart"): the whole flow on built-in
// inputs, in one run directory, in a few minutes on a CPU (docs/experiments.md, "The main job"):
//   audio/           synthesized tracks with a place signal (extract/synthetic_set.h) and audio/../catalog.csv
//   features/        their features (the seed's four + mel_db), extracted with the feature engine
//   location/        a location run on the GOM table shipped in data/gom ("location": a run config)
//   audio-location/  a location run on the synthesized shards, summary and temporal models ("audio_location")
//   vocoder/         a small neural vocoder trained on the synthesized audio, for the features' log-mel ("vocoder")
//   vae/             the coordinate-conditioned VAE on the synthesized shards, with samples/*.wav + *.png ("vae");
//                    its audio comes from vocoder/ (unless "vae" names its own "vocoder")
//   report.html      one page over the three runs (each run also has its own report.html)
// Each part is an ordinary run directory; a rerun with the same config skips the finished parts.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "runs/task.h"

namespace songlines::runs {

struct QuickstartAudio {
  int places = 8;            ///< synthetic places (1..8)
  int tracks_per_place = 6;
  double seconds = 6.0;      ///< length of each track
  uint64_t seed = 2024;      ///< synthesizer seed

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("places", s.places);
    v("tracks_per_place", s.tracks_per_place);
    v("seconds", s.seconds);
    v("seed", s.seed);
  }
  void validate(const std::string& path) const;
};

struct QuickstartConfig {
  std::string experiment = "quickstart";
  uint64_t seed = 0;               ///< passed to every part that does not set its own
  std::string device = "auto";     ///< passed to every part that does not set its own; also the extractor's
  QuickstartAudio audio;
  Json location = Json::object();        ///< a location run config (needs its data); empty object: part skipped
  Json audio_location = Json::object();  ///< a location run config without data.shards (filled in); {}: skipped
  Json vocoder = Json::object();         ///< a vocoder run config without data.audio and mel (filled in); {}: skipped
  Json vae = Json::object();             ///< a VAE run config without data.shards (filled in); {}: skipped
  std::filesystem::path base_dir;  ///< the config file's folder (relative data paths)

  /// Its JSON keys but "task" (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("experiment", s.experiment);
    v("seed", s.seed);
    v("device", s.device);
    v("audio", s.audio);
    v("location", s.location);
    v("audio_location", s.audio_location);
    v("vocoder", s.vocoder, kOmitDefault);  // absent when unset: earlier main jobs keep their identity
    v("vae", s.vae);
  }

  /// Strict parse; the parts are validated by their own parsers (errors name "location.<path>" etc.).
  static QuickstartConfig from_json(const Json& j, const std::filesystem::path& base_dir);
  Json to_json() const;
};

/// Loads CONFIG.json with key=value overrides ("vae.train.steps=5", "audio.places=3") and parses it.
QuickstartConfig load_quickstart_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

struct QuickstartResult {
  std::filesystem::path run_dir;
  std::filesystem::path report;               ///< run_dir/report.html
  std::vector<std::filesystem::path> parts;   ///< run directories of the parts that ran
  std::filesystem::path samples_dir;          ///< vae/samples ("" without a VAE part)
  Json summary;                               ///< per part: its headline metrics (also run_dir/summary.json)
};

/// Runs every part in order; the run directory is created (an existing one with another config is refused,
/// runs/run_dir.h: its config file is quickstart.json and its result summary.json).
QuickstartResult run_quickstart_experiment(const QuickstartConfig& config, const std::filesystem::path& run_dir,
                                           std::ostream& log);

/// The main job's entry in the task table (runs/task.h): parses j as a QuickstartConfig.
PreparedRun prepare_quickstart(const Json& j, const std::filesystem::path& base_dir);

}  // namespace songlines::runs
