// The tasks of `songlines run`, in one registry: a config's "task" key picks one ("location" when absent), and
// `songlines run`, `songlines sweep` (each trial) and the main job's parts all go through it. A task parses its
// config strictly, names its default run directory (runs/run_dir.h), and runs or resumes in a run directory
// under the one resume-or-refuse rule (check_run_dir).
//
// A new task (a vocoder, a distributed run) is one entry in the table of task.cpp: a prepare function that
// parses the config and returns a PreparedRun. docs/architecture.md says where its code goes.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/config.h"
#include "runs/run_dir.h"

namespace songlines::runs {

/// What a finished run hands back.
struct TaskResult {
  std::filesystem::path run_dir;  ///< absolute
  Json metrics;                   ///< what its result file holds (metrics.json; the main job's summary.json)
  std::string text;               ///< what `songlines run` prints on stdout
};

/// A parsed config of one task, ready to run.
struct PreparedRun {
  std::string task;        ///< the task's name
  std::string experiment;  ///< the config's "experiment": runs/<experiment>/
  Json resolved;           ///< the fully resolved config, as the run writes it back
  /// Runs, or resumes, in run_dir (made absolute); log gets the progress lines.
  std::function<TaskResult(const std::filesystem::path& run_dir, std::ostream& log)> run;
};

struct Task {
  std::string name;           ///< the value of "task" in a config
  std::string what;           ///< one line for messages and docs
  RunDirNaming naming = RunDirNaming::kTimestamped;
  bool sweepable = true;      ///< a sweep's trials may be of this task (their run writes metrics.json)
  /// Parses config strictly (ConfigError naming the key path); base_dir resolves relative data paths.
  std::function<PreparedRun(const Json& config, const std::filesystem::path& base_dir)> prepare;
};

/// The VAE and vocoder run configs hold their training's seed and device at the top level only: ConfigError
/// ("train.seed: set the top-level \"seed\"") when config's "train" sets either.
void refuse_train_seed_and_device(const Json& config);
/// A run config's resolved JSON j without "seed" and "device" in its "train" (they are the top level's).
void erase_train_seed_and_device(Json& j);

/// What `songlines run` prints after a run whose result file holds metrics: metrics and the run directory, on the
/// writer rank (train::is_writer_rank); nothing on the other ranks of a data-parallel run.
std::string metrics_run_text(const Json& metrics, const std::filesystem::path& run_dir);

/// The PreparedRun of a task whose config type parses with Config::from_json(config, base_dir) and writes itself
/// with to_json(), and whose run (run_experiment(config, absolute run directory, log)) returns the content of
/// metrics.json (the VAE and vocoder runs).
template <class Config>
PreparedRun prepare_metrics_run(const std::string& task, const Json& config, const std::filesystem::path& base_dir,
                                Json (*run_experiment)(const Config&, const std::filesystem::path&, std::ostream&)) {
  auto c = std::make_shared<const Config>(Config::from_json(config, base_dir));
  return {task, c->experiment, c->to_json(),
          [c, run_experiment](const std::filesystem::path& run_dir_arg, std::ostream& log) {
            const std::filesystem::path run_dir = std::filesystem::absolute(run_dir_arg);
            Json metrics = run_experiment(*c, run_dir, log);
            std::string text = metrics_run_text(metrics, run_dir);
            return TaskResult{run_dir, std::move(metrics), std::move(text)};
          }};
}

/// Every task, in the order of the table.
const std::vector<Task>& tasks();

/// The task named name; ConfigError listing the tasks when there is none.
const Task& find_task(const std::string& name);

/// The task a config asks for: its "task" key, else the older spelling "type": "vae", else default_task.
/// ConfigError when "task" is not a string.
std::string task_of(const Json& config, const std::string& default_task = "location");

/// Prepares a config of any task (task_of(config, default_task)).
PreparedRun prepare_run(const Json& config, const std::filesystem::path& base_dir,
                        const std::string& default_task = "location");

/// Loads CONFIG.json, applies `key=value` overrides in order, and prepares it (relative paths inside the file
/// are relative to its folder).
PreparedRun load_run(const std::filesystem::path& config_file, const std::vector<std::string>& overrides,
                     const std::string& default_task = "location");

/// The default run directory of a prepared run under output_root (the task's naming).
std::filesystem::path default_run_dir(const PreparedRun& run, const std::filesystem::path& output_root);

}  // namespace songlines::runs
