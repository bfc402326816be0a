#include "models/vocoder.h"

#include "models/torch_compat.h"

namespace songlines::models {

namespace {
// |S| = exp(min(log|S|, kMaxLogMagnitude)): a full-scale sine has |S| about n_fft / 4 = 512 at n_fft 2048, so
// e^10 (22026) leaves room, and the clamp keeps an untrained head from producing inf.
constexpr double kMaxLogMagnitude = 10.0;
}  // namespace

Json VocoderOptions::to_json() const { return fields_to_json(*this); }

VocoderOptions VocoderOptions::from_json(const Json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path + ": expected object, got " + json_type_name(j));
  return fields_from_json<VocoderOptions>(j, path);
}

void VocoderOptions::validate(const std::string& path) const {
  auto bad = [&](const std::string& key, const std::string& why) { return ConfigError(path + "." + key + ": " + why); };
  if (n_mels <= 0) throw bad("n_mels", "must be positive, got " + std::to_string(n_mels));
  if (n_fft < 4 || n_fft % 2 != 0) throw bad("n_fft", "must be even and >= 4, got " + std::to_string(n_fft));
  if (hop_length <= 0 || hop_length > n_fft)
    throw bad("hop_length", "must be in 1..n_fft, got " + std::to_string(hop_length));
  if (dim <= 0) throw bad("dim", "must be positive, got " + std::to_string(dim));
  if (intermediate_dim <= 0) throw bad("intermediate_dim", "must be positive, got " + std::to_string(intermediate_dim));
  if (blocks < 0) throw bad("blocks", "must be >= 0, got " + std::to_string(blocks));
  if (kernel_size <= 0 || kernel_size % 2 == 0) throw bad("kernel_size", "must be odd and positive, got " + std::to_string(kernel_size));
}

ConvNextBlockImpl::ConvNextBlockImpl(int64_t dim, int64_t intermediate_dim, int64_t kernel_size, double layer_scale) {
  dwconv_ = register_module(
      "dwconv", torch::nn::Conv1d(torch::nn::Conv1dOptions(dim, dim, kernel_size).padding(kernel_size / 2).groups(dim)));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  pw1_ = register_module("pw1", torch::nn::Linear(dim, intermediate_dim));
  pw2_ = register_module("pw2", torch::nn::Linear(intermediate_dim, dim));
  gamma_ = register_parameter("gamma", torch::full({dim}, layer_scale));
}

torch::Tensor ConvNextBlockImpl::forward(const torch::Tensor& x) {
  auto h = dwconv_->forward(x).transpose(1, 2);  // [B, T, dim]
  h = pw2_->forward(torch::gelu(pw1_->forward(norm_->forward(h))));
  return x + (gamma_ * h).transpose(1, 2);
}

VocoderImpl::VocoderImpl(VocoderOptions o) : options_(std::move(o)) {
  options_.validate();
  band_mean_ = register_buffer("band_mean", torch::zeros({options_.n_mels}));
  band_std_ = register_buffer("band_std", torch::ones({options_.n_mels}));
  embed_ = register_module("embed", torch::nn::Conv1d(torch::nn::Conv1dOptions(options_.n_mels, options_.dim, 7).padding(3)));
  embed_norm_ = register_module("embed_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.dim}).eps(1e-6)));
  // Vocos's layer scale: 1 / blocks, so the trunk starts close to the identity.
  const double scale = 1.0 / std::max(1, options_.blocks);
  for (int i = 0; i < options_.blocks; ++i)
    blocks_->push_back(ConvNextBlock(options_.dim, options_.intermediate_dim, options_.kernel_size, scale));
  register_module("blocks", blocks_);
  final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.dim}).eps(1e-6)));
  head_ = register_module("head", torch::nn::Linear(options_.dim, 2 * options_.n_bins()));
}

void VocoderImpl::set_normalisation(const torch::Tensor& band_mean, const torch::Tensor& band_std) {
  TORCH_CHECK(band_mean.numel() == options_.n_mels && band_std.numel() == options_.n_mels,
              "vocoder normalisation: expected [", options_.n_mels, "] mean and std, got ", band_mean.sizes(), " and ",
              band_std.sizes());
  torch::NoGradGuard ng;
  band_mean_.copy_(band_mean.reshape({options_.n_mels}).to(band_mean_.device(), torch::kFloat32));
  band_std_.copy_(band_std.reshape({options_.n_mels}).to(band_std_.device(), torch::kFloat32));
}

torch::Tensor VocoderImpl::spectrum(const torch::Tensor& mel_db) {
  TORCH_CHECK(mel_db.dim() == 3 && mel_db.size(2) == options_.n_mels, "vocoder: expected mel_db [B, frames, ",
              options_.n_mels, "], got ", mel_db.sizes());
  auto x = ((mel_db.to(band_mean_.device(), torch::kFloat32) - band_mean_) / band_std_).transpose(1, 2);  // [B, n_mels, T]
  auto h = embed_norm_->forward(embed_->forward(x).transpose(1, 2)).transpose(1, 2);               // [B, dim, T]
  for (const auto& block : *blocks_) h = block->as<ConvNextBlock>()->forward(h);
  auto out = head_->forward(final_norm_->forward(h.transpose(1, 2))).transpose(1, 2);  // [B, 2 n_bins, T]
  const int64_t nb = options_.n_bins();
  auto magnitude = torch::exp(torch::clamp_max(out.narrow(1, 0, nb), kMaxLogMagnitude));
  auto phase = out.narrow(1, nb, nb);
  return torch::complex(magnitude * torch::cos(phase), magnitude * torch::sin(phase));
}

torch::Tensor VocoderImpl::forward(const torch::Tensor& mel_db, int64_t length) {
  const int64_t frames = mel_db.size(1);
  const int64_t hop = options_.hop_length;
  TORCH_CHECK(frames >= 1 && length >= (frames - 1) * hop && length < frames * hop, "vocoder: ", frames,
              " frames make ", (frames - 1) * hop, "..", frames * hop - 1, " samples, not ", length);
  auto spec = spectrum(mel_db);
  auto window = torch::hann_window(options_.n_fft, torch::TensorOptions().dtype(torch::kFloat32).device(spec.device()));
  if (length == 0) return torch::zeros({spec.size(0), 0}, window.options());
  return torch_compat::istft(spec, options_.n_fft, hop, window, /*center=*/true, length);
}

}  // namespace songlines::models
