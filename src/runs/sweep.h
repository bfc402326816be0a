// `songlines sweep`: a base run config plus a "sweep" section expands into trials (docs/experiments.md).
//   "sweep": {
//     "name": "heads",                                      // sweep directory name (default: config file stem)
//     "grid": {"models.0.head.type": ["sphere", "vmf_mixture"]},   // cartesian product over dotted keys
//     "random": {"samples": 4, "seed": 0,                    // seeded random samples, crossed with the grid
//                "params": {"models.0.train.learning_rate": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
//                           "models.0.dropout": {"distribution": "uniform", "low": 0, "high": 0.5},
//                           "models.0.hidden_sizes": {"distribution": "choice", "values": [[64], [256]]},
//                           "evaluation.folds": {"distribution": "int", "low": 3, "high": 5}}},
//     "seeds": [0, 1, 2]                                    // every combination repeated per top-level seed
//   }
// A trial is one run directory <sweep_dir>/trials/<name>/, named by its overrides; trials that differ only in
// the seed form a group, and the results table pools seeds and folds per group.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace songlines::runs {

struct Trial {
  int index = 0;                        ///< 0-based; the Slurm array task id
  std::string name;                     ///< filesystem-safe, stable: derived from the overrides
  std::string group;                    ///< name without the seed part (trials pooled in the results table)
  std::vector<std::string> overrides;   ///< key=value (JSON values), applied to the base config in order
  std::optional<uint64_t> seed;         ///< the "seeds" entry, when the sweep has seeds
};

struct SweepSpec {
  std::string name;
  std::filesystem::path config_file;    ///< absolute path of the sweep config
  Json base;                            ///< the config without its "sweep" section, --set overrides applied
  std::vector<std::string> base_overrides;  ///< --set overrides of the sweep command (passed to every trial)
  std::string task = "location";        ///< the trials' task (runs/task.h): location or vae
  std::vector<Trial> trials;
};

/// Parses the sweep config strictly and expands its trials. Every trial's config is validated (unknown keys,
/// wrong types) before anything runs, so a typo fails the whole sweep up front. ConfigError on problems.
SweepSpec load_sweep(const std::filesystem::path& config_file, const std::vector<std::string>& overrides);

/// Whether a config JSON has a "sweep" section.
bool is_sweep_config(const Json& j);

/// A filesystem-safe name for an override list: "models.0.head.type=sphere" -> "models.0.head.type-sphere",
/// joined with "__"; long names are shortened with a hash suffix so they stay stable and under 200 bytes.
std::string trial_name(const std::vector<std::string>& overrides);

/// <output_root>/sweeps/<name>.
std::filesystem::path default_sweep_dir(const SweepSpec& spec, const std::filesystem::path& output_root);

/// A trial is complete when its run wrote metrics.json (the last file a run writes).
bool trial_complete(const std::filesystem::path& trial_dir);

struct SweepOptions {
  int workers = 1;                      ///< parallel child processes (capped at the GPU count when GPUs exist)
  std::optional<int> only_trial;        ///< run just this trial index (a Slurm array task)
  std::filesystem::path executable;     ///< the songlines binary to spawn (default /proc/self/exe)
  std::vector<std::string> child_args;  ///< the child's arguments after "sweep CONFIG" (--set ..., --sweep-dir DIR)
};

struct TrialOutcome {
  int index = 0;
  enum class State { kSkipped, kCompleted, kFailed } state = State::kFailed;
  int exit_code = 0;                    ///< child's exit status, or 128 + signal
  double seconds = 0;
};

/// The trial's config: base with its overrides applied.
Json trial_config(const SweepSpec& spec, const Trial& trial);

/// Runs one trial in this process (the body of `songlines sweep CONFIG --trial K`): a run of the sweep's task
/// (runs/task.h, as `songlines run` runs it) in <sweep_dir>/trials/<name>/, resumed when partial. Returns
/// metrics.json's content.
Json run_trial(const SweepSpec& spec, const Trial& trial, const std::filesystem::path& sweep_dir, std::ostream& log);

/// Writes sweep.json and runs the trials that are not complete with a pool of child processes, each
/// `songlines sweep CONFIG --trial K --sweep-dir DIR` logging to TRIAL/log.txt, so a crash in one trial is
/// isolated and reported while the others go on. log gets one line per trial event.
std::vector<TrialOutcome> run_sweep(const SweepSpec& spec, const std::filesystem::path& sweep_dir,
                                    const SweepOptions& options, std::ostream& log);

/// The sweep.json manifest content.
Json sweep_manifest(const SweepSpec& spec, const std::filesystem::path& sweep_dir);

/// A Slurm job-array script that runs one trial per array task on shared storage.
std::string slurm_script(const SweepSpec& spec, const std::filesystem::path& sweep_dir,
                         const std::filesystem::path& executable, const std::vector<std::string>& sweep_args);

}  // namespace songlines::runs
