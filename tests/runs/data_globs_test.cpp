// data.shards over several folders and glob patterns: the folders of `extract --part K/N` read together equal a
// one-machine extract (same tracks in the same order, same metrics, same predictions); a pattern follows the config
// file like any data path; a pattern that matches nothing, or a missing path, is a ConfigError naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "audio/audio_file.h"
#include "core/error.h"
#include "core/path_rule.h"
#include "extract/extract.h"
#include "extract/synthetic_music.h"
#include "runs/location_run.h"
#include "runs/run_config.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

Json config_with_shards(const std::vector<std::string>& shards) {
  Json j = Json::parse(R"({
    "experiment": "parts", "seed": 5, "device": "cpu",
    "evaluation": {"folds": 3, "repeats": 2},
    "models": [{"type": "centroid"}, {"type": "knn", "k": 2}], "final_model": "knn"
  })");
  j["data"] = {{"shards", shards}};
  return j;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// What load_run_data throws for config j (from_json against base): "ConfigError: ..." or "other: ...", or ""
/// when it loads.
std::string load_error(const Json& j, const fs::path& base) {
  try {
    load_run_data(RunConfig::from_json(j, base));
    return "";
  } catch (const ConfigError& e) {
    return std::string("ConfigError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
}

TEST(DataShards, RelativePatternsFollowTheConfigFileWithItsFolderEscaped) {
  EXPECT_TRUE(is_glob_pattern("parts/part-*"));
  EXPECT_TRUE(is_glob_pattern("p?rt"));
  EXPECT_TRUE(is_glob_pattern("[ab]"));
  EXPECT_FALSE(is_glob_pattern("parts/part-1-of-2"));
  const RunConfig c = RunConfig::from_json(config_with_shards({"parts/part-*", "plain", "/abs/x-*", "../up/*.h5"}),
                                           "/data/[2024] set?/cfg");
  EXPECT_EQ(c.data.shards, (std::vector<std::string>{"/data/\\[2024] set\\?/cfg/parts/part-*",
                                                      "/data/[2024] set?/cfg/plain", "/abs/x-*",
                                                      "/data/\\[2024] set\\?/up/*.h5"}));
  // --set on the command line: the same, against the working directory; a table path is never a pattern.
  EXPECT_EQ(override_with_absolute_paths("data.shards=[\"p/*\",\"q\"]", "/w[1]"), "data.shards=[\"/w\\\\[1]/p/*\",\"/w[1]/q\"]");
  EXPECT_EQ(override_with_absolute_paths("data.table.path=t[1].csv", "/w[1]"), "data.table.path=\"/w[1]/t[1].csv\"");
}

TEST(DataShards, PatternsMatchingNothingAndMissingPathsAreConfigErrorsNamingTheKey) {
  testing::TempDir dir;
  fs::create_directories(dir / "parts" / "part-1-of-2");
  std::ofstream(dir / "parts" / "extract.slurm") << "#!/bin/bash\n";
  std::ofstream(dir / "parts" / "notes.txt") << "not a shard\n";
  // The existing folder is fine; each bad entry is named by its index and value.
  std::string m = load_error(config_with_shards({"parts/part-1-of-2", "parts/part-*-of-3"}), dir.path());
  EXPECT_EQ(m.rfind("ConfigError: data.shards[1]", 0), 0u) << m;
  EXPECT_NE(m.find("part-*-of-3"), std::string::npos) << m;
  EXPECT_NE(m.find("matches no shard folder or .h5 file"), std::string::npos) << m;
  m = load_error(config_with_shards({"parts/*.txt"}), dir.path());  // matches a file that is no shard
  EXPECT_EQ(m.rfind("ConfigError: data.shards[0]", 0), 0u) << m;
  EXPECT_NE(m.find("matches no shard folder or .h5 file"), std::string::npos) << m;
  m = load_error(config_with_shards({"parts/part-1-of-2", "missing-folder"}), dir.path());
  EXPECT_EQ(m, "ConfigError: data.shards[1]: " + (dir / "missing-folder").string() + ": no such file or directory");
  // Through the binary: exit 2 naming the key, and no run directory recorded.
  std::ofstream(dir / "exp.json") << config_with_shards({"parts/part-*-of-9"}).dump();
  auto r = testing::run_songlines("run " + (dir / "exp.json").string() + " --run-dir " + (dir / "run").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data.shards[0]"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "config.json"));
  // A pattern matching only the part folder loads past the existence check (to the empty-data error).
  m = load_error(config_with_shards({"parts/part-?-of-2"}), dir.path());
  EXPECT_EQ(m, "other: data.shards: no shard files");
}

// 12 tracks with coordinates; a one-machine extract and a 3-part extract in a folder whose name holds glob
// characters; `songlines run` over ["parts/part-*-of-3"] and over ["whole"] agree exactly.
TEST(DataShards, RunOverPartFoldersEqualsRunOverOneMachineExtract) {
  testing::TempDir tmp;
  const fs::path root = tmp / "exp [1]";
  fs::create_directories(root / "audio");
  std::ofstream catalog(root / "catalog.csv");
  catalog << "path,country,latitude,longitude\n";
  const struct {
    const char* country;
    double lat, lon;
  } places[] = {{"FR", 48.85, 2.35}, {"JP", 35.68, 139.69}, {"BR", -15.79, -47.88}};
  for (int i = 0; i < 12; ++i) {
    extract::SyntheticMusicOptions o;
    o.seconds = 1.0;
    o.tempo_bpm = 80 + 9 * i;
    o.tonic_hz = 160 + 40 * (i % 3) + 3 * i;  // the place shows in the pitch
    o.seed = 700 + static_cast<uint64_t>(i);
    auto y = extract::synthesize_music(o);
    const std::string name = "t" + std::to_string(10 + i) + ".wav";
    audio::write_audio((root / "audio" / name).string(), y.data(), static_cast<int64_t>(y.size()), o.sample_rate);
    const auto& p = places[i % 3];
    catalog << "audio/" << name << "," << p.country << "," << p.lat << "," << p.lon << "\n";
  }
  catalog.close();

  extract::ExtractOptions e;
  e.inputs = {root / "audio"};
  e.catalog = root / "catalog.csv";
  e.feature_options.features = {"mfcc", "chroma_stft"};
  e.shard_size = 2;
  e.jobs = 2;
  e.device = features::Device::kCpu;
  e.progress = ProgressMode::kQuiet;
  e.output_dir = root / "whole";
  ASSERT_EQ(extract::run_extract(e).tracks_written, 12);
  e.output_dir = root / "parts";
  for (int k = 1; k <= 3; ++k) {
    e.part = extract::ExtractPart{k, 3};
    ASSERT_EQ(extract::run_extract(e).tracks_written, 4) << "part " << k;
  }

  std::ofstream(root / "whole.json") << config_with_shards({"whole"}).dump();
  std::ofstream(root / "parts.json") << config_with_shards({"parts/part-*-of-3"}).dump();

  // The data first: same rows in the same order.
  const auto a = load_run_data(load_run_config(root / "whole.json", {}));
  const auto b = load_run_data(load_run_config(root / "parts.json", {}));
  ASSERT_EQ(a.size(), 12);
  EXPECT_EQ(b.ids, a.ids);
  EXPECT_EQ(b.x, a.x);
  EXPECT_EQ(b.countries, a.countries);

  for (const char* which : {"whole", "parts"}) {
    auto r = testing::run_songlines("run '" + (root / (std::string(which) + ".json")).string() + "' --run-dir '" +
                                    (tmp / (std::string("run-") + which)).string() + "'");
    ASSERT_EQ(r.exit_code, 0) << which << "\n" << r.output;
  }
  const Json ma = load_json_file((tmp / "run-whole" / "metrics.json").string());
  const Json mb = load_json_file((tmp / "run-parts" / "metrics.json").string());
  EXPECT_EQ(mb["tracks"], 12);
  EXPECT_EQ(mb["models"], ma["models"]) << mb["models"].dump(1) << "\nvs\n" << ma["models"].dump(1);
  EXPECT_GT(ma["models"]["knn"]["mean_km"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(read_text(tmp / "run-parts" / "predictions.csv"), read_text(tmp / "run-whole" / "predictions.csv"));
  // The run records the pattern it was given, made absolute with the folder's "[" escaped.
  const Json used = load_json_file((tmp / "run-parts" / "config.json").string());
  EXPECT_EQ(used["data"]["shards"][0].get<std::string>(),
            absolute_path_or_pattern(fs::absolute(root), "parts/part-*-of-3"));
}

}  // namespace
}  // namespace songlines::runs
