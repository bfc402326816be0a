#include "core/config.h"

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>

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

// A key written twice in one object is an error naming its path (nlohmann would keep the last value silently);
// the same key in different objects, and in objects inside arrays, is fine.
TEST(LoadJsonFile, ADuplicateKeyIsAnErrorNamingItsPath) {
  const auto dir = std::filesystem::temp_directory_path() / ("songlines-dup-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto message = [&](const std::string& text) {
    std::ofstream(dir / "c.json") << text;
    try {
      (void)load_json_file((dir / "c.json").string());
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(R"({"seed": 1, "seed": 2})").find("duplicate key \"seed\""), std::string::npos);
  const std::string nested = message(R"({"evaluation": {"folds": 3, "repeats": 1, "folds": 5}})");
  EXPECT_NE(nested.find("duplicate key \"evaluation.folds\""), std::string::npos) << nested;
  EXPECT_NE(nested.find("c.json"), std::string::npos) << nested;
  EXPECT_EQ(message(R"({"a": {"k": 1}, "b": {"k": 2}, "m": [{"k": 1}, {"k": 2}]})"), "(no error)");
  EXPECT_EQ(message("{\"a\": 1, // a comment\n \"b\": 2}"), "(no error)");
  std::filesystem::remove_all(dir);
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
