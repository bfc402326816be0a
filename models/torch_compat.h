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

/// Arithmetic of float32 training on a device. kFp32: IEEE float32 matmuls and convolutions (cuDNN's TF32
/// default turned off too); kTf32: TensorFloat-32 tensor cores for float32 matmuls and convolutions on CUDA
/// (no effect on a CPU); kBf16: autocast to bfloat16 (matmuls and convolutions in bf16, reductions and losses in
/// float32) on CUDA or the CPU. Parameters and optimiser state stay float32 in every mode.
enum class Precision { kFp32, kTf32, kBf16 };
/// "fp32", "tf32", "bf16".
std::string to_string(Precision p);
/// Parses those names; throws ConfigError naming `key` and the value otherwise.
Precision parse_precision(const std::string& name, const std::string& key);

/// Sets the precision for its lifetime (the thread's autocast state and the process's TF32 flags) and restores
/// the previous settings when it ends. One per training loop; not for concurrent use from several threads.
class PrecisionScope {
 public:
  PrecisionScope(Precision p, const torch::Device& device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  torch::DeviceType device_type_;
  bool autocast_was_enabled_ = false;
  at::ScalarType autocast_was_dtype_ = at::kFloat;
  bool autocast_set_ = false;
  bool tf32_set_ = false;
  at::Float32MatmulPrecision matmul_precision_was_ = at::Float32MatmulPrecision::HIGHEST;
  bool cudnn_tf32_was_ = true;
};

/// Serialization of a module's parameters/buffers into an archive path (same API on both versions). Written
/// atomically (temporary name, then rename: a partial file never has the final name); a failed write (a full
/// disk) throws IoError naming the path and the reason.
void save_module(const torch::nn::Module& module, const std::string& path);
/// An optimizer's state, written the same way.
void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path);
void load_module(torch::nn::Module& module, const std::string& path, const torch::Device& device);

}  // namespace songlines::torch_compat
