#include "models/vae.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace songlines::models {

namespace {
constexpr int64_t kGroups = 4;  // GroupNorm groups: batch-size independent, deterministic
int64_t groups_for(int64_t channels) { return channels % kGroups == 0 ? kGroups : 1; }
}  // namespace

Json VaeOptions::to_json() const { return fields_to_json(*this); }

VaeOptions VaeOptions::from_json(const Json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path + ": expected object, got " + json_type_name(j));
  return fields_from_json<VaeOptions>(j, path);
}

void VaeOptions::validate(const std::string& path) const {
  auto bad = [&](const std::string& key, const std::string& why) { return ConfigError(path + "." + key + ": " + why); };
  if (channels.empty()) throw bad("channels", "needs at least one block");
  for (int c : channels)
    if (c <= 0) throw bad("channels", "every entry must be positive, got " + std::to_string(c));
  const int d = downsample();
  if (n_mels <= 0 || n_mels % d != 0)
    throw bad("n_mels", std::to_string(n_mels) + " is not a positive multiple of 2^blocks = " + std::to_string(d));
  if (segment_frames <= 0 || segment_frames % d != 0)
    throw bad("segment_frames",
              std::to_string(segment_frames) + " is not a positive multiple of 2^blocks = " + std::to_string(d));
  if (latent_channels <= 0) throw bad("latent_channels", "must be positive");
  if (n_fourier < 0) throw bad("n_fourier", "must be >= 0");
  if (cond_dim <= 0) throw bad("cond_dim", "must be positive");
  if (kl_weight < 0 || free_bits < 0 || adversary_weight < 0 || kl_warmup_steps < 0)
    throw ConfigError(path + ": kl_weight, free_bits, adversary_weight and kl_warmup_steps must be >= 0");
}

torch::Tensor places_to_unit_vectors(const std::vector<geo::LatLon>& places) {
  auto v = torch::empty({static_cast<int64_t>(places.size()), 3}, torch::kFloat32);
  auto a = v.accessor<float, 2>();
  for (size_t i = 0; i < places.size(); ++i) {
    const geo::Vec3 u = geo::to_unit_vector(places[i]);
    for (int k = 0; k < 3; ++k) a[static_cast<int64_t>(i)][k] = static_cast<float>(u[k]);
  }
  return v;
}

// ---- condition ----------------------------------------------------------------------------------------------
CoordinateEncoderImpl::CoordinateEncoderImpl(const VaeOptions& o) {
  // B is fixed by a seed of its own so that the same options always give the same features (it is also saved).
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(o.fourier_seed));
  frequencies_ = register_buffer(
      "frequencies", torch::randn({3, o.n_fourier}, gen, torch::kFloat32) * static_cast<float>(o.fourier_scale));
  fc1_ = register_module("fc1", torch::nn::Linear(o.condition_features(), o.cond_dim));
  fc2_ = register_module("fc2", torch::nn::Linear(o.cond_dim, o.cond_dim));
}

torch::Tensor CoordinateEncoderImpl::forward(const torch::Tensor& v) {
  // v: [B, 3]; projection [B, n_fourier] = v @ B; features [B, 3 + 2 n_fourier].
  auto proj = torch::matmul(v, frequencies_) * (2.0 * M_PI);
  auto f = torch::cat({v, torch::sin(proj), torch::cos(proj)}, 1);
  return fc2_(torch::silu(fc1_(f)));
}

FilmImpl::FilmImpl(int64_t cond_dim, int64_t channels) {
  proj_ = register_module("proj", torch::nn::Linear(cond_dim, 2 * channels));
  // Start as the identity so an untrained condition does not disturb the signal path.
  torch::NoGradGuard ng;
  proj_->weight.mul_(0.1);
  proj_->bias.zero_();
}

torch::Tensor FilmImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto gb = proj_(c).unsqueeze(-1).unsqueeze(-1);  // [B, 2C, 1, 1]
  auto parts = gb.chunk(2, 1);
  return x * (1 + parts[0]) + parts[1];
}

