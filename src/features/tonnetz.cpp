// tonnetz (librosa 0.11 feature/spectral.py: tonnetz; shared/golden/LIBROSA_DEFINITIONS.md "tonnetz").
#include "features/tonnetz.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "core/error.h"

namespace songlines::features {

namespace {
constexpr int kTonnetzDims = 6;
}  // namespace

std::vector<double> tonnetz_phi(int n_chroma) {
  if (n_chroma < 1) throw UsageError("tonnetz: n_chroma must be >= 1, got " + std::to_string(n_chroma));
  // librosa: dim_map = linspace(0, 12, n_chroma, endpoint=False); V = outer(scale, dim_map); V[::2] -= 0.5;
  // phi = R[:, None] * cos(pi V). cos(pi (x - 0.5)) is the sin row.
  static constexpr double kScale[kTonnetzDims] = {7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3};
  static constexpr double kRadius[kTonnetzDims] = {1.0, 1.0, 1.0, 1.0, 0.5, 0.5};
  const double step = 12.0 / n_chroma;
  std::vector<double> phi(static_cast<size_t>(kTonnetzDims * n_chroma));
  for (int p = 0; p < kTonnetzDims; ++p) {
    for (int c = 0; c < n_chroma; ++c) {
      double v = kScale[p] * (c * step);
      if (p % 2 == 0) v -= 0.5;
      phi[static_cast<size_t>(p * n_chroma + c)] = kRadius[p] * std::cos(std::numbers::pi * v);
    }
  }
  return phi;
}

FeatureMatrix tonnetz_from_chroma(const FeatureMatrix& chroma) {
  const int64_t n_chroma = chroma.dim;
  if (chroma.data.size() != static_cast<size_t>(chroma.frames * chroma.dim))
    throw UsageError("tonnetz: chroma has " + std::to_string(chroma.data.size()) + " values, expected frames*dim = " +
                     std::to_string(chroma.frames * chroma.dim));
  const std::vector<double> phi = tonnetz_phi(static_cast<int>(n_chroma));  // [6, n_chroma]
  const float tiny = std::numeric_limits<float>::min();
  FeatureMatrix out(chroma.frames, kTonnetzDims);  // [T, 6]
  std::vector<float> c_norm(static_cast<size_t>(n_chroma));
  for (int64_t t = 0; t < chroma.frames; ++t) {
    const float* c = chroma.row(t);
    // util.normalize(chroma, norm=1, axis=-2) on float32: frames with L1 < tiny are left unscaled.
    float l1 = 0.0f;
    for (int64_t k = 0; k < n_chroma; ++k) l1 += std::fabs(c[k]);
    const float length = l1 < tiny ? 1.0f : l1;
    for (int64_t k = 0; k < n_chroma; ++k) c_norm[static_cast<size_t>(k)] = c[k] / length;
    float* o = out.row(t);
    for (int p = 0; p < kTonnetzDims; ++p) {
      double acc = 0.0;  // phi is float64, so librosa's einsum runs in float64
      for (int64_t k = 0; k < n_chroma; ++k) acc += phi[static_cast<size_t>(p * n_chroma + k)] * c_norm[static_cast<size_t>(k)];
      o[p] = static_cast<float>(acc);
    }
  }
  return out;
}

}  // namespace songlines::features
