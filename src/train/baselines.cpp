#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "train/estimator.h"

namespace songlines::train {

void CentroidBaseline::fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback&) {
  std::vector<geo::LatLon> pts;
  for (auto i : rows) pts.push_back(data.coords[i]);
  centroid = geo::spherical_centroid(pts.data(), pts.size());
}

LocationPrediction CentroidBaseline::predict(const Dataset& data, const std::vector<int64_t>& rows) {
  return predict_raw({}, static_cast<int64_t>(rows.size()));
}

LocationPrediction CentroidBaseline::predict_raw(const std::vector<float>&, int64_t n) {
  return {std::vector<geo::LatLon>(n, centroid), std::vector<double>(n, std::numeric_limits<double>::quiet_NaN())};
}

void CentroidBaseline::save(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  write_json_file_atomic((dir / "model.json").string(),
                         {{"type", kType}, {"latitude", centroid.lat}, {"longitude", centroid.lon}});
}

std::unique_ptr<CentroidBaseline> CentroidBaseline::load(const Json& saved) {
  auto c = std::make_unique<CentroidBaseline>();
  c->centroid = {saved.at("latitude").get<double>(), saved.at("longitude").get<double>()};
  return c;
}

void KnnBaseline::fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback&) {
  if (k_ < 1) throw ConfigError("knn.k: must be >= 1, got " + std::to_string(k_));
  standardizer_ = Standardizer::fit(data, rows);
  dim_ = data.dim;
  train_x_ = standardizer_.apply(data, rows);
  train_points_.clear();
  for (auto i : rows) train_points_.push_back(data.coords[i]);
}

LocationPrediction KnnBaseline::predict(const Dataset& data, const std::vector<int64_t>& rows) {
  std::vector<float> x;
  for (auto i : rows) x.insert(x.end(), data.row(i), data.row(i) + data.dim);
  return predict_raw(x, static_cast<int64_t>(rows.size()));
}

LocationPrediction KnnBaseline::predict_raw(const std::vector<float>& raw, int64_t n) {
  auto x = raw;
  standardizer_.apply_inplace(x.data(), n);
  const int64_t m = static_cast<int64_t>(train_points_.size());
  const int64_t k = std::min<int64_t>(k_, m);
  LocationPrediction out;
  std::vector<std::pair<double, int64_t>> dist(m);
  for (int64_t i = 0; i < n; ++i) {
    const float* q = x.data() + i * dim_;
    for (int64_t j = 0; j < m; ++j) {
      const float* t = train_x_.data() + j * dim_;
      double s = 0;
      for (int64_t c = 0; c < dim_; ++c) s += double(q[c] - t[c]) * double(q[c] - t[c]);
      dist[j] = {s, j};
    }
    std::partial_sort(dist.begin(), dist.begin() + k, dist.end());
    std::vector<geo::LatLon> nb;
    for (int64_t j = 0; j < k; ++j) nb.push_back(train_points_[dist[j].second]);
    geo::LatLon p = geo::spherical_centroid(nb.data(), nb.size());
    double spread = 0;  // mean distance of the neighbours from the prediction: a crude uncertainty radius
    for (const auto& q2 : nb) spread += geo::distance_km(p, q2) / static_cast<double>(k);
    out.points.push_back(p);
    out.uncertainty_km.push_back(spread);
  }
  return out;
}

void KnnBaseline::save(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  Json pts = Json::array();
  for (const auto& p : train_points_) pts.push_back({p.lat, p.lon});
  write_json_file_atomic((dir / "model.json").string(), {{"type", kType},
                                                          {"k", k_},
                                                          {"dim", dim_},
                                                          {"standardizer", standardizer_.to_json()},
                                                          {"train_x", train_x_},
                                                          {"train_points", pts}},
                         -1);
}

std::unique_ptr<KnnBaseline> KnnBaseline::load(const Json& saved) {
  auto k = std::make_unique<KnnBaseline>(saved.at("k").get<int>());
  k->dim_ = saved.at("dim").get<int64_t>();
  k->standardizer_ = Standardizer::from_json(saved.at("standardizer"));
  k->train_x_ = saved.at("train_x").get<std::vector<float>>();
  for (const auto& p : saved.at("train_points")) k->train_points_.push_back({p[0].get<double>(), p[1].get<double>()});
  return k;
}

}  // namespace songlines::train
