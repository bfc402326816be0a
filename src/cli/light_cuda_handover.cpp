// The light binary of a CUDA build (cli/entry_point.h): it links the CPU-only stubs of the CUDA engine
// (features/*_cuda_stub.cpp) instead of cuda/, so cudart, cuFFT and cuBLAS are not loaded. These two functions
// replace the stubs' device queries: the build does have the CUDA engine, and the moment a command learns that a
// GPU is usable (features::resolve_device for --device auto|cuda, the only callers of cuda_device_count on the
// light binary's commands) the process is handed to the full binary, which computes on it. The GPU is counted
// through the driver (libcuda, opened on demand), which a machine without a GPU does not have.
#include <dlfcn.h>

#include "cli/entry_point.h"
#include "features/device.h"

namespace songlines::features {

namespace {

/// Devices the CUDA driver reports (cuInit + cuDeviceGetCount), 0 without a driver.
int driver_device_count() {
  void* driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr) return 0;
  using InitFn = int (*)(unsigned int);
  using CountFn = int (*)(int*);
  const auto init = reinterpret_cast<InitFn>(::dlsym(driver, "cuInit"));
  const auto count = reinterpret_cast<CountFn>(::dlsym(driver, "cuDeviceGetCount"));
  int n = 0;
  // CUDA_SUCCESS is 0 (cuda.h); the driver stays loaded, the full binary replaces the process anyway.
  if (init == nullptr || count == nullptr || init(0) != 0 || count(&n) != 0) n = 0;
  return n;
}

}  // namespace

bool cuda_engine_built() { return true; }

int cuda_device_count() {
  if (driver_device_count() > 0) throw cli::HandOverToFullBinary{"a CUDA device is present"};
  return 0;
}

}  // namespace songlines::features
