// Sample-rate conversion with libsoxr at SOXR_HQ, as librosa.resample(res_type="soxr_hq") does
// (librosa/core/audio.py: resample): output length fixed to ceil(n * target / orig) (zero-pad or trim at the
// end), optional scale by 1/sqrt(target/orig). Thread-safe (one soxr instance per call).
#pragma once

#include <cstdint>
#include <vector>

namespace songlines::audio {

enum class ResampleScale { kNone, kEnergy };  ///< kEnergy: y /= sqrt(target/orig), librosa's scale=True

/// Resamples mono float32 x from orig_rate to target_rate (any positive rates, ratios need not be integer).
std::vector<float> resample(const float* x, int64_t n, double orig_rate, double target_rate,
                            ResampleScale scale = ResampleScale::kNone);
inline std::vector<float> resample(const std::vector<float>& x, double orig_rate, double target_rate,
                                   ResampleScale scale = ResampleScale::kNone) {
  return resample(x.data(), static_cast<int64_t>(x.size()), orig_rate, target_rate, scale);
}

/// librosa's output length: ceil(n * target / orig).
int64_t resampled_length(int64_t n, double orig_rate, double target_rate);

}  // namespace songlines::audio
