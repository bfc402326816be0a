// The one place that knows libtorch versions apart: Debian's libtorch 1.13 (CPU) and PyTorch 2.x on GPU boxes.
// Everything else in songlines includes this header instead of spelling version-specific APIs.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define SONGLINES_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace songlines::torch_compat {

/// "1.13.0" or "2.11.0".
std::string version();

/// Whether a CUDA device can be used by libtorch in this process.
bool cuda_available();

/// The device a run uses: "cpu", "cuda" or "auto" (CUDA when available).
torch::Device resolve_device(const std::string& requested);

/// Complex STFT as a complex tensor on both versions (return_complex is required in 2.x, optional in 1.13).
torch::Tensor stft_complex(const torch::Tensor& x, int64_t n_fft, int64_t hop, const torch::Tensor& window,
                           bool center);
torch::Tensor istft(const torch::Tensor& spec, int64_t n_fft, int64_t hop, const torch::Tensor& window, bool center,
                    int64_t length);

/// Serialization of a module's parameters/buffers into an archive path (same API on both versions).
void save_module(const torch::nn::Module& module, const std::string& path);
void load_module(torch::nn::Module& module, const std::string& path, const torch::Device& device);

}  // namespace songlines::torch_compat
