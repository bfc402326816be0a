// The run directory's rules, one of each for every task (runs/task.h): its default name, the config's identity,
// and whether a directory may be used for a config (resume or refuse). docs/experiments.md "Run directories".
#pragma once

#include <filesystem>
#include <string>

#include "core/config.h"

namespace songlines::runs {

/// A resolved config's identity for resuming: everything but "device" and "data.memory_budget_mb", which change
/// how a run computes, not what (the same config resumes on another device or with another budget).
Json run_identity(Json resolved);

/// How a task names its run directory when no --run-dir is given.
enum class RunDirNaming {
  kTimestamped,  ///< <output_root>/<experiment>/<UTC YYYYmmdd-HHMMSS>-<6 hex digits of the identity's hash>
  kExperiment,   ///< <output_root>/<experiment>: a job that a rerun resumes in place (the main job)
};

/// The default run directory of a config (experiment: its "experiment" name; resolved: the resolved config).
std::filesystem::path default_run_dir(RunDirNaming naming, const std::string& experiment, const Json& resolved,
                                      const std::filesystem::path& output_root);

/// What a run directory holds for a config: nothing of a run yet, an unfinished run (its config file only), or
/// a finished one (the config file and the result file, which a run writes last).
enum class RunDirState { kNew, kUnfinished, kComplete };

/// Names of a task's config and result files in its run directory.
struct RunDirFiles {
  std::string config = "config.json";   ///< the resolved config, written when the run starts
  std::string result = "metrics.json";  ///< written last: its presence marks a finished run
};

/// The one resume-or-refuse rule. Refuses (UsageError naming the directory, exit 2) a directory whose config
/// file has another identity, cannot be read, or is missing beside a result file (a result of unknown origin is
/// never replaced); otherwise says what the directory holds. Writes nothing.
RunDirState check_run_dir(const std::filesystem::path& run_dir, const Json& resolved, const RunDirFiles& files = {});

}  // namespace songlines::runs
