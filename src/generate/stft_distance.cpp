#include "generate/stft_distance.h"

#include "generate/mel_spectrogram.h"

namespace songlines::generate {

StftDistance multi_resolution_stft_distance(const torch::Tensor& reference, const torch::Tensor& estimate,
                                            const MultiResolutionStftOptions& o) {
  TORCH_CHECK(reference.dim() == 1 && estimate.dim() == 1, "stft distance: expected mono [n] signals");
  TORCH_CHECK(!o.fft_sizes.empty(), "stft distance: no FFT sizes");
  auto x = reference.to(torch::kFloat32);
  auto y = estimate.to(torch::kFloat32).to(x.device());
  const int64_t n = x.size(0);
  y = y.size(0) >= n ? y.narrow(0, 0, n) : torch::constant_pad_nd(y, {0, n - y.size(0)});
  StftDistance d;
  for (int size : o.fft_sizes) {
    auto X = magnitude_stft(x, size, size / 4);
    auto Y = magnitude_stft(y, size, size / 4);
    const double ref_norm = std::max(X.norm().item<double>(), 1e-12);
    const double sc = (X - Y).norm().item<double>() / ref_norm;
    const double lm = (torch::log(X + o.eps) - torch::log(Y + o.eps)).abs().mean().item<double>();
    d.spectral_convergence += sc;
    d.log_magnitude += lm;
  }
  const double k = static_cast<double>(o.fft_sizes.size());
  d.spectral_convergence /= k;
  d.log_magnitude /= k;
  d.total = d.spectral_convergence + d.log_magnitude;
  return d;
}

}  // namespace songlines::generate

namespace songlines::generate {

double log_spectral_distance(const torch::Tensor& reference, const torch::Tensor& estimate, int64_t n_fft, int64_t hop) {
  TORCH_CHECK(reference.dim() == 1 && estimate.dim() == 1, "log-spectral distance: expected mono [n] signals");
  auto x = reference.to(torch::kFloat32);
  auto y = estimate.to(torch::kFloat32).to(x.device());
  const int64_t n = x.size(0);
  y = y.size(0) >= n ? y.narrow(0, 0, n) : torch::constant_pad_nd(y, {0, n - y.size(0)});
  constexpr double kEps = 1e-8;
  auto db_x = 10.0 * torch::log10(magnitude_stft(x, n_fft, hop).pow(2) + kEps);  // [bins, frames]
  auto db_y = 10.0 * torch::log10(magnitude_stft(y, n_fft, hop).pow(2) + kEps);
  return (db_x - db_y).pow(2).mean(0).sqrt().mean().item<double>();
}

}  // namespace songlines::generate
