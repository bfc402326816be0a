// A coordinate-conditioned convolutional VAE on log-mel segments (docs/vae.md).
//
// Input: normalised log-mel segments x [B, 1, n_mels, frames] (mel_db of the shards, standardised per band).
// The encoder halves both axes per block; the latent is a map z [B, latent_channels, n_mels/2^L, frames/2^L],
// so a long piece is a long latent map and consecutive segments can share latent columns (crossfaded
// generation without seams). The condition is the place: its unit 3-vector plus random Fourier features of it
// (sin/cos of 2*pi*B v, B ~ N(0, fourier_scale^2) fixed by fourier_seed) -> MLP -> an embedding that FiLMs
// every decoder block (and optionally the encoder's).
//
// Against a decoder that ignores the condition: KL warm-up (beta ramps from 0), free bits (per latent channel a
// floor of KL that is not penalised, so the prior is not forced), and an optional latent adversary that tries
// to predict the place from z while the encoder is trained to defeat it (alternating updates).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/json_fields.h"
#include "geo/great_circle.h"

namespace songlines::models {

struct VaeOptions {
  int n_mels = 128;                                ///< mel bands of the input (height)
  int segment_frames = 128;                        ///< frames per segment (width); 128 = 2.97 s at hop 512, 22050 Hz
  std::vector<int> channels = {32, 64, 128, 128};  ///< conv channels per down block (each halves both axes)
  int latent_channels = 16;                        ///< channels of the latent map
  int n_fourier = 16;                              ///< random Fourier frequencies (features: 2*n_fourier + 3)
  double fourier_scale = 4.0;                      ///< std of the Fourier frequency matrix B (cycles per unit)
  int64_t fourier_seed = 1234;                     ///< seed of B (part of the model: saved with it)
  int cond_dim = 64;                               ///< width of the condition embedding
  bool film_encoder = false;  ///< FiLM the encoder too (then reconstruct/transfer need the source place)
  /// A learned prior p(z | place) = N(mu_p, sigma_p^2) per latent channel and row (the same for every column)
  /// instead of N(0, I): the KL pulls each track's latents towards its place's prior, and generation samples
  /// z from the place's prior, so the place reaches the decoder through z as well as through FiLM. On by
  /// default (docs/vae.md: it is what makes generated music sound like its place); checkpoints written before
  /// the option existed load with it off.
  bool conditional_prior = true;
  // ---- loss ----
  double kl_weight = 1.0;         ///< final beta (KL is per input element: ELBO with unit-variance Gaussian)
  int64_t kl_warmup_steps = 1000; ///< beta ramps linearly from 0 to kl_weight over these steps
  double free_bits = 0.02;        ///< nats per latent element, per channel (batch mean), not penalised
  double adversary_weight = 0.0;  ///< weight of the latent location adversary (0: off)

  int downsample() const { return 1 << static_cast<int>(channels.size()); }
  int64_t condition_features() const { return 3 + 2 * static_cast<int64_t>(n_fourier); }
  /// Its JSON keys (core/json_fields.h); "type" is accepted and not written.
  template <class S, class V>
  static void fields(S& s, V& v) {
    v.ignore("type");
    v("n_mels", s.n_mels);
    v("segment_frames", s.segment_frames);
    v("channels", s.channels);
    v("latent_channels", s.latent_channels);
    v("n_fourier", s.n_fourier);
    v("fourier_scale", s.fourier_scale);
    v("fourier_seed", s.fourier_seed);
    v("cond_dim", s.cond_dim);
    v("film_encoder", s.film_encoder);
    v("conditional_prior", s.conditional_prior);
    v("kl_weight", s.kl_weight);
    v("kl_warmup_steps", s.kl_warmup_steps);
    v("free_bits", s.free_bits);
    v("adversary_weight", s.adversary_weight);
  }
  Json to_json() const;
  /// Strict parse (unknown keys and wrong types throw ConfigError naming the path).
  static VaeOptions from_json(const Json& j, const std::string& path = "model");
  /// ConfigError when shapes do not divide or values are out of range.
  void validate(const std::string& path = "model") const;
  bool operator==(const VaeOptions&) const = default;
};

/// Unit 3-vectors [B, 3] (float32) of places.
torch::Tensor places_to_unit_vectors(const std::vector<geo::LatLon>& places);

/// Unit vector + random Fourier features -> MLP -> embedding [B, cond_dim].
class CoordinateEncoderImpl : public torch::nn::Module {
 public:
  explicit CoordinateEncoderImpl(const VaeOptions& o);
  /// v: [B, 3] unit vectors.
  torch::Tensor forward(const torch::Tensor& v);

