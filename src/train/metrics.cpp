#include "train/metrics.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace songlines::train {

Json LocationMetrics::to_json() const {
  return {{"n", n},
          {"mean_km", mean_km},
          {"median_km", median_km},
          {"within_500", within_500},
          {"within_1000", within_1000},
          {"within_2500", within_2500},
          {"country_accuracy", country_accuracy}};
}

LocationMetrics compute_metrics(const std::vector<double>& errors_km, const std::vector<int>& country_correct) {
  SONGLINES_CHECK(!errors_km.empty() && errors_km.size() == country_correct.size(), "compute_metrics: bad sizes");
  LocationMetrics m;
  m.n = static_cast<int64_t>(errors_km.size());
  const double n = static_cast<double>(m.n);
  for (size_t i = 0; i < errors_km.size(); ++i) {
    double e = errors_km[i];
    m.mean_km += e / n;
    m.within_500 += (e <= 500) / n;
    m.within_1000 += (e <= 1000) / n;
    m.within_2500 += (e <= 2500) / n;
    m.country_accuracy += country_correct[i] / n;
  }
  auto sorted = errors_km;
  std::sort(sorted.begin(), sorted.end());
  size_t h = sorted.size() / 2;
  m.median_km = sorted.size() % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
  return m;
}

Json aggregate_metrics(const std::vector<LocationMetrics>& folds) {
  Json out = Json::object();
  if (folds.empty()) return out;
  for (const char* key : {"mean_km", "median_km", "within_500", "within_1000", "within_2500", "country_accuracy"}) {
    double mean = 0, sq = 0;
    for (const auto& f : folds) mean += f.to_json()[key].get<double>();
    mean /= static_cast<double>(folds.size());
    for (const auto& f : folds) sq += std::pow(f.to_json()[key].get<double>() - mean, 2);
    out[key] = {{"mean", mean}, {"std", std::sqrt(sq / static_cast<double>(folds.size()))}};
  }
  out["folds"] = folds.size();
  return out;
}

}  // namespace songlines::train
