// The registries of location estimators (train/estimator_registry.h), encoders and heads (models/): every
// registered type parses, writes back, builds, and loads what it saved; an unknown type is a ConfigError naming
// its key path and the known types.
#include "train/estimator_registry.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "support/test_support.h"
#include "synthetic_dataset.h"

namespace songlines::train {
namespace {

using testing_data::range;
using testing_data::synthetic;

// The message of the ConfigError that f throws ("" when it throws none).
template <typename F>
std::string config_error(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> kind_types() {
  std::vector<std::string> types;
  for (const auto& k : estimator_kinds()) types.push_back(k.type);
  return types;
}

TEST(EstimatorRegistry, ListsBaselinesThenOneNeuralKindPerEncoder) {
  EXPECT_EQ(kind_types(), (std::vector<std::string>{"centroid", "knn", "mlp", "temporal"}));
  EXPECT_EQ(models::encoder_types(), (std::vector<std::string>{"mlp", "temporal"}));
  EXPECT_FALSE(estimator_kind("knn", "t").trains_by_epochs);
  EXPECT_TRUE(estimator_kind("mlp", "t").trains_by_epochs);
  EXPECT_FALSE(estimator_kind("mlp", "t").reads_frames);
  EXPECT_TRUE(estimator_kind("temporal", "t").reads_frames);
  EXPECT_EQ(estimator_kind("temporal", "t").saved_type, "neural");
  EXPECT_EQ(estimator_kind("centroid", "t").saved_type, "centroid");
}

TEST(EstimatorRegistry, UnknownTypesNameTheKeyPathAndTheKnownTypes) {
  EXPECT_EQ(config_error([] { estimator_kind("gru", "models[3].type"); }),
            "models[3].type: unknown model \"gru\" (centroid, knn, mlp, temporal)");
  const Json entry = {{"type", "gru"}};
  EXPECT_EQ(config_error([&] {
              ConfigReader m(entry, "models[1]");
              read_model_config(m, "cpu");
            }),
            "models[1].type: unknown model \"gru\" (centroid, knn, mlp, temporal)");
  EXPECT_EQ(config_error([] { models::encoder_reads_frames("gru"); }), "model.type: unknown model \"gru\" (mlp, temporal)");
  EXPECT_EQ(config_error([] { models::check_head_type("cube", "models[2].head.type"); }),
            "models[2].head.type: unknown head \"cube\" (sphere, latlon_mse, vmf_mixture)");
  EXPECT_EQ(models::head_types(), (std::vector<std::string>{"sphere", "latlon_mse", "vmf_mixture"}));
}

TEST(EstimatorRegistry, EachKindReadsOnlyItsOwnKeys) {
  const Json knn = {{"type", "knn"}, {"k", 0}};
  EXPECT_EQ(config_error([&] {
              ConfigReader m(knn, "models[0]");
              read_model_config(m, "cpu");
            }),
            "models[0].k: must be >= 1");
  const Json centroid = {{"type", "centroid"}, {"k", 3}};
  EXPECT_NE(config_error([&] {
              ConfigReader m(centroid, "models[0]");
              read_model_config(m, "cpu");
              m.finish();
            }).find("models[0]: unknown key \"k\""),
            std::string::npos);
}

// Every kind: its resolved JSON reads back to the same JSON, and the device comes from the run.
TEST(EstimatorRegistry, ConfigsRoundTripThroughTheirJson) {
  for (const auto& type : kind_types()) {
    Json entry = {{"type", type}, {"name", type + "-x"}};
    if (type == "knn") entry["k"] = 7;
    if (type == "mlp") entry["head"] = {{"type", "vmf_mixture"}, {"predict", "median"}};
    ConfigReader m(entry, "models[0]");
    const ModelConfig c = read_model_config(m, "cpu");
    m.finish();
    EXPECT_EQ(c.name, type + "-x");
    const Json written = model_config_to_json(c);
    ConfigReader again(written, "models[0]");
    const ModelConfig d = read_model_config(again, "cpu");
    again.finish();
    EXPECT_EQ(model_config_to_json(d), written) << type;
    if (estimator_kind(type, "t").trains_by_epochs) {
      EXPECT_EQ(d.model.type, type);
      EXPECT_EQ(d.train.device, "cpu");
    }
  }
}

// Every kind that predicts from summary rows: make, fit, save, load through the registry, same predictions.
TEST(EstimatorRegistry, LoadEstimatorRestoresWhatEachKindSaved) {
  const auto d = synthetic(40, 9);
  for (const auto& kind : estimator_kinds()) {
    if (kind.reads_frames) continue;  // frame models: tests/runs/temporal_test.cpp
    ModelConfig c;
    c.type = c.name = kind.type;
    c.k = 3;
    c.model.type = kind.type;
    c.model.hidden_sizes = {8};
    c.train.epochs = 5;
    c.train.device = "cpu";
    auto est = make_estimator(c, 11, std::nullopt);
    EXPECT_EQ(est->type(), kind.type);
    est->fit(d, range(0, 30), {});
    const auto p = est->predict(d, range(30, 40));
    testing::TempDir dir;
    est->save(dir.path());
    EXPECT_EQ(load_json_file((dir.path() / "model.json").string()).at("type"), kind.saved_type);
    const auto loaded = load_estimator(dir.path(), "cpu");
    EXPECT_EQ(loaded->type(), kind.type);
    const auto q = loaded->predict(d, range(30, 40));
    ASSERT_EQ(q.points.size(), p.points.size());
    double worst = 0;
    size_t worst_row = 0;
    for (size_t i = 0; i < p.points.size(); ++i) {
      const double km = geo::distance_km(p.points[i], q.points[i]);
      if (km > worst) worst = km, worst_row = i;
    }
    EXPECT_LT(worst, 1e-3) << kind.type << ": worst row " << worst_row << " moved " << worst << " km";
  }
}

TEST(EstimatorRegistry, LoadEstimatorRefusesAnUnknownSavedType) {
  testing::TempDir dir;
  write_json_file_atomic((dir.path() / "model.json").string(), {{"type", "forest"}});
  try {
    load_estimator(dir.path(), "cpu");
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model type \"forest\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace songlines::train
