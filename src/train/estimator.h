// Everything a cross-validation fold evaluates: fit on training rows, predict points for other rows. The
// baselines (spherical centroid, kNN) and the libtorch models share this interface and the same folds. Run
// configs name them by "type" through the registry of train/estimator_registry.h.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/dataset.h"

namespace songlines::train {

struct LocationPrediction {
  std::vector<geo::LatLon> points;    ///< [n] degrees
  std::vector<double> uncertainty_km; ///< [n], NaN where the estimator has no uncertainty
};

/// Called after each training epoch with (epoch, mean training loss).
using EpochCallback = std::function<void(int, double)>;

class LocationEstimator {
 public:
  virtual ~LocationEstimator() = default;
  virtual void fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback& on_epoch) = 0;
  virtual LocationPrediction predict(const Dataset& data, const std::vector<int64_t>& rows) = 0;
  /// Predicts from already-assembled raw (unstandardised) feature rows x [n, D].
  virtual LocationPrediction predict_raw(const std::vector<float>& x, int64_t n) = 0;
  /// Saves everything needed to predict (model.json + weights) into dir; load with load_estimator().
  virtual void save(const std::filesystem::path& dir) const = 0;
  virtual std::string type() const = 0;
};

/// Spherical mean of the training points, predicted for every row.
class CentroidBaseline : public LocationEstimator {
 public:
  void fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback&) override;
  LocationPrediction predict(const Dataset& data, const std::vector<int64_t>& rows) override;
  LocationPrediction predict_raw(const std::vector<float>& x, int64_t n) override;
  void save(const std::filesystem::path& dir) const override;
  static constexpr const char* kType = "centroid";  ///< its config type and model.json "type"
  std::string type() const override { return kType; }
  /// What save() wrote (model.json's JSON).
  static std::unique_ptr<CentroidBaseline> load(const Json& saved);
  geo::LatLon centroid;
};

/// k nearest training rows by Euclidean distance of standardised features; prediction: the spherical mean of
/// their points.
class KnnBaseline : public LocationEstimator {
 public:
  explicit KnnBaseline(int k) : k_(k) {}
  void fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback&) override;
  LocationPrediction predict(const Dataset& data, const std::vector<int64_t>& rows) override;
  LocationPrediction predict_raw(const std::vector<float>& x, int64_t n) override;
  void save(const std::filesystem::path& dir) const override;
  static constexpr const char* kType = "knn";  ///< its config type and model.json "type"
  std::string type() const override { return kType; }
  /// What save() wrote (model.json's JSON).
  static std::unique_ptr<KnnBaseline> load(const Json& saved);

 private:
  int k_;
  Standardizer standardizer_;
  int64_t dim_ = 0;
  std::vector<float> train_x_;  ///< [m, D] standardised
  std::vector<geo::LatLon> train_points_;
};

/// Loads what save() wrote: model.json's "type" picks the estimator kind (train/estimator_registry.h), which
/// loads its own state. InputError naming the file when there is no model or its type is unknown.
std::unique_ptr<LocationEstimator> load_estimator(const std::filesystem::path& dir, const std::string& device);

}  // namespace songlines::train
