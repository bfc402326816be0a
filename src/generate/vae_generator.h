// Audio from a trained VAE: generation for a place or along a journey, reconstruction and transfer of a real
// track. Any length: the latent is one long map [1, latent_channels, n_mels/d, W] and the decoder runs on
// overlapping windows of it (one segment each), crossfaded linearly in the mel_db domain; one Griffin-Lim pass
// over the whole spectrogram then gives a waveform without seams. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "generate/griffin_lim.h"
#include "generate/vae_bundle.h"

namespace songlines::generate {

/// The longest piece one generate call makes: it is built whole in memory (about 5 MB per second of audio).
inline constexpr double kMaxGenerateSeconds = 1200.0;

/// The most Griffin-Lim iterations a command or config may ask for.
inline constexpr int kMaxGriffinLimIterations = 10000;

/// Empty when n is in 1..kMaxGriffinLimIterations, otherwise what is wrong with it (for the caller's error).
inline std::string griffin_lim_iterations_problem(int n) {
  if (n >= 1 && n <= kMaxGriffinLimIterations) return {};
  return "must be in 1.." + std::to_string(kMaxGriffinLimIterations) + ", got " + std::to_string(n);
}

struct GenerateOptions {
  double seconds = 10.0;      ///< output length
  uint64_t seed = 0;          ///< latent noise and Griffin-Lim phases
  double temperature = 1.0;   ///< scale of the prior noise (0: the prior mean)
  geo::LatLon place;          ///< the condition (journey start when `to` is set)
  std::optional<geo::LatLon> to;  ///< journey end: the condition moves along the great circle
  int overlap_frames = 0;     ///< frames shared by consecutive segments; 0: segment_frames / 4 (rounded to d)
  int griffin_lim_iterations = 32;  ///< fast Griffin-Lim iterations
  int nnls_iterations = 30;   ///< mel -> linear magnitude iterations
};

/// The condition at fraction t in [0, 1] of the piece.
geo::LatLon condition_at(const GenerateOptions& o, double t);

/// mel_db [frames, n_mels] for o.seconds of audio (frames = 1 + samples / hop). Throws UsageError naming the
/// option for a length outside (0, kMaxGenerateSeconds], a negative temperature or Griffin-Lim iterations
/// outside 1..10000.
torch::Tensor generate_mel_db(VaeBundle& bundle, const GenerateOptions& o);

/// mel_db [frames, n_mels] -> waveform [length] through the bundle's vocoder when it has one, else NNLS and fast
/// Griffin-Lim (seed, iterations); peak-limited to 0.99.
torch::Tensor mel_db_to_audio(const VaeBundle& bundle, const torch::Tensor& mel_db, int64_t length, uint64_t seed,
                              int griffin_lim_iterations = 32, int nnls_iterations = 30);

/// generate_mel_db then mel_db_to_audio: float samples at bundle.audio.sample_rate, round(seconds * sr) long.
std::vector<float> generate_audio(VaeBundle& bundle, const GenerateOptions& o);

/// mel_db [frames, n_mels] encoded (posterior mean) under encode_place and decoded under decode_place with
/// generation's crossfaded windows: [frames, n_mels] (on the bundle's device). With a conditional prior the
/// latent is moved from encode_place's prior to decode_place's (standardised offset kept), so encode_place is
/// the track's own place (or the best guess of it) even when the encoder is not conditioned.
torch::Tensor transfer_mel_db(VaeBundle& bundle, const torch::Tensor& mel_db, geo::LatLon encode_place,
                              geo::LatLon decode_place);
/// Encode a waveform's mel_db (posterior mean; the encoder is given encode_place when it is conditioned) and
/// decode it under decode_place: reconstruction when both are the source's place, transfer otherwise.
/// Returns samples of the same length.
std::vector<float> transfer_audio(VaeBundle& bundle, const std::vector<float>& samples, geo::LatLon encode_place,
                                  geo::LatLon decode_place, uint64_t seed = 0, int griffin_lim_iterations = 32);

}  // namespace songlines::generate
