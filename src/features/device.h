// Which engine computes features: the CPU reference (FFTW), the CUDA engine (cuda/), or the device engine on its
// host backend (features/device_engine.h; `features --device host` so far).
#pragma once

#include <string>

namespace songlines::features {

enum class Device { kCpu, kCuda, kAuto, kHost };

/// Whether a command accepts "host": only those that run the device engine's host backend (issue 14's first
/// slice: `features`).
enum class HostDevice { kRefused, kAccepted };

/// Parses "cpu", "cuda", "auto" (and "host" when accepted); throws UsageError naming the value otherwise.
Device parse_device(const std::string& name, HostDevice host = HostDevice::kRefused);
const char* device_name(Device d);

/// True when this binary was built with the CUDA engine (nvcc present at build time).
bool cuda_engine_built();
/// Number of usable CUDA devices at run time (0 without a driver or GPU, or in a CPU-only build).
int cuda_device_count();

/// kAuto -> kCuda when a GPU is usable, else kCpu with a one-line notice on stderr (printed once per process).
/// kCuda without a GPU throws Error. kHost stays kHost (the host backend is always built).
Device resolve_device(Device requested);

}  // namespace songlines::features