 private:
  torch::Tensor frequencies_;  ///< [3, n_fourier] buffer
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(CoordinateEncoder);

/// x * (1 + gamma(c)) + beta(c), gamma/beta per channel.
class FilmImpl : public torch::nn::Module {
 public:
  FilmImpl(int64_t cond_dim, int64_t channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);

 private:
  torch::nn::Linear proj_{nullptr};
};
TORCH_MODULE(Film);

struct VaeEncoding {
  torch::Tensor mu;      ///< [B, latent_channels, n_mels/d, frames/d]
  torch::Tensor logvar;  ///< same shape
};

/// The prior of the latent at given places: mean and log-variance [B, latent_channels, n_mels/d, 1] (broadcast
/// over columns); zeros (N(0, I)) without conditional_prior.
struct VaePrior {
  torch::Tensor mu;
  torch::Tensor logvar;
};

class ConditionalVaeImpl : public torch::nn::Module {
 public:
  explicit ConditionalVaeImpl(VaeOptions o);
  const VaeOptions& options() const { return options_; }

  /// x: [B, 1, n_mels, frames] normalised; places: [B, 3] unit vectors (used only when film_encoder).
  VaeEncoding encode(const torch::Tensor& x, const torch::Tensor& places);
  /// z: latent map; places: [B, 3]. Returns [B, 1, n_mels, frames_of(z)].
  torch::Tensor decode(const torch::Tensor& z, const torch::Tensor& places);
  /// The latent's prior at places [B, 3] (see VaePrior).
  VaePrior prior(const torch::Tensor& places);
  /// Location adversary: predicts a unit vector [B, 3] from a latent map (mean over time).
  torch::Tensor adversary(const torch::Tensor& z);
  /// Parameters of the adversary alone, and of everything else.
  std::vector<torch::Tensor> adversary_parameters();
  std::vector<torch::Tensor> vae_parameters();

 private:
  VaeOptions options_;
  CoordinateEncoder cond_enc_{nullptr}, cond_dec_{nullptr}, cond_prior_{nullptr};
  torch::nn::Linear prior_out_{nullptr};
  torch::nn::ModuleList enc_convs_, enc_norms_, enc_films_;
  torch::nn::Conv2d enc_out_{nullptr};
  torch::nn::Conv2d dec_in_{nullptr};
  torch::nn::ModuleList dec_convs_, dec_norms_, dec_films_;
  torch::nn::Conv2d dec_out_{nullptr};
  torch::nn::Sequential adversary_{nullptr};
};
TORCH_MODULE(ConditionalVae);

struct VaeLossParts {
  torch::Tensor total;           ///< what the VAE optimiser minimises
  torch::Tensor reconstruction;  ///< mean squared error per element (normalised units)
  torch::Tensor kl;              ///< KL per input element, before free bits and beta
  torch::Tensor adversary;       ///< 1 - cos(adversary(z), place) (0 when off), as seen by the encoder
  torch::Tensor z;               ///< the sampled latent (for the adversary's own step; detach it)
  double beta = 0;               ///< the warm-up factor applied at this step
};

/// One VAE forward pass with the reparameterisation trick; generator seeds the noise (may be empty).
VaeLossParts vae_loss(ConditionalVae& model, const torch::Tensor& x, const torch::Tensor& places, int64_t step,
                      c10::optional<at::Generator> generator = c10::nullopt);

/// Loss of the adversary alone on detached latents (its own optimiser step).
torch::Tensor adversary_loss(ConditionalVae& model, const torch::Tensor& z_detached, const torch::Tensor& places);

}  // namespace songlines::models
