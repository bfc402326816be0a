// CPU-only builds: the CUDA engine is absent.
#include "features/device.h"

namespace songlines::features {

bool cuda_engine_built() { return false; }
int cuda_device_count() { return 0; }

}  // namespace songlines::features
