// A frame-level feature: row-major [frames, dim] float32, the layout of the shards' /frames/<name> arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace songlines::features {

struct FeatureMatrix {
  int64_t frames = 0;       ///< rows (time)
  int64_t dim = 0;          ///< columns (bins, coefficients)
  std::vector<float> data;  ///< frames * dim, row-major: data[t * dim + k]

  FeatureMatrix() = default;
  FeatureMatrix(int64_t frames_, int64_t dim_, float fill = 0.0f)
      : frames(frames_), dim(dim_), data(static_cast<size_t>(frames_ * dim_), fill) {}
  float& at(int64_t t, int64_t k) { return data[static_cast<size_t>(t * dim + k)]; }
  float at(int64_t t, int64_t k) const { return data[static_cast<size_t>(t * dim + k)]; }
  float* row(int64_t t) { return data.data() + t * dim; }
  const float* row(int64_t t) const { return data.data() + t * dim; }
};

}  // namespace songlines::features
