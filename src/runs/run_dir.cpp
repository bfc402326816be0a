#include "runs/run_dir.h"

#include <chrono>
#include <ctime>
#include <iomanip>
#include <sstream>

#include "core/error.h"

namespace songlines::runs {

namespace fs = std::filesystem;

Json run_identity(Json resolved) {
  // The device and the memory budget change how a run computes, not what.
  resolved.erase("device");
  if (auto data = resolved.find("data"); data != resolved.end() && data->is_object()) data->erase("memory_budget_mb");
  return resolved;
}

fs::path default_run_dir(RunDirNaming naming, const std::string& experiment, const Json& resolved,
                         const fs::path& output_root) {
  if (naming == RunDirNaming::kExperiment) return output_root / experiment;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::ostringstream id;
  id << std::put_time(&tm, "%Y%m%d-%H%M%S") << "-" << std::hex
     << (std::hash<std::string>{}(run_identity(resolved).dump()) & 0xffffff);
  return output_root / experiment / id.str();
}

RunDirState check_run_dir(const fs::path& run_dir, const Json& resolved, const RunDirFiles& files) {
  const fs::path config_path = run_dir / files.config;
  const bool finished = fs::exists(run_dir / files.result);
  if (!fs::exists(config_path)) {
    if (finished)
      throw UsageError(run_dir.string() + ": holds a " + files.result + " but no " + files.config +
                       "; choose another run directory");
    return RunDirState::kNew;
  }
  Json existing;
  try {
    existing = load_json_file(config_path.string());
  } catch (const Error& e) {
    throw UsageError(run_dir.string() + ": its " + files.config + " cannot be read (" + e.what() +
                     "); choose another run directory");
  }
  if (run_identity(std::move(existing)) != run_identity(resolved))
    throw UsageError(run_dir.string() + ": exists with a different config; choose another run directory");
  return finished ? RunDirState::kComplete : RunDirState::kUnfinished;
}

}  // namespace songlines::runs
