// Geodesic evaluation: great-circle errors (km) summarised as mean, median, shares within 500/1000/2500 km,
// and country accuracy (predicted point's nearest capital among the training countries vs the true country).
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "geo/great_circle.h"

namespace songlines::train {

struct LocationMetrics {
  int64_t n = 0;
  double mean_km = 0, median_km = 0;
  double within_500 = 0, within_1000 = 0, within_2500 = 0;  ///< shares in [0, 1]
  double country_accuracy = 0;                               ///< share in [0, 1]
  Json to_json() const;
};

/// errors_km [n]; country_correct [n] (1 when the predicted country equals the true one).
LocationMetrics compute_metrics(const std::vector<double>& errors_km, const std::vector<int>& country_correct);

/// Mean and (population) std of each metric over folds: {"mean_km": {"mean": .., "std": ..}, ...}.
Json aggregate_metrics(const std::vector<LocationMetrics>& folds);

}  // namespace songlines::train
