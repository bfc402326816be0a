// Row index of a flat element index without an integer division, for the device engine's per-element functors
// (mel_chain.inl). Plain header: usable from both backends and from tests.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SONGLINES_HOST_DEVICE __host__ __device__
#else
#define SONGLINES_HOST_DEVICE
#endif

namespace songlines::features::device_engine {

/// e / d for element indices 0 <= e < 2^52 and a row length d > 0, without an integer division (tens of cycles
/// on CPUs, emulated on GPUs): the float64 quotient is within one of the exact one, and one correction step each
/// way makes it exact. Indices stay int64 throughout.
struct RowDivider {
  int64_t d = 1;
  double inv = 1.0;
  RowDivider() = default;
  explicit RowDivider(int64_t d_) : d(d_), inv(1.0 / static_cast<double>(d_)) {}
  SONGLINES_HOST_DEVICE int64_t operator()(int64_t e) const {
    int64_t q = static_cast<int64_t>(static_cast<double>(e) * inv);
    if (q * d > e) --q;
    else if ((q + 1) * d <= e) ++q;
    return q;
  }
};

}  // namespace songlines::features::device_engine