// ---- VAE ----------------------------------------------------------------------------------------------------
ConditionalVaeImpl::ConditionalVaeImpl(VaeOptions o) : options_(std::move(o)) {
  options_.validate();
  const auto& ch = options_.channels;
  const int64_t L = static_cast<int64_t>(ch.size());
  cond_dec_ = register_module("cond_dec", CoordinateEncoder(options_));
  if (options_.film_encoder) cond_enc_ = register_module("cond_enc", CoordinateEncoder(options_));

  int64_t cin = 1;
  for (int64_t i = 0; i < L; ++i) {
    enc_convs_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, ch[i], 4).stride(2).padding(1)));
    enc_norms_->push_back(torch::nn::GroupNorm(groups_for(ch[i]), ch[i]));
    if (options_.film_encoder) enc_films_->push_back(Film(options_.cond_dim, ch[i]));
    cin = ch[i];
  }
  register_module("enc_convs", enc_convs_);
  register_module("enc_norms", enc_norms_);
  register_module("enc_films", enc_films_);
  enc_out_ = register_module("enc_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, 2 * options_.latent_channels, 1)));

  dec_in_ = register_module("dec_in",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(options_.latent_channels, ch[L - 1], 3).padding(1)));
  // Decoder block i (from the deepest): FiLM + SiLU at width ch[L-1-i], then upsample to ch[L-2-i] (or ch[0]).
  for (int64_t i = 0; i < L; ++i) {
    const int64_t c = ch[L - 1 - i];
    const int64_t cout = i + 1 < L ? ch[L - 2 - i] : ch[0];
    dec_norms_->push_back(torch::nn::GroupNorm(groups_for(c), c));
    dec_films_->push_back(Film(options_.cond_dim, c));
    dec_convs_->push_back(
        torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(c, cout, 4).stride(2).padding(1)));
  }
  register_module("dec_convs", dec_convs_);
  register_module("dec_norms", dec_norms_);
  register_module("dec_films", dec_films_);
  dec_out_ = register_module("dec_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch[0], 1, 3).padding(1)));

  const int64_t zh = options_.n_mels / options_.downsample();
  if (options_.conditional_prior) {
    cond_prior_ = register_module("cond_prior", CoordinateEncoder(options_));
    prior_out_ = register_module("prior_out", torch::nn::Linear(options_.cond_dim, 2 * options_.latent_channels * zh));
    torch::NoGradGuard ng;  // start at N(0, I), the unconditional prior
    prior_out_->weight.mul_(0.1);
    prior_out_->bias.zero_();
  }
  adversary_ = register_module(
      "adversary", torch::nn::Sequential(torch::nn::Linear(options_.latent_channels * zh, 64), torch::nn::SiLU(),
                                         torch::nn::Linear(64, 3)));
}

VaeEncoding ConditionalVaeImpl::encode(const torch::Tensor& x, const torch::Tensor& places) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == options_.n_mels,
              "VAE encode: expected [B, 1, ", options_.n_mels, ", frames], got ", x.sizes());
  TORCH_CHECK(x.size(3) % options_.downsample() == 0, "VAE encode: frames ", x.size(3),
              " not a multiple of ", options_.downsample());
  torch::Tensor c;
  if (options_.film_encoder) c = cond_enc_(places);
  auto h = x;
  for (size_t i = 0; i < enc_convs_->size(); ++i) {
    h = enc_convs_[i]->as<torch::nn::Conv2d>()->forward(h);
    h = enc_norms_[i]->as<torch::nn::GroupNorm>()->forward(h.to(torch::kFloat32));  // kFloat32: see decode
    if (options_.film_encoder) h = enc_films_[i]->as<Film>()->forward(h, c);
    h = torch::silu(h);
  }
  auto out = enc_out_(h).chunk(2, 1);
  // logvar bounded to keep exp() finite early in training.
  return {out[0], torch::clamp(out[1], -10.0, 10.0)};
}

torch::Tensor ConditionalVaeImpl::decode(const torch::Tensor& z, const torch::Tensor& places) {
  auto c = cond_dec_(places);
  auto h = dec_in_(z);
  for (size_t i = 0; i < dec_convs_->size(); ++i) {
    // Normalised in float32: what CUDA autocast does for group_norm, and 1.13's CPU autocast cannot mix a
    // bfloat16 input with float32 affine weights (a no-op without autocast).
    h = dec_norms_[i]->as<torch::nn::GroupNorm>()->forward(h.to(torch::kFloat32));
    h = torch::silu(dec_films_[i]->as<Film>()->forward(h, c));
    h = dec_convs_[i]->as<torch::nn::ConvTranspose2d>()->forward(h);
  }
  return dec_out_(torch::silu(h));
}

