// The location estimators a run config names by "type", after tiny-cuda-nn's "otype" factory
// (src/encoding.cu): one table, one row per type, and each row knows the keys of its config entry, how to
// build a fresh estimator from them, and how to load what that estimator's save() wrote. The non-neural rows
// (centroid, knn) are listed in estimator_registry.cpp; the neural ones come from the encoders of
// models/location_model.h (one row per encoder type: mlp, temporal). A new non-neural estimator is its class
// and one row here; a new encoder or head needs no edit here.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "train/trainer.h"

namespace songlines::train {

struct EstimatorKind;

/// One entry of a run config's "models" array (docs/location-model.md).
struct ModelConfig {
  std::string name;  ///< unique within the run (defaults to type)
  std::string type;  ///< a registered type (estimator_kinds(): centroid, knn, mlp, temporal)
  int k = 10;        ///< knn neighbours
  models::LocationModelOptions model;  ///< neural types: the libtorch model
  TrainOptions train;                  ///< neural types: its training

  /// Its registry entry (ConfigError for an unregistered type).
  const EstimatorKind& kind() const;
};

struct EstimatorKind {
  std::string type;        ///< the "type" of a models[] entry
  std::string saved_type;  ///< the "type" its save() writes into model.json ("neural" for every libtorch model)
  bool trains_by_epochs = false;  ///< fit() runs train.epochs epochs and reports each (progress, metrics.jsonl)
  bool reads_frames = false;      ///< fits and predicts from frame sequences (data.frame_features)
  /// fit() trains on every rank of the current distributed group (train/distributed.h), averaging gradients:
  /// the libtorch models. The others fit on rank 0 alone.
  bool data_parallel = false;
  /// Reads the entry's keys other than "name" and "type" (m: the entry's reader); device: the run's device.
  std::function<void(ConfigReader& m, ModelConfig& c, const std::string& device)> read;
  /// Adds those keys, resolved, to the entry's JSON (which already holds name and type).
  std::function<void(const ModelConfig& c, Json& entry)> write;
  /// A fresh estimator; seed: of its randomness; checkpoint_dir: where a neural one keeps epoch checkpoints.
  std::function<std::unique_ptr<LocationEstimator>(const ModelConfig& c, uint64_t seed,
                                                   const std::optional<std::filesystem::path>& checkpoint_dir)>
      make;
  /// What save() wrote into dir (saved: its model.json), loaded for prediction on device.
  std::function<std::unique_ptr<LocationEstimator>(const std::filesystem::path& dir, const Json& saved,
                                                   const std::string& device)>
      load;
};

/// Every registered kind, in the order error messages list them.
const std::vector<EstimatorKind>& estimator_kinds();

/// The kind of a config type. ConfigError `<key_path>: unknown model "x" (centroid, knn, mlp, temporal)`.
const EstimatorKind& estimator_kind(const std::string& type, const std::string& key_path);

/// Reads one models[] entry (m: its reader; the caller calls m.finish()). ConfigError naming the key path.
ModelConfig read_model_config(ConfigReader& m, const std::string& device);

/// The entry as a run's resolved config.json writes it (read_model_config reads it back unchanged).
Json model_config_to_json(const ModelConfig& c);

/// A fresh estimator for an entry (estimator_kind(c.type).make).
std::unique_ptr<LocationEstimator> make_estimator(const ModelConfig& c, uint64_t seed,
                                                  const std::optional<std::filesystem::path>& checkpoint_dir);

}  // namespace songlines::train
