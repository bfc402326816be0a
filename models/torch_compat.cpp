#include "models/torch_compat.h"

#include "core/error.h"

namespace songlines::torch_compat {

std::string version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

bool cuda_available() { return torch::cuda::is_available(); }

torch::Device resolve_device(const std::string& requested) {
  if (requested == "cpu") return torch::kCPU;
  if (requested == "cuda") {
    if (!cuda_available()) throw Error("--device cuda: no CUDA device is available to libtorch");
    return torch::kCUDA;
  }
  if (requested == "auto" || requested.empty()) return cuda_available() ? torch::kCUDA : torch::kCPU;
  throw UsageError("device: expected cpu, cuda or auto, got \"" + requested + "\"");
}

torch::Tensor stft_complex(const torch::Tensor& x, int64_t n_fft, int64_t hop, const torch::Tensor& window,
                           bool center) {
  return torch::stft(x, n_fft, hop, n_fft, window, center, "constant", /*normalized=*/false, /*onesided=*/true,
                     /*return_complex=*/true);
}

torch::Tensor istft(const torch::Tensor& spec, int64_t n_fft, int64_t hop, const torch::Tensor& window, bool center,
                    int64_t length) {
  return torch::istft(spec, n_fft, hop, n_fft, window, center, /*normalized=*/false, /*onesided=*/true, length,
                      /*return_complex=*/false);
}

void save_module(const torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  archive.save_to(path);
}

void load_module(torch::nn::Module& module, const std::string& path, const torch::Device& device) {
  torch::serialize::InputArchive archive;
  archive.load_from(path, device);
  module.load(archive);
}

}  // namespace songlines::torch_compat
