// Config validation, import-table, `songlines run` (tiny) with resume, and predict end to end on a shard.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "audio/audio_file.h"
#include "core/error.h"
#include "runs/run_config.h"
#include "support/test_support.h"
#include "shards/metadata_blocks.h"
#include "train/dataset.h"
#include "core/csv.h"
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

/// A seed-csv header: the given leading columns, then MFCC1..20, Chroma1..12, Spectral Contrast1..7, Tonnetz1..6.
void write_seed_header(std::ostream& f, const std::string& leading) {
  f << leading;
  const std::pair<const char*, int> blocks[] = {{"MFCC", 20}, {"Chroma", 12}, {"Spectral Contrast", 7}, {"Tonnetz", 6}};
  for (auto [p, n] : blocks)
    for (int k = 1; k <= n; ++k) f << "," << p << k;
  f << "\n";
}

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
  write_seed_header(f, "track_id,track_name,artist_name,Country,Latitude,Longitude");
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

TEST(ImportTable, SeedMetadataBlocksAreUsedOnlyWhenNamed) {
  testing::TempDir dir;
  std::ofstream f(dir / "seed.csv");
  write_seed_header(f, "track_id,artist_name,listeners,genre,Latitude,Longitude");
  auto row = [&](const char* id, const char* listeners, const char* genre, const char* lat, const char* lon) {
    f << id << ",A," << listeners << "," << genre << "," << lat << "," << lon;
    for (int k = 0; k < 45; ++k) f << "," << k;
    f << "\n";
  };
  row("1", "999", "Reggae", "18.0", "-76.8");
  row("2", "", "Latin", "4.6", "-74.1");
  row("3", "0", "Polka", "52.2", "21.0");
  f.close();
  auto t = train::read_feature_table(dir / "seed.csv", train::TableFormat::kSeedCsv);
  ASSERT_EQ(t.tracks.size(), 3u);
  const auto& g0 = t.tracks[0].summary.at("meta_genre").mean;
  ASSERT_EQ(g0.size(), std::size(shards::kSeedGenres));
  for (size_t g = 0; g < g0.size(); ++g) EXPECT_EQ(g0[g], std::string(shards::kSeedGenres[g]) == "Reggae" ? 1.0 : 0.0) << g;
  double polka = 0;
  for (double v : t.tracks[2].summary.at("meta_genre").mean) polka += v;
  EXPECT_EQ(polka, 0.0);  // a genre outside the list is all zeros
  EXPECT_NEAR(t.tracks[0].summary.at("meta_listeners").mean[0], 3.0, 1e-12);  // log10(1 + 999)
  EXPECT_EQ(t.tracks[0].summary.at("meta_listeners").mean[1], 1.0);
  EXPECT_EQ(t.tracks[1].summary.at("meta_listeners").mean, (std::vector<double>{0.0, 0.0}));  // unknown
  EXPECT_EQ(t.tracks[2].summary.at("meta_listeners").mean, (std::vector<double>{0.0, 1.0}));  // known zero

  auto audio = train::dataset_from_table(t, {});
  EXPECT_EQ(audio.dim, 45);
  EXPECT_EQ(audio.features, (std::vector<std::string>{"chroma_stft", "mfcc", "spectral_contrast", "tonnetz"}));
  auto with_meta = train::dataset_from_table(t, {"mfcc", "meta_genre", "meta_listeners"});
  EXPECT_EQ(with_meta.dim, 20 + 11 + 2);
  EXPECT_EQ(with_meta.row(0)[20 + 6], 1.0f);  // Reggae column

  // A bad listeners count names the file, row and value.
  {
    std::ifstream in(dir / "seed.csv");
    std::string header;
    std::getline(in, header);
    std::ofstream bad(dir / "bad.csv");
    bad << header << "\n1,A,12x,Pop,1,2";
    for (int k = 0; k < 45; ++k) bad << ",0";
    bad << "\n";
  }
  try {
    train::read_feature_table(dir / "bad.csv", train::TableFormat::kSeedCsv);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.csv:2"), std::string::npos) << m;
    EXPECT_NE(m.find("12x"), std::string::npos) << m;
  }
}

