// The temporal location model through `songlines run` on shards with frames (crops, attention pooling), and
// `songlines predict` on shards and on audio files (with a bad file among them).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "audio/audio_file.h"
#include "core/config.h"
#include "runs/location_run.h"
#include "shards/shard.h"
#include "support/test_support.h"
#include "train/dataset.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

/// 48 tracks at two places 8000+ km apart; the place is visible only in the frames' time structure: place A's
/// mfcc[1] alternates sign every frame, place B's does not, and both have the same per-track mean and spread,
/// so a summary (time mean) cannot tell them apart but a convolution over frames can.
fs::path write_place_shard(const fs::path& dir) {
  shards::ShardAttributes attrs;
  shards::ShardWriter w(dir / "places.h5", attrs);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  const std::pair<float, float> places[2] = {{48.85f, 2.35f}, {-33.87f, 151.21f}};
  const std::map<std::string, int64_t> dims = {{"mfcc", 20}, {"chroma_stft", 12}, {"spectral_contrast", 7}, {"tonnetz", 6}};
  for (int i = 0; i < 48; ++i) {
    shards::TrackRecord t;
    const int place = i % 2;
    t.id = "track" + std::to_string(i);
    t.path = t.id + ".wav";
    t.country = place == 0 ? "FR" : "AU";
    t.latitude = places[place].first;
    t.longitude = places[place].second;
    const int64_t frames = 150 + 10 * (i % 5);
    for (const auto& [name, d] : dims) {
      features::FeatureMatrix m(frames, d);
      for (int64_t f = 0; f < frames; ++f)
        for (int64_t k = 0; k < d; ++k) m.at(f, k) = noise(rng);
      if (name == "mfcc")
        for (int64_t f = 0; f < frames; ++f)
          m.at(f, 1) += place == 0 ? ((f % 2) ? 1.5f : -1.5f) : (((f / 16) % 2) ? 1.5f : -1.5f);
      t.frames.emplace(name, std::move(m));
    }
    w.add(t);
  }
  w.close();
  return dir / "places.h5";
}

Json temporal_config(const fs::path& shard) {
  return Json::parse(R"({
    "experiment": "temporal", "seed": 3, "device": "cpu",
    "data": {"shards": [")" + shard.string() + R"("]},
    "evaluation": {"folds": 3, "repeats": 1},
    "models": [{"type": "centroid"},
               {"name": "conv", "type": "temporal", "conv_channels": 16, "conv_layers": 2, "kernel_size": 3,
                "dropout": 0.0, "head": {"type": "sphere"},
                "train": {"epochs": 25, "batch_size": 8, "learning_rate": 0.01, "crop_frames": 48,
                          "eval_crops": 3, "checkpoint_every": 10}}]
  })");
}

TEST(TemporalModel, FramesLoadInTrackOrderWithBlocksSideBySide) {
  testing::TempDir dir;
  auto shard = write_place_shard(dir.path());
  auto d = train::load_summary_dataset({shard}, {}, train::default_frame_blocks());
  ASSERT_TRUE(d.sequences);
  EXPECT_EQ(d.sequences->dim, 45);
  EXPECT_EQ(d.sequences->size(), 48);
  EXPECT_EQ(d.sequences->length(3), 180);
  shards::ShardReader reader(shard);
  auto chroma = reader.read_frames("chroma_stft", 3);
  // Track 3, frame 7: chroma_stft bin 5 sits after mfcc's 20 columns.
  EXPECT_FLOAT_EQ(d.sequences->track(3)[7 * 45 + 20 + 5], chroma.at(7, 5));
}

