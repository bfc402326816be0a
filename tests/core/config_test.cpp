#include "core/config.h"

#include <gtest/gtest.h>

namespace songlines {
namespace {

struct ModelOptions {
  std::vector<int> hidden_sizes{256, 128};  // units per layer
  double dropout = 0.1;                     // probability
  std::string type = "mlp";
};

ModelOptions parse(const Json& j) {
  ConfigReader r(j, "model");
  ModelOptions o;
  r.read("hidden_sizes", o.hidden_sizes);
  r.read("dropout", o.dropout);
  r.read("type", o.type);
  r.finish();
  return o;
}

TEST(ConfigReader, ReadsKnownKeysAndKeepsDefaults) {
  auto o = parse(Json::parse(R"({"dropout": 0.25})"));
  EXPECT_DOUBLE_EQ(o.dropout, 0.25);
  EXPECT_EQ(o.hidden_sizes, (std::vector<int>{256, 128}));
}

TEST(ConfigReader, UnknownKeyNamesItsPath) {
  try {
    parse(Json::parse(R"({"hiden": [1]})"));
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model: unknown key \"hiden\""), std::string::npos) << e.what();
  }
}

TEST(ConfigReader, WrongTypeNamesPathAndTypes) {
  try {
    parse(Json::parse(R"({"hidden_sizes": [1, "two"]})"));
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("model.hidden_sizes[1]: expected integer, got string"), std::string::npos) << m;
  }
  EXPECT_THROW(parse(Json::parse(R"({"dropout": "high"})")), ConfigError);
  EXPECT_THROW(parse(Json::parse(R"({"hidden_sizes": [1.5]})")), ConfigError);
}

TEST(ApplyOverride, SetsNestedKeysWithJsonValues) {
  Json root = Json::parse(R"({"model": {"dropout": 0.1}})");
  apply_override(root, "model.dropout=0.3");
  apply_override(root, "model.hidden_sizes=[64,32]");
  apply_override(root, "name=run a");
  EXPECT_DOUBLE_EQ(root["model"]["dropout"].get<double>(), 0.3);
  EXPECT_EQ(root["model"]["hidden_sizes"].size(), 2u);
  EXPECT_EQ(root["name"].get<std::string>(), "run a");
  EXPECT_THROW(apply_override(root, "nokey"), UsageError);
  EXPECT_THROW(apply_override(root, "model..x=1"), UsageError);
}

TEST(ApplyOverride, NumericComponentsIndexExistingArrayElements) {
  Json root = Json::parse(R"({"models": [{"type": "knn"}, {"type": "mlp", "train": {"epochs": 3}}]})");
  apply_override(root, "models.1.train.epochs=1");
  apply_override(root, "models.0.k=5");
  EXPECT_EQ(root["models"][1]["train"]["epochs"].get<int>(), 1);
  EXPECT_EQ(root["models"][0]["k"].get<int>(), 5);
  EXPECT_EQ(root["models"].size(), 2u);
  EXPECT_THROW(apply_override(root, "models.2.k=1"), UsageError);   // out of range: arrays never grow
  EXPECT_THROW(apply_override(root, "models.x.k=1"), UsageError);   // not an index
  EXPECT_THROW(apply_override(root, "models.0.type.y=1"), UsageError);  // through a string
}

}  // namespace
}  // namespace songlines
