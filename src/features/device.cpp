#include "features/device.h"

#include <atomic>
#include <cstdio>

#include "core/error.h"
#include "features/device_engine.h"

namespace songlines::features {

Device parse_device(const std::string& name, HostDevice host) {
  if (name == "cpu") return Device::kCpu;
  if (name == "host") {
    if (host == HostDevice::kAccepted) return Device::kHost;
    throw UsageError("--device host: the device engine's host backend runs in `songlines features` and `songlines "
                     "extract`; use cpu, cuda or auto here");
  }
  if (name == "cuda" || name == "gpu") return Device::kCuda;
  if (name == "auto") return Device::kAuto;
  throw UsageError("--device: expected cpu, cuda or auto, got \"" + name + "\"");
}

const char* device_name(Device d) {
  switch (d) {
    case Device::kCpu: return "cpu";
    case Device::kCuda: return "cuda";
    case Device::kHost: return "host";
    default: return "auto";
  }
}

Device resolve_device(Device requested) {
  if (requested == Device::kCpu) return Device::kCpu;
  if (requested == Device::kHost) return Device::kHost;
  bool have_gpu = cuda_engine_built() && cuda_device_count() > 0;
  if (requested == Device::kCuda) {
    if (!cuda_engine_built()) throw UsageError("--device cuda: this songlines was built without the CUDA engine");
    if (!have_gpu) throw UsageError("--device cuda: no CUDA device is available (use --device host or cpu)");
    return Device::kCuda;
  }
  if (have_gpu) return Device::kCuda;
  static std::atomic<bool> noticed{false};
  if (!noticed.exchange(true))
    std::fprintf(stderr, "songlines: no CUDA device available; computing features on the CPU\n");
  return Device::kCpu;
}

FeatureEngineKind feature_engine_for(Device resolved, const FeatureOptions& options) {
  switch (resolved) {
    case Device::kCpu: return FeatureEngineKind::kReference;
    case Device::kHost:
    case Device::kCuda: return FeatureEngineKind::kDeviceEngine;
    default: throw Error("feature_engine_for: device not resolved (auto)");
  }
}

}  // namespace songlines::features
