// A seeded synthetic dataset for the training tests: four places, features = one-hot of the place plus noise,
// so a model can learn the mapping.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "geo/great_circle.h"
#include "train/dataset.h"

namespace songlines::train::testing_data {

/// Rows a, a + 1, ..., b - 1.
inline std::vector<int64_t> range(int64_t a, int64_t b) {
  std::vector<int64_t> r;
  for (int64_t i = a; i < b; ++i) r.push_back(i);
  return r;
}

inline Dataset synthetic(int64_t n, uint64_t seed) {
  const geo::LatLon places[] = {{48.85, 2.35}, {-33.87, 151.21}, {35.68, 139.69}, {-15.78, -47.93}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  Dataset d;
  d.dim = 6;
  for (int64_t i = 0; i < n; ++i) {
    const int p = static_cast<int>(i % 4);
    for (int k = 0; k < 6; ++k) d.x.push_back((k == p ? 2.0f : 0.0f) + noise(rng));
    d.coords.push_back(places[p]);
    d.ids.push_back("t" + std::to_string(i));
    d.countries.push_back(std::string("C") + char('A' + p));
    d.artists.emplace_back();
  }
  return d;
}

}  // namespace songlines::train::testing_data
