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

void DataConfig::validate(const std::string& path) const {
  if (memory_budget_mb < 0)
    throw ConfigError(key_path(path, "memory_budget_mb") + ": must be >= 0 (0: a quarter of the memory)");
}

void EvaluationConfig::validate(const std::string& path) const {
  if (folds < 2) throw ConfigError(key_path(path, "folds") + ": must be >= 2");
  if (repeats < 1) throw ConfigError(key_path(path, "repeats") + ": must be >= 1");
  if (group_by != "none" && group_by != "country" && group_by != "artist")
    throw ConfigError(key_path(path, "group_by") + ": expected none, country or artist, got \"" + group_by + "\"");
}

RunConfig RunConfig::from_json(const Json& j, const std::filesystem::path& base_dir) {
  if (!j.is_object()) throw ConfigError("config: expected an object, got " + json_type_name(j));
  RunConfig c;
  ConfigReader r(j, "");
  if (r.has("task")) {  // optional: a config without "task" is a location run (runs/task.h)
    std::string task;
    r.read("task", task);
    if (task != "location") throw ConfigError("task: a location run config has \"task\": \"location\", got \"" + task + "\"");
  }
  read_fields(r, c);
  if (c.experiment.empty() || c.experiment.find('/') != std::string::npos)
    throw ConfigError("experiment: must be a non-empty name without '/', got \"" + c.experiment + "\"");
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda")
    throw ConfigError("device: expected auto, cpu or cuda, got \"" + c.device + "\"");
  if (const Json& d = r.raw("data"); d.is_object() && d.contains("table")) {
    ConfigReader t(d.at("table"), "data.table");
    t.require("format", c.data.table_format);
    t.require("path", c.data.table_path);
    t.finish();
    if (c.data.table_format != "gom" && c.data.table_format != "seed-csv")
      throw ConfigError("data.table.format: expected gom or seed-csv, got \"" + c.data.table_format + "\"");
    c.data.table_path = resolve(base_dir, c.data.table_path);
  }
  for (auto& s : c.data.shards) s = absolute_path_or_pattern(base_dir, s);  // a pattern stays one (load_run_data)
  if (c.data.shards.empty() == c.data.table_path.empty())
    throw ConfigError("data: give exactly one of \"shards\" or \"table\"");
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
  Json j = fields_to_json(*this);
  if (data.shards.empty()) {
    j["data"].erase("shards");
    j["data"]["table"] = {{"format", data.table_format}, {"path", data.table_path}};
  }
  Json ms = Json::array();
  for (const auto& m : models) ms.push_back(train::model_config_to_json(m));
  j["models"] = ms;
  return j;
}

RunConfig load_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  Json j = load_json_file(file.string());
  for (const auto& o : overrides) apply_override(j, o);
  return RunConfig::from_json(j, std::filesystem::absolute(file).parent_path());
}

}  // namespace songlines::runs
