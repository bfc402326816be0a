// `songlines quickstart`: the README's main job for now. Synthesizes the built-in default input
// (synthetic_music.h), writes it as WAV into OUT/audio, extracts features into OUT/features (shards +
// features.csv) and returns what a summary needs. Later issues grow it into the full experiment.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "extract/extract.h"
#include "extract/synthetic_music.h"

namespace songlines::extract {

struct QuickstartOptions {
  std::filesystem::path output_dir = "runs/quickstart";  ///< OUT; audio/ and features/ are created inside
  int n_tracks = 8;                                      ///< synthetic tracks
  double seconds = 8.0;                                  ///< length of each track
  uint64_t seed = 2024;                                  ///< synthesizer seed
  /// With places > 0: placed_synthetic_tracks(places, tracks_per_place) instead of n_tracks unplaced ones, and
  /// OUT/audio/catalog.csv with each track's place (track_id, location, country, latitude, longitude), so the
  /// shards carry coordinates for the location model and the VAE.
  int places = 0;
  int tracks_per_place = 5;
  std::vector<std::string> features;                     ///< features to extract (empty: all)
  int jobs = 0;                                          ///< extract worker threads (0: all cores)
  features::Device device = features::Device::kAuto;
  ProgressMode progress = ProgressMode::kAuto;
};

struct QuickstartResult {
  std::vector<SyntheticTrack> tracks;
  std::vector<SyntheticPlace> track_places;  ///< per track, when options.places > 0
  std::filesystem::path audio_dir;
  std::filesystem::path features_dir;
  ExtractResult extract;
};

/// Runs the whole job. OUT/features is replaced when it holds an earlier quickstart's extraction (it has a
/// .extract-journal); any other non-empty OUT/features is left alone and is an error.
QuickstartResult run_quickstart(const QuickstartOptions& options);

}  // namespace songlines::extract
