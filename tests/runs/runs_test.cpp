// Config validation, import-table, `songlines run` (tiny) with resume, and predict end to end on a shard.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "runs/run_config.h"
#include "support/test_support.h"
#include "train/table_import.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

Json tiny_config(const std::string& table) {
  return Json::parse(R"({
    "experiment": "tiny", "seed": 1, "device": "cpu",
    "data": {"table": {"format": "gom", "path": ")" + table + R"("}},
    "evaluation": {"folds": 3, "repeats": 1},
    "models": [{"type": "centroid"}, {"type": "knn", "k": 3},
               {"name": "mlp", "type": "mlp", "hidden_sizes": [8], "head": {"type": "vmf_mixture"},
                "train": {"epochs": 5, "checkpoint_every": 2}}]
  })");
}

std::string slice() { return testing::data_path("gom/gom_slice_60.txt").string(); }

void expect_config_error(Json j, const std::string& needle) {
  try {
    RunConfig::from_json(j, ".");
    FAIL() << "expected ConfigError mentioning " << needle;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(RunConfig, ValidConfigResolvesDefaults) {
  auto c = RunConfig::from_json(tiny_config(slice()), ".");
  ASSERT_EQ(c.models.size(), 3u);
  EXPECT_EQ(c.models[0].name, "centroid");
  EXPECT_EQ(c.final_model, "mlp");
  EXPECT_EQ(c.models[2].train.epochs, 5);
  EXPECT_EQ(c.to_json()["models"][2]["head"]["type"], "vmf_mixture");
  // The resolved config parses back to the same resolved config.
  EXPECT_EQ(RunConfig::from_json(c.to_json(), ".").to_json(), c.to_json());
}

TEST(RunConfig, UnknownKeysAndWrongTypesNameTheirPath) {
  auto j = tiny_config(slice());
  j["models"][2]["hiden_sizes"] = {4};
  expect_config_error(j, "models[2]: unknown key \"hiden_sizes\"");
  j = tiny_config(slice());
  j["models"][2]["train"]["epochs"] = "many";
  expect_config_error(j, "models[2].train.epochs");
  j = tiny_config(slice());
  j["evaluation"]["folds"] = 1.5;
  expect_config_error(j, "evaluation.folds");
  j = tiny_config(slice());
  j["models"][2]["head"]["type"] = "cube";
  expect_config_error(j, "models[2].head.type");
  j = tiny_config(slice());
  j["extra"] = true;
  expect_config_error(j, "unknown key \"extra\"");
}

TEST(ImportTable, GomSliceSkipsRowsWithoutCoordinates) {
  auto t = train::read_feature_table(slice(), train::TableFormat::kGom);
  EXPECT_EQ(t.rows, 60);
  EXPECT_EQ(t.tracks.size(), 58u);
  ASSERT_EQ(t.skipped.size(), 2u);
  EXPECT_NE(t.skipped[0].find("(0, 0)"), std::string::npos) << t.skipped[0];
  EXPECT_NE(t.skipped[1].find("no coordinates"), std::string::npos) << t.skipped[1];
  EXPECT_EQ(t.tracks[0].summary.at("gom").mean.size(), 68u);
  EXPECT_FALSE(t.tracks[0].country.empty());
}

TEST(ImportTable, SeedCsvBlocksAreNamedLikeAudioFeatures) {
  testing::TempDir dir;
  std::ofstream f(dir / "seed.csv");
  f << "track_id,track_name,artist_name,Country,Latitude,Longitude";
  const std::pair<const char*, int> blocks[] = {{"MFCC", 20}, {"Chroma", 12}, {"Spectral Contrast", 7}, {"Tonnetz", 6}};
  for (auto [p, n] : blocks)
    for (int k = 1; k <= n; ++k) f << "," << p << k;
  f << "\n";
  auto row = [&](const char* id, const char* name, const char* lat, const char* lon) {
    f << id << "," << name << ",Artist,France," << lat << "," << lon;
    for (int k = 0; k < 45; ++k) f << "," << k * 0.5;
    f << "\n";
  };
  row("1", "\"Hello, world\"", "48.85", "2.35");
  row("2", "Nowhere", "0", "0");
  row("3", "Blank", "", "");
  f.close();
  auto t = train::read_feature_table(dir / "seed.csv", train::TableFormat::kSeedCsv);
  ASSERT_EQ(t.tracks.size(), 1u);
  EXPECT_EQ(t.skipped.size(), 2u);
  EXPECT_EQ(t.tracks[0].country, "FR");
  EXPECT_EQ(t.tracks[0].summary.at("mfcc").mean.size(), 20u);
  EXPECT_EQ(t.tracks[0].summary.at("chroma_stft").mean.size(), 12u);
  EXPECT_EQ(t.tracks[0].summary.at("spectral_contrast").mean.size(), 7u);
  EXPECT_DOUBLE_EQ(t.tracks[0].summary.at("tonnetz").mean[5], 22.0);
}

TEST(RunCli, BadConfigExitsTwoNamingTheKey) {
  testing::TempDir dir;
  auto j = tiny_config(slice());
  j["evaluation"]["fold"] = 3;
  std::ofstream(dir / "bad.json") << j.dump();
  auto r = testing::run_songlines("run " + (dir / "bad.json").string() + " --output-root " + dir.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("evaluation: unknown key \"fold\""), std::string::npos) << r.output;
}

TEST(RunCli, RunResumesAndPredictReadsImportedShard) {
  testing::TempDir dir;
  std::ofstream(dir / "tiny.json") << tiny_config(slice()).dump();
  auto run_dir = dir / "run";
  auto r = testing::run_songlines("run " + (dir / "tiny.json").string() + " --run-dir " + run_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"config.json", "env.json", "metrics.jsonl", "metrics.json", "predictions.csv",
                        "checkpoints/final/model.json", "checkpoints/r0-f0/mlp/member-0.json"})
    EXPECT_TRUE(fs::exists(run_dir / f)) << f;
  Json metrics = load_json_file((run_dir / "metrics.json").string());
  EXPECT_GT(metrics["models"]["knn"]["mean_km"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(metrics["models"]["mlp"]["folds"].get<int>(), 3);

  // Interrupted run: remove one fold's result; the rerun recomputes only that fold.
  fs::remove(run_dir / "checkpoints/r0-f2/mlp/predictions.json");
  auto again = testing::run_songlines("run " + (dir / "tiny.json").string() + " --run-dir " + run_dir.string());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("resuming"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("mlp repeat 0 fold 2"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("mlp repeat 0 fold 1"), std::string::npos) << again.output;

  auto imp = testing::run_songlines("import-table --format gom --input " + slice() + " --output " + (dir / "shards").string());
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  EXPECT_NE(imp.output.find("imported 58 of 60 rows (2 skipped)"), std::string::npos) << imp.output;
  auto pred = testing::run_songlines("predict --model " + run_dir.string() + " --input " + (dir / "shards").string() +
                                     " --output " + (dir / "p.csv").string());
  ASSERT_EQ(pred.exit_code, 0) << pred.output;
  std::ifstream in(dir / "p.csv");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 59);  // header + 58 tracks
}

}  // namespace
}  // namespace songlines::runs