VaePrior ConditionalVaeImpl::prior(const torch::Tensor& places) {
  const int64_t zh = options_.n_mels / options_.downsample();
  const int64_t B = places.size(0);
  if (!options_.conditional_prior) {
    auto zeros = torch::zeros({B, options_.latent_channels, zh, 1}, places.options());
    return {zeros, zeros};
  }
  auto out = prior_out_(cond_prior_(places)).view({B, 2 * options_.latent_channels, zh, 1}).chunk(2, 1);
  return {out[0], torch::clamp(out[1], -10.0, 10.0)};
}

torch::Tensor ConditionalVaeImpl::adversary(const torch::Tensor& z) {
  auto pooled = z.mean(3).flatten(1);  // [B, latent_channels * zh]
  return torch::nn::functional::normalize(adversary_->forward(pooled),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

std::vector<torch::Tensor> ConditionalVaeImpl::adversary_parameters() { return adversary_->parameters(); }

std::vector<torch::Tensor> ConditionalVaeImpl::vae_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters()) {
    if (item.key().rfind("adversary.", 0) == 0) continue;
    out.push_back(item.value());
  }
  return out;
}

VaeLossParts vae_loss(ConditionalVae& model, const torch::Tensor& x, const torch::Tensor& places, int64_t step,
                      c10::optional<at::Generator> generator) {
  const auto& o = model->options();
  // Under bf16 autocast the convolutions return bfloat16; the sampling and every loss term are computed in
  // float32 (no-ops in float32 training).
  auto enc = model->encode(x, places);
  enc.mu = enc.mu.to(torch::kFloat32);
  enc.logvar = enc.logvar.to(torch::kFloat32);
  auto eps = torch::randn(enc.mu.sizes(), generator, enc.mu.options());
  auto z = enc.mu + torch::exp(0.5 * enc.logvar) * eps;
  auto xhat = model->decode(z, places).to(torch::kFloat32);

  VaeLossParts parts;
  parts.reconstruction = torch::mse_loss(xhat, x);
  // KL(q || p) per latent element, p = N(mu_p, e^lv_p) (N(0, I) without conditional_prior):
  // 0.5 (lv_p - lv + (e^lv + (mu - mu_p)^2) / e^lv_p - 1); per channel mean over batch and positions.
  torch::Tensor kl_elem;
  if (o.conditional_prior) {
    VaePrior p = model->prior(places);
    p.mu = p.mu.to(torch::kFloat32);
    p.logvar = p.logvar.to(torch::kFloat32);
    kl_elem = 0.5 * (p.logvar - enc.logvar + (enc.logvar.exp() + (enc.mu - p.mu).pow(2)) * torch::exp(-p.logvar) - 1.0);
  } else {
    kl_elem = 0.5 * (enc.mu.pow(2) + enc.logvar.exp() - 1.0 - enc.logvar);
  }
  auto kl_channel = kl_elem.mean({0, 2, 3});  // [latent_channels]
  const double latent_per_input =
      static_cast<double>(enc.mu.size(2) * enc.mu.size(3)) / static_cast<double>(x.size(2) * x.size(3));
  parts.kl = kl_channel.sum() * latent_per_input;
  auto kl_free = torch::clamp_min(kl_channel, o.free_bits).sum() * latent_per_input;
  parts.beta = o.kl_warmup_steps > 0 ? std::min(1.0, static_cast<double>(step) / o.kl_warmup_steps) : 1.0;
  parts.total = parts.reconstruction + parts.beta * o.kl_weight * kl_free;
  if (o.adversary_weight > 0) {
    // The encoder is rewarded for latents the adversary cannot place (its own step uses detached z).
    parts.adversary = (1 - (model->adversary(z).to(torch::kFloat32) * places).sum(1)).mean();
    parts.total = parts.total - o.adversary_weight * parts.adversary;
  } else {
    parts.adversary = torch::zeros({}, x.options());
  }
  parts.z = z;
  return parts;
}

torch::Tensor adversary_loss(ConditionalVae& model, const torch::Tensor& z_detached, const torch::Tensor& places) {
  return (1 - (model->adversary(z_detached).to(torch::kFloat32) * places).sum(1)).mean();
}

}  // namespace songlines::models
