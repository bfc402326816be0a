#include "models/torch_compat.h"

#include <ATen/autocast_mode.h>

#include <sstream>

#include "core/atomic_file.h"
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

std::string to_string(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kBf16: return "bf16";
  }
  return "fp32";
}

Precision parse_precision(const std::string& name, const std::string& key) {
  for (Precision p : {Precision::kFp32, Precision::kTf32, Precision::kBf16})
    if (name == to_string(p)) return p;
  throw ConfigError(key + ": expected fp32, tf32 or bf16, got \"" + name + "\"");
}

namespace {

// The autocast switches of one device type. 2.4 generalised them over device types; 1.13 has one pair per type.
bool autocast_enabled(torch::DeviceType t) {
#if SONGLINES_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(t);
#else
  return t == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

at::ScalarType autocast_dtype(torch::DeviceType t) {
#if SONGLINES_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(t);
#else
  return t == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(torch::DeviceType t, bool enabled, at::ScalarType dtype) {
#if SONGLINES_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(t, dtype);
  at::autocast::set_autocast_enabled(t, enabled);
#else
  if (t == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

// setFloat32MatmulPrecision takes the enum only in older releases; the string form is in 1.13 and every 2.x.
const char* matmul_precision_name(at::Float32MatmulPrecision p) {
  switch (p) {
    case at::Float32MatmulPrecision::HIGHEST: return "highest";
    case at::Float32MatmulPrecision::HIGH: return "high";
    case at::Float32MatmulPrecision::MEDIUM: return "medium";
  }
  return "highest";
}

}  // namespace

PrecisionScope::PrecisionScope(Precision p, const torch::Device& device) : device_type_(device.type()) {
  if (p == Precision::kBf16) {
    if (device_type_ != torch::kCUDA && device_type_ != torch::kCPU)
      throw UsageError("precision bf16: autocast is only set up for cpu and cuda devices");
    autocast_was_enabled_ = autocast_enabled(device_type_);
    autocast_was_dtype_ = autocast_dtype(device_type_);
    set_autocast(device_type_, true, at::kBFloat16);
    autocast_set_ = true;
    return;
  }
  if (device_type_ != torch::kCUDA) return;  // TF32 is a CUDA tensor-core mode; CPU float32 is always IEEE
  auto& ctx = at::globalContext();
  matmul_precision_was_ = ctx.float32MatmulPrecision();
  cudnn_tf32_was_ = ctx.allowTF32CuDNN();
  const bool tf32 = p == Precision::kTf32;
  ctx.setFloat32MatmulPrecision(tf32 ? "high" : "highest");
  ctx.setAllowTF32CuDNN(tf32);
  tf32_set_ = true;
}

PrecisionScope::~PrecisionScope() {
  if (autocast_set_) {
    set_autocast(device_type_, autocast_was_enabled_, autocast_was_dtype_);
    at::autocast::clear_cache();
  }
  if (tf32_set_) {
    auto& ctx = at::globalContext();
    ctx.setFloat32MatmulPrecision(matmul_precision_name(matmul_precision_was_));
    ctx.setAllowTF32CuDNN(cudnn_tf32_was_);
  }
}

// Checkpoints are serialized in memory, then written with write_file_atomic: libtorch's own file writer, on a
// full disk, throws from its destructor (std::terminate) and leaves a partial file under the final name.
void save_module(const torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path) {
  std::ostringstream bytes;
  torch::save(optimizer, bytes);
  write_file_atomic(path, bytes.str());
}

void load_module(torch::nn::Module& module, const std::string& path, const torch::Device& device) {
  torch::serialize::InputArchive archive;
  archive.load_from(path, device);
  module.load(archive);
}

}  // namespace songlines::torch_compat
