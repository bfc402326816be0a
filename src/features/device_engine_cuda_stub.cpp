// CPU-only builds: the device engine's CUDA backend is absent (its host backend is always built).
#include "core/error.h"
#include "features/device_engine/chain.h"

namespace songlines::features::device_engine {

bool cuda_chain_built() { return false; }

std::unique_ptr<Chain> make_cuda_chain(const ChainConstants&, int) {
  throw Error("--device cuda: this songlines was built without the CUDA backend of the device engine (no nvcc)");
}

}  // namespace songlines::features::device_engine
