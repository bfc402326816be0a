#include "runs/task.h"

#include "core/error.h"
#include "runs/location_run.h"
#include "runs/quickstart.h"
#include "runs/vae_run.h"
#include "runs/vocoder_run.h"
#include "train/distributed.h"

namespace songlines::runs {

namespace fs = std::filesystem;

const std::vector<Task>& tasks() {
  // The one place a task is registered.
  static const std::vector<Task> table = {
      {"location", "location models under K-fold x R cross-validation (runs/location_run.h)",
       RunDirNaming::kTimestamped, true, prepare_location_run},
      {"vae", "the coordinate-conditioned VAE, its samples and evaluation (runs/vae_run.h)",
       RunDirNaming::kTimestamped, true, prepare_vae_run},
      {"vocoder", "the neural vocoder (log-mel -> waveform) and its evaluation against Griffin-Lim (runs/vocoder_run.h)",
       RunDirNaming::kTimestamped, true, prepare_vocoder_run},
      {"quickstart", "the main job: synthesized audio, features, location runs, a VAE run, one report (runs/quickstart.h)",
       RunDirNaming::kExperiment, false, prepare_quickstart},
  };
  return table;
}

void refuse_train_seed_and_device(const Json& config) {
  if (config.contains("train") && config["train"].is_object())
    for (const char* k : {"seed", "device"})
      if (config["train"].contains(k))
        throw ConfigError(std::string("train.") + k + ": set the top-level \"" + k + "\"");
}

void erase_train_seed_and_device(Json& j) {
  for (const char* k : {"seed", "device"}) j["train"].erase(k);
}

std::string metrics_run_text(const Json& metrics, const fs::path& run_dir) {
  if (!train::is_writer_rank()) return "";
  return metrics.dump(2) + "\nrun directory: " + run_dir.string() + "\n";
}

const Task& find_task(const std::string& name) {
  std::string names;
  for (const auto& t : tasks()) {
    if (t.name == name) return t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  throw ConfigError("task: unknown task \"" + name + "\" (" + names + ")");
}

std::string task_of(const Json& config, const std::string& default_task) {
  if (!config.is_object()) throw ConfigError("config: expected an object, got " + json_type_name(config));
  if (config.contains("task")) {
    if (!config["task"].is_string()) throw ConfigError("task: expected a string, got " + json_type_name(config["task"]));
    return config["task"].get<std::string>();
  }
  if (config.contains("type") && config["type"] == "vae") return "vae";  // the older spelling of "task": "vae"
  return default_task;
}

PreparedRun prepare_run(const Json& config, const fs::path& base_dir, const std::string& default_task) {
  return find_task(task_of(config, default_task)).prepare(config, base_dir);
}

PreparedRun load_run(const fs::path& config_file, const std::vector<std::string>& overrides,
                     const std::string& default_task) {
  Json j = load_json_file(config_file.string());
  for (const auto& o : overrides) apply_override(j, o);
  return prepare_run(j, fs::absolute(config_file).parent_path(), default_task);
}

fs::path default_run_dir(const PreparedRun& run, const fs::path& output_root) {
  return default_run_dir(find_task(run.task).naming, run.experiment, run.resolved, output_root);
}

}  // namespace songlines::runs