// One run with a summary model and a temporal one: each model gets its own input width (summary columns vs
// frame columns); a run mixing them once built the temporal model on the summary width and failed.
TEST(TemporalModel, RunsBesideASummaryModelOfAnotherWidth) {
  testing::TempDir dir;
  auto shard = write_place_shard(dir.path());
  Json c = temporal_config(shard);
  c["models"].push_back(Json::parse(R"({"name": "mlp", "type": "mlp", "hidden_sizes": [8], "train": {"epochs": 5}})"));
  c["models"][1]["train"]["epochs"] = 2;
  c["data"]["features"] = {"mfcc"};  // summary rows: mfcc only; the temporal model still reads all four blocks
  std::ofstream(dir / "t.json") << c.dump();
  auto r = testing::run_songlines("run " + (dir / "t.json").string() + " --run-dir " + (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json m = load_json_file((dir / "run" / "metrics.json").string());
  Json env = load_json_file((dir / "run" / "env.json").string());
  EXPECT_NE(env["feature_dim"].get<int64_t>(), 45) << "the summary width must differ from the frames' 45";
  for (const char* model : {"conv", "mlp"})
    EXPECT_TRUE(std::isfinite(m["models"][model]["mean_km"]["mean"].get<double>())) << model;
}

TEST(TemporalModel, LearnsPlaceFromFrameStructureThatSummariesHide) {
  testing::TempDir dir;
  auto shard = write_place_shard(dir.path());
  std::ofstream(dir / "t.json") << temporal_config(shard).dump();
  auto run_dir = dir / "run";
  auto r = testing::run_songlines("run " + (dir / "t.json").string() + " --run-dir " + run_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json m = load_json_file((run_dir / "metrics.json").string());
  const double conv = m["models"]["conv"]["mean_km"]["mean"].get<double>();
  const double centroid = m["models"]["centroid"]["mean_km"]["mean"].get<double>();
  // Chance (centroid) is ~half the Paris-Sydney distance (~8500 km); the conv model must find the places.
  EXPECT_LT(conv, 0.25 * centroid) << "conv " << conv << " km vs centroid " << centroid << " km";
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints/r0-f0/conv/member-0.json"));
  Json inputs = load_json_file((run_dir / "checkpoints/final/inputs.json").string());
  EXPECT_EQ(inputs["frame_features"].size(), 4u);

  // predict on the shard: every track, on the right continent.
  auto pred = testing::run_songlines("predict --model " + run_dir.string() + " --input " + shard.string() +
                                     " --output " + (dir / "p.csv").string());
  ASSERT_EQ(pred.exit_code, 0) << pred.output;
  std::ifstream in(dir / "p.csv");
  std::string line;
  std::getline(in, line);
  int rows = 0, right = 0;
  while (std::getline(in, line)) {
    ++rows;
    const bool au = line.find(",AU,") != std::string::npos;
    const int idx = std::stoi(line.substr(5, line.find(',') - 5));
    right += (idx % 2 == 1) == au;
  }
  EXPECT_EQ(rows, 48);
  EXPECT_GE(right, 44) << "tracks predicted in their own country";
}

// data.memory_budget_mb below the frames' size (about 1.4 MiB here) streams them from the shard
// (docs/scaling.md "Data larger than memory"): the run's predictions and metrics equal the in-memory run's.
TEST(TemporalModel, AMemoryBudgetBelowTheFramesStreamsThemWithTheSameResults) {
  testing::TempDir dir;
  auto shard = write_place_shard(dir.path());
  Json c = temporal_config(shard);
  c["models"][1]["train"]["epochs"] = 4;
  c["refit_final"] = false;
  std::ofstream(dir / "memory.json") << c.dump();
  c["data"]["memory_budget_mb"] = 1;
  std::ofstream(dir / "stream.json") << c.dump();
  EXPECT_TRUE(load_run_data(RunConfig::from_json(c, dir.path())).sequences->streamed());
  c["data"]["memory_budget_mb"] = 2;
  EXPECT_FALSE(load_run_data(RunConfig::from_json(c, dir.path())).sequences->streamed()) << "1.4 MiB fit in 2";
  for (const char* name : {"memory", "stream"}) {
    auto r = testing::run_songlines("run " + (dir / (std::string(name) + ".json")).string() + " --run-dir " +
                                    (dir / name).string());
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
  }
  EXPECT_EQ(load_json_file((dir / "stream" / "config.json").string())["data"]["memory_budget_mb"], 1);
  auto text = [&](const char* run, const char* file) {
    std::ifstream in(dir / run / file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_FALSE(text("memory", "predictions.csv").empty());
  EXPECT_EQ(text("stream", "predictions.csv"), text("memory", "predictions.csv"));
  EXPECT_EQ(load_json_file((dir / "stream" / "metrics.json").string())["models"]["conv"]["mean_km"],
            load_json_file((dir / "memory" / "metrics.json").string())["models"]["conv"]["mean_km"]);

  c["data"]["memory_budget_mb"] = -1;
  std::ofstream(dir / "bad.json") << c.dump();
  auto bad = testing::run_songlines("run " + (dir / "bad.json").string() + " --run-dir " + (dir / "bad").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("data.memory_budget_mb"), std::string::npos) << bad.output;
}

TEST(TemporalModel, TableDataWithATemporalModelIsAConfigError) {
  Json j = Json::parse(R"({"data": {"table": {"format": "gom", "path": "x.txt"}},
                           "models": [{"type": "temporal", "head": {"type": "sphere"}}]})");
  testing::TempDir dir;
  std::ofstream(dir / "bad.json") << j.dump();
  auto r = testing::run_songlines("run " + (dir / "bad.json").string() + " --output-root " + dir.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data.table"), std::string::npos) << r.output;
}

TEST(PredictCli, AudioFilesAreExtractedAndABadFileIsReportedWithExit3) {
  testing::TempDir dir;
  auto shard = write_place_shard(dir.path());
  auto cfg = temporal_config(shard);
  cfg["models"] = Json::array({cfg["models"][1]});
  cfg["models"][0]["train"]["epochs"] = 2;
  cfg["evaluation"]["folds"] = 2;
  std::ofstream(dir / "t.json") << cfg.dump();
  auto run_dir = dir / "run";
  ASSERT_EQ(testing::run_songlines("run " + (dir / "t.json").string() + " --run-dir " + run_dir.string()).exit_code, 0);

  std::vector<float> tone(22050 * 3);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 22050.0);
  audio::write_audio((dir / "tone.wav").string(), tone.data(), static_cast<int64_t>(tone.size()), 22050);
  std::ofstream(dir / "broken.wav") << "RIFF not really a wave file";
  auto pred = testing::run_songlines("predict --model " + run_dir.string() + " --input " + (dir / "tone.wav").string() +
                                     " " + (dir / "broken.wav").string() + " --output " + (dir / "p.csv").string());
  EXPECT_EQ(pred.exit_code, 3) << pred.output;
  EXPECT_NE(pred.output.find("broken.wav"), std::string::npos) << pred.output;
  std::ifstream in(dir / "p.csv");
  std::string header, row, extra;
  std::getline(in, header);
  ASSERT_TRUE(std::getline(in, row)) << "no prediction for tone.wav";
  EXPECT_NE(row.find("tone.wav"), std::string::npos) << row;
  EXPECT_FALSE(std::getline(in, extra)) << "unexpected row: " << extra;

  // Only bad audio: nothing predicted is a failed job (exit 1, not the partial 3) and no empty CSV is written.
  auto none = testing::run_songlines("predict --model " + run_dir.string() + " --input " + (dir / "broken.wav").string() +
                                     " --output " + (dir / "none.csv").string());
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_NE(none.output.find("broken.wav"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("none of the 1 inputs could be read"), std::string::npos) << none.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "none.csv"));
}

}  // namespace
}  // namespace songlines::runs
