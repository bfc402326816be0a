// Which engine computes features: the CPU reference (FFTW) or the device engine (features/device_engine.h) on its
// host or CUDA backend.
#pragma once

#include <string>

#include "features/feature_options.h"

namespace songlines::features {

enum class Device { kCpu, kCuda, kAuto, kHost };

/// Whether a command accepts "host": only those that run the device engine (`features`, `extract`).
enum class HostDevice { kRefused, kAccepted };

/// Parses "cpu", "cuda", "auto" (and "host" when accepted); throws UsageError naming the value otherwise.
Device parse_device(const std::string& name, HostDevice host = HostDevice::kRefused);
const char* device_name(Device d);

/// True when this binary was built with the CUDA engine (nvcc present at build time).
bool cuda_engine_built();
/// Number of usable CUDA devices at run time (0 without a driver or GPU, or in a CPU-only build).
int cuda_device_count();

/// kAuto -> kCuda when a GPU is usable, else kCpu with a one-line notice on stderr (printed once per process).
/// kCuda without a GPU (or in a build without CUDA) throws UsageError naming --device cuda (exit status 2, before
/// any file is read). kHost stays kHost (the host backend is always built).
Device resolve_device(Device requested);

/// The implementation that computes features on a resolved device.
enum class FeatureEngineKind {
  kReference,     ///< FeatureExtractor (src/features, FFTW): --device cpu
  kDeviceEngine,  ///< DeviceFeatureEngine, ragged batches: --device host and cuda (what it cannot honour it
                  ///< refuses at setup, exit status 2)
};
FeatureEngineKind feature_engine_for(Device resolved, const FeatureOptions& options);

}  // namespace songlines::features
