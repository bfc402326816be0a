// The location task (`songlines run` on a config without "task", or "task": "location"): load data, build the same K-fold x R assignment for every model, fit
// and evaluate each model per fold, write the run directory (docs/location-model.md):
//   config.json (resolved), env.json, metrics.jsonl (per epoch and per fold), metrics.json (aggregates),
//   predictions.csv, checkpoints/<repeat>-<fold>/<model>/ (fold results; epoch checkpoints of neural models),
//   checkpoints/final/ (the final model refitted on all rows, loaded by `songlines predict`; complete once
//   checkpoints/final/complete.json exists, which is written last).
// A run started again on an existing run directory with the same config (runs/run_dir.h check_run_dir) skips
// finished folds and resumes unfinished training from its last epoch checkpoint.
#pragma once

#include <filesystem>
#include <ostream>

#include "runs/run_config.h"
#include "runs/task.h"
#include "train/dataset.h"

namespace songlines::runs {

struct RunResult {
  std::filesystem::path run_dir;
  Json metrics;  ///< what metrics.json holds
};

/// The marker file of a finished final model, written last and atomically in checkpoints/final/.
inline constexpr const char* kFinalModelMarker = "complete.json";

/// run_dir/checkpoints/final.
std::filesystem::path final_model_dir(const std::filesystem::path& run_dir);

/// Whether run_dir's final model was finished (its marker exists); nothing else proves it.
bool final_model_complete(const std::filesystem::path& run_dir);

/// Loads the dataset a config names.
train::Dataset load_run_data(const RunConfig& config);

/// Runs (or resumes) the experiment in run_dir (made absolute against the working directory). log receives
/// one progress line per fold.
RunResult run_experiment(const RunConfig& config, const std::filesystem::path& run_dir, std::ostream& log);

/// The location task's entry in the task table (runs/task.h): parses j as a RunConfig.
PreparedRun prepare_location_run(const Json& j, const std::filesystem::path& base_dir);

}  // namespace songlines::runs