// Errors name the file line where the record starts, counting blank lines and newlines inside quoted fields
// (they used to name the record's number, which differs from the line as soon as a table has a blank line).
TEST(ImportTable, ErrorsNameTheFileLineAcrossBlankLinesAndQuotedNewlines) {
  testing::TempDir dir;
  std::ifstream in(slice());
  std::string first, second;
  for (int k = 0; k < 10; ++k) std::getline(in, first);  // rows with coordinates
  std::getline(in, second);
  {
    std::ofstream gom(dir / "blank.txt");
    gom << first << "\n\n" << second << "\n\n\n";  // records 1, 2 on lines 1, 3
    // Record 3, on line 6: its latitude (the second-to-last value) is not a number.
    const auto last = first.rfind(','), before = first.rfind(',', last - 1);
    gom << first.substr(0, before + 1) << "12x" << first.substr(last) << "\n";
  }
  try {
    train::read_feature_table(dir / "blank.txt", train::TableFormat::kGom);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("blank.txt:6"), std::string::npos) << m;
    EXPECT_NE(m.find("12x"), std::string::npos) << m;
  }
  std::vector<int64_t> lines;
  {
    std::ofstream q(dir / "q.csv");
    q << "a,b\n\n\"two\nlines\",1\n3,4\n";
  }
  const auto records = read_csv_records(dir / "q.csv");  // core/csv.h, which the table import reads with
  for (const auto& r : records) lines.push_back(r.line);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(records[1].fields[0], "two\nlines");
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

TEST(PredictCli, MetadataModelTakesGenreAndListenersFromACatalog) {
  // A seed-csv table where genre decides the place; a model on the metadata blocks only.
  testing::TempDir dir;
  {
    std::ofstream f(dir / "seed.csv");
    write_seed_header(f, "track_id,listeners,genre,Latitude,Longitude");
    const char* places[][3] = {{"Reggae", "17.99", "-76.79"}, {"Latin", "4.71", "-74.07"}, {"Traditional", "14.69", "-17.44"}};
    for (int i = 0; i < 30; ++i) {
      f << i << "," << 10 * i << "," << places[i % 3][0] << "," << places[i % 3][1] << "," << places[i % 3][2];
      for (int k = 0; k < 45; ++k) f << "," << (i * 7 + k) % 11;
      f << "\n";
    }
  }
  Json cfg = Json::parse(R"({"experiment": "meta", "seed": 1, "device": "cpu",
    "data": {"table": {"format": "seed-csv", "path": "seed.csv"}, "features": ["meta_genre", "meta_listeners"]},
    "evaluation": {"folds": 2, "repeats": 1},
    "models": [{"name": "linear", "type": "mlp", "hidden_sizes": [],
                "head": {"type": "vmf_mixture", "initial_kappa": 1000, "predict": "median"},
                "train": {"epochs": 100, "learning_rate": 0.05}}]})");
  std::ofstream(dir / "meta.json") << cfg.dump();
  auto run_dir = dir / "run";
  auto r = testing::run_songlines("run " + (dir / "meta.json").string() + " --run-dir " + run_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json metrics = load_json_file((run_dir / "metrics.json").string());
  EXPECT_GT(metrics["models"]["linear"]["country_accuracy"]["mean"].get<double>(), 0.9) << metrics.dump();

  std::vector<float> tone(22050 * 2);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 22050.0);
  audio::write_audio((dir / "tone.wav").string(), tone.data(), static_cast<int64_t>(tone.size()), 22050);
  auto predict = [&](const std::string& genre) {
    std::ofstream(dir / "catalog.csv") << "track_id,genre,listeners\ntone," << genre << ",100\n";
    auto p = testing::run_songlines("predict --model " + run_dir.string() + " --input " + (dir / "tone.wav").string() +
                                    " --catalog " + (dir / "catalog.csv").string());
    EXPECT_EQ(p.exit_code, 0) << p.output;
    return p.output;
  };
  EXPECT_NE(predict("Latin").find(",CO,"), std::string::npos);
  EXPECT_NE(predict("Reggae").find(",JM,"), std::string::npos);
  auto none = testing::run_songlines("predict --model " + run_dir.string() + " --input " + (dir / "tone.wav").string());
  EXPECT_NE(none.exit_code, 0) << none.output;
  EXPECT_NE(none.output.find("metadata block meta_genre"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("--catalog"), std::string::npos) << none.output;
}

}  // namespace
}  // namespace songlines::runs
