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

std::vector<SyntheticTrack> default_synthetic_tracks(int n, double seconds, uint64_t seed) {
  struct Style {
    const char* name;
    const char* scale_name;
    std::vector<int> scale;
    double tonic_hz, tempo, rolloff, decay, drone, percussion, vibrato;
    int subdivision;
  };
  // Scales from different traditions, tonics, tempi and timbres, so features differ visibly between tracks.
  static const std::vector<Style> styles = {
      {"major-bright", "major", {0, 2, 4, 5, 7, 9, 11}, 261.63, 120, 1.0, 3.0, 0.2, 0.25, 0, 2},
      {"minor-mellow", "natural minor", {0, 2, 3, 5, 7, 8, 10}, 220.00, 80, 2.5, 2.0, 0.35, 0.1, 8, 1},
      {"pentatonic-plucked", "major pentatonic", {0, 2, 4, 7, 9}, 293.66, 100, 1.5, 7.0, 0.0, 0.3, 0, 2},
      {"hijaz-drone", "hijaz (phrygian dominant)", {0, 1, 4, 5, 7, 8, 10}, 196.00, 70, 1.8, 1.5, 0.6, 0.05, 15, 1},
      {"blues-shuffle", "blues", {0, 3, 5, 6, 7, 10}, 164.81, 140, 1.2, 5.0, 0.15, 0.35, 5, 2},
      {"wholetone-dream", "whole tone", {0, 2, 4, 6, 8, 10}, 329.63, 60, 3.0, 1.0, 0.3, 0.0, 10, 1},
      {"pelog-gamelan", "pelog (approx.)", {0, 1, 3, 7, 8}, 246.94, 110, 0.8, 6.0, 0.25, 0.2, 0, 4},
      {"dorian-folk", "dorian", {0, 2, 3, 5, 7, 9, 10}, 146.83, 96, 2.0, 3.5, 0.45, 0.15, 6, 2},
  };
  std::vector<SyntheticTrack> tracks;
  for (int i = 0; i < n; ++i) {
    const Style& s = styles[static_cast<size_t>(i) % styles.size()];
    SyntheticTrack t;
    const int round = i / static_cast<int>(styles.size());
    char stem[96];
    std::snprintf(stem, sizeof stem, "%02d-%s-%dbpm", i + 1, s.name, static_cast<int>(s.tempo));
    t.name = stem;
    t.options.seconds = seconds;
    t.options.scale = s.scale;
    t.options.tonic_hz = s.tonic_hz * std::pow(2.0, round / 12.0);  // later rounds move up a semitone
    t.options.tempo_bpm = s.tempo;
    t.options.subdivision = s.subdivision;
    t.options.harmonic_rolloff = s.rolloff;
    t.options.decay_per_s = s.decay;
    t.options.drone_level = s.drone;
    t.options.percussion_level = s.percussion;
    t.options.vibrato_cents = s.vibrato;
    t.options.seed = seed * 1000003ULL + static_cast<uint64_t>(i);
    char desc[160];
    std::snprintf(desc, sizeof desc, "%s scale on %.1f Hz, %d bpm, harmonic rolloff %.1f", s.scale_name,
                  t.options.tonic_hz, static_cast<int>(s.tempo), s.rolloff);
    t.description = desc;
    tracks.push_back(std::move(t));
  }
  return tracks;
}

}  // namespace songlines::extract
