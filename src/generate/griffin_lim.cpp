#include "generate/griffin_lim.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "models/torch_compat.h"

namespace songlines::generate {

torch::Tensor griffin_lim(const torch::Tensor& magnitude, int64_t length, const GriffinLimOptions& o) {
  TORCH_CHECK(magnitude.dim() == 2 && magnitude.size(0) == o.n_fft / 2 + 1, "griffin_lim: expected [",
              o.n_fft / 2 + 1, ", frames], got ", magnitude.sizes());
  TORCH_CHECK(o.momentum >= 0 && o.momentum < 1, "griffin_lim: momentum must be in [0, 1), got ", o.momentum);
  const auto dev = magnitude.device();
  auto mag = magnitude.to(torch::kFloat32);
  auto window = torch::hann_window(o.n_fft, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  // Random initial phases drawn on the CPU from the seed so every device starts from the same point.
  auto gen = at::detail::createCPUGenerator(o.seed);
  auto phase = torch::rand(mag.sizes(), gen, torch::kFloat32).mul_(2.0 * M_PI).to(dev);
  auto angles = torch::polar(torch::ones_like(phase), phase);
  auto rebuilt = torch::zeros_like(angles);
  const double alpha = o.momentum / (1.0 + o.momentum);
  const double tiny = 1e-16;
  for (int i = 0; i < o.iterations; ++i) {
    auto tprev = rebuilt;
    auto inverse = torch_compat::istft(mag * angles, o.n_fft, o.hop_length, window, /*center=*/true, length);
    rebuilt = torch_compat::stft_complex(inverse, o.n_fft, o.hop_length, window, /*center=*/true);
    // stft of a length-L signal can give one frame fewer/more than the target spectrogram: match widths.
    if (rebuilt.size(1) != mag.size(1)) {
      const int64_t w = mag.size(1);
      if (rebuilt.size(1) > w) rebuilt = rebuilt.narrow(1, 0, w);
      else rebuilt = torch::constant_pad_nd(rebuilt, {0, w - rebuilt.size(1)});
    }
    angles = rebuilt - alpha * tprev;
    angles = angles / (angles.abs() + tiny);
  }
  return torch_compat::istft(mag * angles, o.n_fft, o.hop_length, window, /*center=*/true, length);
}

}  // namespace songlines::generate
