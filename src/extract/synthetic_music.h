// Seeded, music-like test audio: a melody over a scale at a tempo, with a bass drone, a harmonic timbre and
// percussive noise on the beats. Used by `songlines synthesize` and the main job (the built-in default input: no
// audio files of unknown provenance in the repository) and by tests and experiments that need a synthetic set
// where a parameter (say, a place) changes the music in a controlled way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "geo/great_circle.h"

namespace songlines::extract {

struct SyntheticMusicOptions {
  int sample_rate = 22050;          ///< Hz
  double seconds = 8.0;             ///< length
  double tempo_bpm = 100.0;         ///< beats per minute; one melody note per beat (or half beat, see subdivision)
  int subdivision = 1;              ///< notes per beat (1, 2, 4)
  double tonic_hz = 220.0;          ///< frequency of scale degree 0
  std::vector<int> scale = {0, 2, 4, 5, 7, 9, 11};  ///< semitones above the tonic within an octave (major)
  int octaves = 2;                  ///< melody range in octaves above the tonic
  /// Timbre: amplitude of harmonic k is k^-rolloff (1: sawtooth-like bright, 3: near-sine mellow).
  double harmonic_rolloff = 1.5;
  int n_harmonics = 8;              ///< harmonics per note
  double attack_s = 0.01;           ///< note attack, seconds
  double decay_per_s = 4.0;         ///< exponential note decay rate, 1/s (larger: more plucked)
  double drone_level = 0.3;         ///< level of the tonic drone one octave down (0: none)
  double percussion_level = 0.2;    ///< level of the noise bursts on each beat (0: none)
  double vibrato_cents = 0.0;       ///< vibrato depth, cents (5 Hz)
  double peak = 0.8;                ///< output is scaled to this peak amplitude
  uint64_t seed = 1;                ///< melody, percussion noise
  bool operator==(const SyntheticMusicOptions&) const = default;
};

/// Mono float32 samples, seconds * sample_rate of them, peak-normalized to options.peak. Deterministic for a
/// given options struct (seed included). Throws UsageError for out-of-range options.
std::vector<float> synthesize_music(const SyntheticMusicOptions& options);

/// A named synthetic track of the built-in default input.
struct SyntheticTrack {
  std::string name;               ///< file stem, e.g. "01-major-bright-120bpm"
  std::string description;        ///< scale, tempo and timbre in words
  SyntheticMusicOptions options;
};

/// `songlines synthesize`'s default input: n tracks (8 by default) that differ in scale, tonic, tempo and timbre,
/// each `seconds` long, seeded from `seed`.
std::vector<SyntheticTrack> default_synthetic_tracks(int n = 8, double seconds = 8.0, uint64_t seed = 2024);

/// A place of the synthetic set with a place signal: a capital whose music has one style (scale, tonic range,
/// tempo range, timbre). The pairing of styles and places is invented; only its consistency matters.
struct SyntheticPlace {
  std::string name;      ///< "paris"
  std::string iso2;      ///< "FR"
  geo::LatLon where;     ///< degrees
};

/// The eight places, in the order of the styles they are given.
const std::vector<SyntheticPlace>& synthetic_places();

struct PlacedSyntheticTrack {
  SyntheticPlace place;
  SyntheticTrack track;  ///< name "<place>-<NN>"
};

/// per_place tracks for each of the first n_places places: each varies its place's style (tempo +-8 %, tonic
/// +-1 semitone, timbre, decay, melody), so a location model has something to learn and something to get
/// wrong. Deterministic for (n_places, per_place, seconds, seed) on every platform. UsageError out of range.
std::vector<PlacedSyntheticTrack> placed_synthetic_tracks(int n_places, int per_place, double seconds, uint64_t seed);

}  // namespace songlines::extract
