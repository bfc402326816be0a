// The experiment config of `songlines run` (docs/location-model.md lists every key). Parsed strictly with
// ConfigReader: an unknown key or a wrong type is a ConfigError naming its path. Relative data paths are
// resolved against the config file's directory.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "models/location_model.h"
#include "train/estimator_registry.h"

namespace songlines::runs {

struct DataConfig {
  std::vector<std::string> shards;     ///< shard files, folders or glob patterns of them (exclusive with table)
  std::string table_format;            ///< "gom" | "seed-csv" when reading a table directly
  std::string table_path;              ///< the table file
  std::vector<std::string> features;   ///< summary blocks to use; empty = all
  std::vector<std::string> frame_features;  ///< temporal models: frame arrays (default: the seed's four)
  /// Temporal models: MiB of frames held in memory; frames beyond it are streamed from the shards
  /// (docs/scaling.md "Data larger than memory"). 0: a quarter of the machine's physical memory.
  int64_t memory_budget_mb = 0;

  /// Its JSON keys (core/json_fields.h). "table" ({"format", "path"}, exclusive with "shards") is read and
  /// written by RunConfig.
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("shards", s.shards);
    v("features", s.features);
    v("frame_features", s.frame_features);
    v("memory_budget_mb", s.memory_budget_mb);
    v.ignore("table");
  }
  void validate(const std::string& path) const;
};

struct EvaluationConfig {
  int folds = 10;                ///< K of K-fold
  int repeats = 3;               ///< R: reshuffled repetitions (same folds for every model)
  std::string group_by = "none"; ///< "none" | "country" | "artist": grouped folds

  template <class S, class V>
  static void fields(S& s, V& v) {
    v("folds", s.folds);
    v("repeats", s.repeats);
    v("group_by", s.group_by);
  }
  void validate(const std::string& path) const;
};

/// One entry of "models": its keys depend on its type (train/estimator_registry.h).
using train::ModelConfig;

struct RunConfig {
  std::string experiment = "default";  ///< runs/<experiment>/
  uint64_t seed = 0;                   ///< folds use seed + repeat; members seed + repeat*1000 + fold*10 + m
  std::string device = "auto";
  DataConfig data;
  EvaluationConfig evaluation;
  std::vector<ModelConfig> models;
  bool has_temporal() const;          ///< some model reads frame sequences
  std::string final_model;             ///< model refitted on all rows for `predict` ("" = last in models)
  bool refit_final = true;             ///< whether to refit and save the final model

  /// Its JSON keys but "task" and "models" (core/json_fields.h; models: train/estimator_registry.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("experiment", s.experiment);
    v("seed", s.seed);
    v("device", s.device);
    v("final_model", s.final_model);
    v("refit_final", s.refit_final);
    v("data", s.data);
    v("evaluation", s.evaluation);
  }

  /// Parses j strictly; base_dir resolves relative paths.
  static RunConfig from_json(const Json& j, const std::filesystem::path& base_dir);
  /// The fully resolved config (defaults filled in, paths absolute).
  Json to_json() const;
};

/// Loads CONFIG.json, applies `key=value` overrides, parses. ConfigError / UsageError on any problem.
RunConfig load_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

}  // namespace songlines::runs
