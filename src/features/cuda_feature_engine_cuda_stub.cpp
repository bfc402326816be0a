// CPU-only builds: the CUDA feature engine is absent; every entry point says so with a typed exception.
#include "features/cuda_feature_engine.h"

#include "core/error.h"

namespace songlines::features {

namespace {
[[noreturn]] void built_without_cuda() {
  throw Error("CUDA feature engine: this songlines was built without CUDA (configure with -DSONGLINES_CUDA=ON)");
}
}  // namespace

struct CudaFeatureEngine::Impl {};

CudaFeatureEngine::CudaFeatureEngine(const FeatureOptions&, CudaEngineOptions) { built_without_cuda(); }
CudaFeatureEngine::~CudaFeatureEngine() = default;
CudaFeatureEngine::CudaFeatureEngine(CudaFeatureEngine&&) noexcept = default;
CudaFeatureEngine& CudaFeatureEngine::operator=(CudaFeatureEngine&&) noexcept = default;
std::vector<TrackFeatures> CudaFeatureEngine::compute_batch(const std::vector<std::span<const float>>&) {
  built_without_cuda();
}
const CudaStageTimes& CudaFeatureEngine::last_times() const { built_without_cuda(); }
const FeatureOptions& CudaFeatureEngine::options() const { built_without_cuda(); }

std::vector<TrackFeatures> compute_features_cuda(const FeatureOptions&, const std::vector<std::span<const float>>&,
                                                     const CudaEngineOptions&) {
  built_without_cuda();
}

double measure_device_copy_bandwidth_gbs(int, size_t, int) { built_without_cuda(); }

}  // namespace songlines::features
