// A synthetic data set: synthesizes seeded music-like tracks (synthetic_music.h), optionally with a place signal,
// writes them as WAV into OUT/audio, extracts their features into OUT/features (shards + features.csv) and
// returns what a summary needs. Used by the main job (runs/quickstart.h) and `songlines synthesize`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "extract/extract.h"
#include "extract/synthetic_music.h"

namespace songlines::extract {

struct SyntheticSetOptions {
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

struct SyntheticSet {
  std::vector<SyntheticTrack> tracks;
  std::vector<SyntheticPlace> track_places;  ///< per track, when options.places > 0
  std::filesystem::path audio_dir;
  std::filesystem::path features_dir;
  ExtractResult extract;
};

/// Synthesizes the set and extracts it. OUT/features is replaced when it holds an earlier set's extraction (it
/// has a .extract-journal); any other non-empty OUT/features is left alone and is an error.
SyntheticSet synthesize_and_extract(const SyntheticSetOptions& options);

}  // namespace songlines::extract
