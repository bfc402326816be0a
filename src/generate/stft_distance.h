// Multi-resolution STFT distance between a reference and an estimate (the reconstruction metric of docs/vae.md):
// for each FFT size n (2048, 1024, 512, 256, 128), hop n/4, periodic Hann window, magnitudes X (reference) and
// Y (estimate), spectral convergence ||X - Y||_F / ||X||_F plus log-magnitude L1 mean|log(X+eps) - log(Y+eps)|;
// the distance is the mean of the sum over resolutions. Phase-blind, so Griffin-Lim output can be scored.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace songlines::generate {

struct MultiResolutionStftOptions {
  std::vector<int> fft_sizes = {2048, 1024, 512, 256, 128};  ///< samples; hop = n/4
  double eps = 1e-5;                                        ///< magnitude floor inside the log
};

struct StftDistance {
  double total = 0;                 ///< mean over resolutions of spectral_convergence + log_magnitude
  double spectral_convergence = 0;  ///< mean over resolutions
  double log_magnitude = 0;         ///< mean over resolutions
};

/// reference, estimate: mono [n] (the estimate is cut or zero-padded to the reference length).
StftDistance multi_resolution_stft_distance(const torch::Tensor& reference, const torch::Tensor& estimate,
                                            const MultiResolutionStftOptions& o = {});

}  // namespace songlines::generate

namespace songlines::generate {

/// Log-spectral distance in dB between reference and estimate (mono [n]; the estimate cut or zero-padded to the
/// reference's length): per frame sqrt(mean over bins of (10 log10(|X|^2 + eps) - 10 log10(|Y|^2 + eps))^2),
/// averaged over frames; STFT of n_fft, hop (centered, periodic Hann), eps = 1e-8.
double log_spectral_distance(const torch::Tensor& reference, const torch::Tensor& estimate, int64_t n_fft = 2048,
                             int64_t hop = 512);

}  // namespace songlines::generate
