#include "extract/synthetic_music.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>

#include "core/error.h"

namespace songlines::extract {

std::vector<float> synthesize_music(const SyntheticMusicOptions& o) {
  if (o.sample_rate < 1000 || o.seconds <= 0 || o.tempo_bpm <= 0 || o.subdivision < 1 || o.tonic_hz <= 0 ||
      o.scale.empty() || o.octaves < 1 || o.n_harmonics < 1 || o.peak <= 0 || o.peak > 1)
    throw UsageError("synthesize_music: need sample_rate >= 1000, seconds > 0, tempo_bpm > 0, subdivision >= 1, "
                     "tonic_hz > 0, a non-empty scale, octaves >= 1, n_harmonics >= 1 and 0 < peak <= 1");
  const double sr = o.sample_rate;
  const auto n = static_cast<size_t>(std::llround(o.seconds * sr));
  std::vector<double> y(n, 0.0);
  std::mt19937_64 rng(o.seed);
  const double two_pi = 2.0 * std::numbers::pi;
  const double beat_s = 60.0 / o.tempo_bpm;
  const double note_s = beat_s / o.subdivision;
  const double nyquist = sr / 2;

  // Melody: a random walk over scale degrees (steps of -2..2), so it sounds like a line, not noise.
  const int degrees = static_cast<int>(o.scale.size()) * o.octaves;
  std::uniform_int_distribution<int> step(-2, 2);
  int degree = degrees / 2;
  const auto n_notes = static_cast<size_t>(std::ceil(o.seconds / note_s));
  for (size_t k = 0; k < n_notes; ++k) {
    degree = std::clamp(degree + step(rng), 0, degrees - 1);
    const int semis = 12 * (degree / static_cast<int>(o.scale.size())) + o.scale[degree % o.scale.size()];
    const double f0 = o.tonic_hz * std::pow(2.0, semis / 12.0);
    const auto start = static_cast<size_t>(k * note_s * sr);
    const auto len = static_cast<size_t>(note_s * sr * 1.5);  // notes ring a little into the next one
    for (size_t i = 0; i < len && start + i < n; ++i) {
      const double t = i / sr;
      const double env = std::min(1.0, t / o.attack_s) * std::exp(-o.decay_per_s * t);
      const double vib = std::pow(2.0, o.vibrato_cents / 1200.0 * std::sin(two_pi * 5.0 * t));
      double s = 0;
      for (int h = 1; h <= o.n_harmonics; ++h) {
        if (f0 * h >= nyquist) break;
        s += std::pow(h, -o.harmonic_rolloff) * std::sin(two_pi * f0 * h * vib * t);
      }
      y[start + i] += env * s;
    }
  }
  // Drone: tonic and fifth one octave down, steady.
  if (o.drone_level > 0) {
    for (size_t i = 0; i < n; ++i) {
      const double t = i / sr;
      y[i] += o.drone_level * (std::sin(two_pi * o.tonic_hz / 2 * t) + 0.5 * std::sin(two_pi * o.tonic_hz * 0.75 * t));
    }
  }
  // Percussion: a decaying noise burst on each beat.
  if (o.percussion_level > 0) {
    std::normal_distribution<double> noise(0.0, 1.0);
    const auto n_beats = static_cast<size_t>(std::ceil(o.seconds / beat_s));
    const auto burst = static_cast<size_t>(0.08 * sr);
    for (size_t b = 0; b < n_beats; ++b) {
      const auto start = static_cast<size_t>(b * beat_s * sr);
      for (size_t i = 0; i < burst && start + i < n; ++i) y[start + i] += o.percussion_level * noise(rng) * std::exp(-40.0 * i / sr);
    }
  }
  double peak = 0;
  for (double v : y) peak = std::max(peak, std::fabs(v));
  std::vector<float> out(n);
  const double scale = peak > 0 ? o.peak / peak : 0.0;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(y[i] * scale);
  return out;
}

namespace {

struct Style {
  const char* name;
  const char* scale_name;
  std::vector<int> scale;
  double tonic_hz, tempo, rolloff, decay, drone, percussion, vibrato;
  int subdivision;
};

// Scales from different traditions, tonics, tempi and timbres, so features differ visibly between tracks.
const std::vector<Style>& styles() {
  static const std::vector<Style> table = {
      {"major-bright", "major", {0, 2, 4, 5, 7, 9, 11}, 261.63, 120, 1.0, 3.0, 0.2, 0.25, 0, 2},
      {"minor-mellow", "natural minor", {0, 2, 3, 5, 7, 8, 10}, 220.00, 80, 2.5, 2.0, 0.35, 0.1, 8, 1},
      {"pentatonic-plucked", "major pentatonic", {0, 2, 4, 7, 9}, 293.66, 100, 1.5, 7.0, 0.0, 0.3, 0, 2},
      {"hijaz-drone", "hijaz (phrygian dominant)", {0, 1, 4, 5, 7, 8, 10}, 196.00, 70, 1.8, 1.5, 0.6, 0.05, 15, 1},
      {"blues-shuffle", "blues", {0, 3, 5, 6, 7, 10}, 164.81, 140, 1.2, 5.0, 0.15, 0.35, 5, 2},
      {"wholetone-dream", "whole tone", {0, 2, 4, 6, 8, 10}, 329.63, 60, 3.0, 1.0, 0.3, 0.0, 10, 1},
      {"pelog-gamelan", "pelog (approx.)", {0, 1, 3, 7, 8}, 246.94, 110, 0.8, 6.0, 0.25, 0.2, 0, 4},
      {"dorian-folk", "dorian", {0, 2, 3, 5, 7, 9, 10}, 146.83, 96, 2.0, 3.5, 0.45, 0.15, 6, 2},
  };
  return table;
}

void apply_style(const Style& s, SyntheticMusicOptions& o) {
  o.scale = s.scale;
  o.tonic_hz = s.tonic_hz;
  o.tempo_bpm = s.tempo;
  o.subdivision = s.subdivision;
  o.harmonic_rolloff = s.rolloff;
  o.decay_per_s = s.decay;
  o.drone_level = s.drone;
  o.percussion_level = s.percussion;
  o.vibrato_cents = s.vibrato;
}

/// Uniform in [0, 1) from a 64-bit state (splitmix64): the same numbers on every platform and standard library.
double next_unit(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

std::vector<SyntheticTrack> default_synthetic_tracks(int n, double seconds, uint64_t seed) {
  const auto& table = styles();
  std::vector<SyntheticTrack> tracks;
  for (int i = 0; i < n; ++i) {
    const Style& s = table[static_cast<size_t>(i) % table.size()];
    SyntheticTrack t;
    const int round = i / static_cast<int>(table.size());
    char stem[96];
    std::snprintf(stem, sizeof stem, "%02d-%s-%dbpm", i + 1, s.name, static_cast<int>(s.tempo));
    t.name = stem;
    t.options.seconds = seconds;
    apply_style(s, t.options);
    t.options.tonic_hz = s.tonic_hz * std::pow(2.0, round / 12.0);  // later rounds move up a semitone
    t.options.seed = seed * 1000003ULL + static_cast<uint64_t>(i);
    char desc[160];
    std::snprintf(desc, sizeof desc, "%s scale on %.1f Hz, %d bpm, harmonic rolloff %.1f", s.scale_name,
                  t.options.tonic_hz, static_cast<int>(s.tempo), s.rolloff);
    t.description = desc;
    tracks.push_back(std::move(t));
  }
  return tracks;
}

const std::vector<SyntheticPlace>& synthetic_places() {
  // Capitals (coordinates rounded to 0.01 degree) paired with the styles in order; the pairing is invented.
  static const std::vector<SyntheticPlace> places = {
      {"vienna", "AT", {48.21, 16.37}},     {"moscow", "RU", {55.76, 37.62}},   {"beijing", "CN", {39.90, 116.41}},
      {"cairo", "EG", {30.04, 31.24}},      {"washington", "US", {38.90, -77.04}}, {"paris", "FR", {48.86, 2.35}},
      {"jakarta", "ID", {-6.21, 106.85}},   {"dublin", "IE", {53.35, -6.26}},
  };
  return places;
}

std::vector<PlacedSyntheticTrack> placed_synthetic_tracks(int n_places, int per_place, double seconds, uint64_t seed) {
  const auto& places = synthetic_places();
  const auto& table = styles();
  if (n_places < 1 || n_places > static_cast<int>(places.size()))
    throw UsageError("synthetic places: " + std::to_string(n_places) + " places asked for, 1.." +
                     std::to_string(places.size()) + " exist");
  if (per_place < 1) throw UsageError("synthetic places: tracks per place must be >= 1, got " + std::to_string(per_place));
  std::vector<PlacedSyntheticTrack> tracks;
  for (int p = 0; p < n_places; ++p) {
    const Style& s = table[static_cast<size_t>(p)];
    for (int r = 0; r < per_place; ++r) {
      PlacedSyntheticTrack t;
      t.place = places[static_cast<size_t>(p)];
      t.track.options.seconds = seconds;
      apply_style(s, t.track.options);
      // Each track varies its place's style: tempo +-8 %, tonic +-1 semitone, timbre and decay, melody seed.
      uint64_t state = seed * 0x2545F4914F6CDD1DULL + static_cast<uint64_t>(p) * 1000 + static_cast<uint64_t>(r);
      auto& o = t.track.options;
      o.tempo_bpm *= 0.92 + 0.16 * next_unit(state);
      o.tonic_hz *= std::pow(2.0, (2.0 * next_unit(state) - 1.0) / 12.0);
      o.harmonic_rolloff = std::max(0.5, o.harmonic_rolloff + 0.4 * next_unit(state) - 0.2);
      o.decay_per_s *= 0.8 + 0.4 * next_unit(state);
      o.seed = seed * 1000003ULL + static_cast<uint64_t>(p) * 1000 + static_cast<uint64_t>(r);
      char stem[96];
      std::snprintf(stem, sizeof stem, "%s-%02d", t.place.name.c_str(), r + 1);
      t.track.name = stem;
      char desc[192];
      std::snprintf(desc, sizeof desc, "%s: %s scale on %.1f Hz, %.0f bpm, harmonic rolloff %.2f", t.place.name.c_str(),
                    s.scale_name, o.tonic_hz, o.tempo_bpm, o.harmonic_rolloff);
      t.track.description = desc;
      tracks.push_back(std::move(t));
    }
  }
  return tracks;
}

}  // namespace songlines::extract
