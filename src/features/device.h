// Which engine computes features: the CPU reference (FFTW) or the CUDA kernels (cuda/).
#pragma once

#include <string>

namespace songlines::features {

enum class Device { kCpu, kCuda, kAuto };

/// Parses "cpu", "cuda", "auto"; throws UsageError naming the value otherwise.
Device parse_device(const std::string& name);
const char* device_name(Device d);

/// True when this binary was built with the CUDA engine (nvcc present at build time).
bool cuda_engine_built();
/// Number of usable CUDA devices at run time (0 without a driver or GPU, or in a CPU-only build).
int cuda_device_count();

/// kAuto -> kCuda when a GPU is usable, else kCpu with a one-line notice on stderr (printed once per process).
/// kCuda without a GPU throws Error.
Device resolve_device(Device requested);

}  // namespace songlines::features
