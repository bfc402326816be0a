#include "train/estimator_registry.h"

#include "core/error.h"

namespace songlines::train {

namespace fs = std::filesystem;

namespace {

// The estimators that are not libtorch models. A new one: its class (its own file, with save() and a static
// load from its model.json) and one row here.
std::vector<EstimatorKind> baseline_kinds() {
  EstimatorKind centroid;
  centroid.type = centroid.saved_type = CentroidBaseline::kType;
  centroid.read = [](ConfigReader&, ModelConfig&, const std::string&) {};
  centroid.write = [](const ModelConfig&, Json&) {};
  centroid.make = [](const ModelConfig&, uint64_t, const std::optional<fs::path>&) {
    return std::make_unique<CentroidBaseline>();
  };
  centroid.load = [](const fs::path&, const Json& saved, const std::string&) { return CentroidBaseline::load(saved); };

  EstimatorKind knn;
  knn.type = knn.saved_type = KnnBaseline::kType;
  knn.read = [](ConfigReader& m, ModelConfig& c, const std::string&) {
    m.read("k", c.k);
    if (c.k < 1) throw ConfigError(m.join("k") + ": must be >= 1");
  };
  knn.write = [](const ModelConfig& c, Json& entry) { entry["k"] = c.k; };
  knn.make = [](const ModelConfig& c, uint64_t, const std::optional<fs::path>&) {
    return std::make_unique<KnnBaseline>(c.k);
  };
  knn.load = [](const fs::path&, const Json& saved, const std::string&) { return KnnBaseline::load(saved); };
  return {centroid, knn};
}

// A libtorch location model with the given encoder (models/location_model.h): the model section's keys at the
// entry's top level, its training under "train".
EstimatorKind neural_kind(const std::string& encoder) {
  EstimatorKind n;
  n.type = encoder;
  n.saved_type = NeuralLocationEstimator::kSavedType;
  n.trains_by_epochs = true;
  n.data_parallel = true;
  n.reads_frames = models::encoder_reads_frames(encoder);
  n.read = [](ConfigReader& m, ModelConfig& c, const std::string& device) {
    c.model.type = c.type;
    read_fields(m, c.model);  // the model's keys sit at the entry's top level
    validate_fields(c.model, m.path());
    FieldReader fields(m);
    fields("train", c.train);
    c.train.device = device;
  };
  n.write = [](const ModelConfig& c, Json& entry) {
    write_fields(c.model, entry);
    FieldWriter fields(entry);
    fields("train", c.train);
  };
  n.make = [](const ModelConfig& c, uint64_t seed, const std::optional<fs::path>& checkpoint_dir) {
    auto t = c.train;
    t.seed = seed;
    auto e = std::make_unique<NeuralLocationEstimator>(c.model, t);
    if (checkpoint_dir) e->set_checkpoint_dir(*checkpoint_dir);
    return e;
  };
  n.load = [](const fs::path& dir, const Json&, const std::string& device) {
    return NeuralLocationEstimator::load(dir, device);
  };
  return n;
}

}  // namespace

const std::vector<EstimatorKind>& estimator_kinds() {
  static const std::vector<EstimatorKind> kinds = [] {
    auto all = baseline_kinds();
    for (const auto& encoder : models::encoder_types()) all.push_back(neural_kind(encoder));
    return all;
  }();
  return kinds;
}

const EstimatorKind& estimator_kind(const std::string& type, const std::string& key_path) {
  std::string known;
  for (const auto& kind : estimator_kinds()) {
    if (kind.type == type) return kind;
    known += (known.empty() ? "" : ", ") + kind.type;
  }
  throw ConfigError(key_path + ": unknown model \"" + type + "\" (" + known + ")");
}

const EstimatorKind& ModelConfig::kind() const { return estimator_kind(type, name + ".type"); }

ModelConfig read_model_config(ConfigReader& m, const std::string& device) {
  ModelConfig c;
  m.require("type", c.type);
  c.name = c.type;
  m.read("name", c.name);
  estimator_kind(c.type, m.join("type")).read(m, c, device);
  return c;
}

Json model_config_to_json(const ModelConfig& c) {
  Json entry = {{"name", c.name}, {"type", c.type}};
  c.kind().write(c, entry);
  return entry;
}

std::unique_ptr<LocationEstimator> make_estimator(const ModelConfig& c, uint64_t seed,
                                                  const std::optional<fs::path>& checkpoint_dir) {
  return c.kind().make(c, seed, checkpoint_dir);
}

std::unique_ptr<LocationEstimator> load_estimator(const fs::path& dir, const std::string& device) {
  const auto file = dir / "model.json";
  if (!fs::exists(file)) throw InputError(file.string(), "no saved model here");
  const Json saved = load_json_file(file.string());
  const std::string type = saved.value("type", "");
  for (const auto& kind : estimator_kinds())
    if (kind.saved_type == type) return kind.load(dir, saved, device);
  throw InputError(file.string(), "unknown model type \"" + type + "\"");
}

}  // namespace songlines::train
