#include "runs/run_config.h"

#include <set>

#include "core/error.h"
#include "core/path_rule.h"

namespace songlines::runs {

namespace {
std::string resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return (path.is_absolute() ? path : (base / path)).lexically_normal().string();
}
}  // namespace

RunConfig RunConfig::from_json(const Json& j, const std::filesystem::path& base_dir) {
  if (!j.is_object()) throw ConfigError("config: expected an object, got " + json_type_name(j));
  RunConfig c;
  ConfigReader r(j, "");
  if (r.has("task")) {  // optional: a config without "task" is a location run (runs/task.h)
    std::string task;
    r.read("task", task);
    if (task != "location") throw ConfigError("task: a location run config has \"task\": \"location\", got \"" + task + "\"");
  }
  r.read("experiment", c.experiment);
  r.read("seed", c.seed);
  r.read("device", c.device);
  r.read("final_model", c.final_model);
  r.read("refit_final", c.refit_final);
  if (c.experiment.empty() || c.experiment.find('/') != std::string::npos)
    throw ConfigError("experiment: must be a non-empty name without '/', got \"" + c.experiment + "\"");
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda")
    throw ConfigError("device: expected auto, cpu or cuda, got \"" + c.device + "\"");
  {
    auto d = r.child("data");
    d.read("shards", c.data.shards);
    d.read("features", c.data.features);
    d.read("frame_features", c.data.frame_features);
    d.read("memory_budget_mb", c.data.memory_budget_mb);
    if (c.data.memory_budget_mb < 0) throw ConfigError("data.memory_budget_mb: must be >= 0 (0: a quarter of the memory)");
    if (d.has("table")) {
      auto t = d.child("table");
      t.require("format", c.data.table_format);
      t.require("path", c.data.table_path);
      t.finish();
      if (c.data.table_format != "gom" && c.data.table_format != "seed-csv")
        throw ConfigError("data.table.format: expected gom or seed-csv, got \"" + c.data.table_format + "\"");
      c.data.table_path = resolve(base_dir, c.data.table_path);
    } else {
      d.accept("table");
    }
    d.finish();
    for (auto& s : c.data.shards) s = absolute_path_or_pattern(base_dir, s);  // a pattern stays one (load_run_data)
    if (c.data.shards.empty() == c.data.table_path.empty())
      throw ConfigError("data: give exactly one of \"shards\" or \"table\"");
  }
  {
    auto e = r.child("evaluation");
    e.read("folds", c.evaluation.folds);
    e.read("repeats", c.evaluation.repeats);
    e.read("group_by", c.evaluation.group_by);
    e.finish();
    if (c.evaluation.folds < 2) throw ConfigError("evaluation.folds: must be >= 2");
    if (c.evaluation.repeats < 1) throw ConfigError("evaluation.repeats: must be >= 1");
    if (c.evaluation.group_by != "none" && c.evaluation.group_by != "country" && c.evaluation.group_by != "artist")
      throw ConfigError("evaluation.group_by: expected none, country or artist, got \"" + c.evaluation.group_by + "\"");
  }
  const Json& ms = r.raw("models");
  if (!ms.is_array() || ms.empty()) throw ConfigError("models: expected a non-empty array of model objects");
  std::set<std::string> names;
  for (size_t i = 0; i < ms.size(); ++i) {
    ConfigReader m(ms[i], "models[" + std::to_string(i) + "]");
    ModelConfig mc = train::read_model_config(m, c.device);
    m.finish();
    if (!names.insert(mc.name).second) throw ConfigError(m.join("name") + ": duplicate model name \"" + mc.name + "\"");
    c.models.push_back(std::move(mc));
  }
  if (c.has_temporal()) {
    if (!c.data.table_path.empty())
      throw ConfigError("data.table: temporal models read frame sequences; give data.shards (from extract)");
    if (c.data.frame_features.empty()) c.data.frame_features = train::default_frame_blocks();
  }
  if (c.final_model.empty()) c.final_model = c.models.back().name;
  if (!names.count(c.final_model)) throw ConfigError("final_model: no model named \"" + c.final_model + "\"");
  r.finish();
  return c;
}

bool RunConfig::has_temporal() const {
  for (const auto& m : models)
    if (m.kind().reads_frames) return true;
  return false;
}

Json RunConfig::to_json() const {
  Json data = {{"features", this->data.features},
               {"frame_features", this->data.frame_features},
               {"memory_budget_mb", this->data.memory_budget_mb}};
  if (!this->data.shards.empty()) data["shards"] = this->data.shards;
  else data["table"] = {{"format", this->data.table_format}, {"path", this->data.table_path}};
  Json ms = Json::array();
  for (const auto& m : models) ms.push_back(train::model_config_to_json(m));
  return {{"experiment", experiment},
          {"seed", seed},
          {"device", device},
          {"data", data},
          {"evaluation", {{"folds", evaluation.folds}, {"repeats", evaluation.repeats}, {"group_by", evaluation.group_by}}},
          {"models", ms},
          {"final_model", final_model},
          {"refit_final", refit_final}};
}

RunConfig load_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  Json j = load_json_file(file.string());
  for (const auto& o : overrides) apply_override(j, o);
  return RunConfig::from_json(j, std::filesystem::absolute(file).parent_path());
}

}  // namespace songlines::runs
