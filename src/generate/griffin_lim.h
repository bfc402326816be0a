// Phase reconstruction: fast Griffin-Lim with momentum (Perraudin, Balazs and Sondergaard 2013), as
// librosa 0.11 librosa/core/spectrum.py: griffinlim, through torch's stft/istft (models/torch_compat.h) on the
// magnitude's device.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace songlines::generate {

struct GriffinLimOptions {
  int n_fft = 2048;        ///< samples; periodic Hann window
  int hop_length = 512;    ///< samples
  int iterations = 32;     ///< librosa's n_iter default
  double momentum = 0.99;  ///< librosa's default; 0 gives plain Griffin-Lim
  uint64_t seed = 0;       ///< seeds the random initial phases (the output is deterministic per seed)
  bool operator==(const GriffinLimOptions&) const = default;
};

/// magnitude: [n_fft/2+1, frames] (centered frames); length: output samples. Returns y [length] float32.
torch::Tensor griffin_lim(const torch::Tensor& magnitude, int64_t length, const GriffinLimOptions& o = {});

}  // namespace songlines::generate
