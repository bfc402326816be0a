// `songlines run` of a VAE config on frames larger than data.memory_budget_mb (docs/scaling.md "Data larger
// than memory"): with a 1 MiB budget over 2+ MiB of mel_db in two shards the run streams its crops through the
// frame cache and gives the run that loads them into memory (the default budget): the same metrics records,
// metrics.json (but for its timings; geo-consistency and its transfer included), weights and band statistics,
// and samples. The budget is not part of the
// run's identity; its cache never held more than the budget.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>

#include "core/config.h"
#include "features/feature_options.h"
#include "generate/vae_bundle.h"
#include "runs/vae_run.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

constexpr int kMels = 32;

/// The analysis of the shards below (8 kHz, 32 mel bands, 5 spectral contrast bands, 216 CQT bins).
features::FeatureOptions tiny_features() {
  features::FeatureOptions f;
  f.sample_rate = 8000;
  f.stft.n_fft = 256;
  f.stft.hop_length = 64;
  f.mel.n_mels = kMels;
  f.spectral_contrast.n_bands = 4;
  f.cqt.n_bins = 216;  // below Nyquist at 8 kHz (tonnetz)
  return f;
}

/// 10 tracks of mel_db [800..1599 frames, 32] (seeded) at three places, with seeded summary means of the seed's
/// four features (what geo-consistency's locator needs); one has no coordinates and one is shorter than a
/// segment (both left out).
void write_mel_shard(const fs::path& file, uint64_t seed) {
  shards::ShardAttributes at;
  at.sample_rate = 8000;
  at.n_fft = 256;
  at.hop_length = 64;
  at.feature_options = tiny_features().to_json();
  shards::ShardWriter w(file, at);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 6.0f);
  const std::map<std::string, int> summary_dims = {{"mfcc", 20}, {"chroma_stft", 12}, {"spectral_contrast", 5}, {"tonnetz", 6}};
  std::uniform_int_distribution<int64_t> length(800, 1599);
  const geo::LatLon places[3] = {{48.85, 2.35}, {35.68, 139.69}, {-12.05, -77.04}};
  for (int i = 0; i < 10; ++i) {
    shards::TrackRecord t;
    t.id = file.stem().string() + "-" + std::to_string(i);
    t.country = i % 3 == 0 ? "FR" : i % 3 == 1 ? "JP" : "PE";
    t.latitude = i == 9 ? std::nanf("") : static_cast<float>(places[i % 3].lat);
    t.longitude = static_cast<float>(places[i % 3].lon);
    features::FeatureMatrix m(i == 8 ? 20 : length(rng), kMels);
    for (auto& v : m.data) v = -40.0f + 10.0f * static_cast<float>(i % 3) + noise(rng);
    t.frames["mel_db"] = std::move(m);
    for (const auto& [name, dim] : summary_dims) {
      shards::SummaryStats st;
      for (int k = 0; k < dim; ++k) st.mean.push_back(noise(rng));
      t.summary[name] = st;
    }
    w.add(t);
  }
  w.close();
}

Json config_json(int64_t memory_budget_mb) {
  Json data = {{"shards", {"shards"}}, {"val_fraction", 0.25}};
  if (memory_budget_mb != 0) data["memory_budget_mb"] = memory_budget_mb;
  return {{"task", "vae"},
          {"experiment", "vae-stream"},
          {"seed", 4},
          {"device", "cpu"},
          {"data", data},
          {"model",
           {{"n_mels", kMels}, {"segment_frames", 32}, {"channels", {4, 8}}, {"latent_channels", 2},
            {"n_fourier", 2}, {"cond_dim", 8}}},
          {"train", {{"steps", 6}, {"batch_size", 4}, {"log_every", 2}}},
          {"samples",
           {{"seconds", 0.25},
            {"griffin_lim_iterations", 2},
            {"training_capitals", true},
            {"places", {{{"name", "lima"}, {"latitude", -12.05}, {"longitude", -77.04}}}}}},
          {"evaluation",
           {{"audio_tracks", 0},
            {"geo_consistency",
             {{"seeds", 1}, {"seconds", 0.5}, {"max_places", 3}, {"knn_k", 1}, {"transfer_tracks", 2}}}}}};
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Json> read_jsonl(const fs::path& p) {
  std::vector<Json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

/// metrics.json or a metrics record without its wall-clock figures.
Json without_timings(Json j) {
  for (const char* k : {"train_seconds", "train_crops_per_s", "generation_audio_seconds_per_second", "crops_per_s"})
    j.erase(k);
  if (j.contains("final_train")) j["final_train"].erase("crops_per_s");
  return j;
}

TEST(VaeRunStreaming, AMemoryBudgetSmallerThanTheFramesStreamsAndGivesTheInMemoryRun) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "shards");
  write_mel_shard(tmp / "shards" / "a.h5", 1);
  write_mel_shard(tmp / "shards" / "b.h5", 2);

  std::ostringstream log_memory, log_stream;
  const fs::path dir_memory = tmp / "memory", dir_stream = tmp / "stream";
  const VaeRunConfig memory = VaeRunConfig::from_json(config_json(0), tmp.path());
  const VaeRunConfig stream = VaeRunConfig::from_json(config_json(1), tmp.path());
  ASSERT_EQ(stream.memory_budget_mb, 1);
  const Json m_memory = run_vae_experiment(memory, dir_memory, log_memory);
  const Json m_stream = run_vae_experiment(stream, dir_stream, log_stream);
  ASSERT_NE(log_memory.str().find("vae: frames in memory"), std::string::npos) << log_memory.str();
  ASSERT_NE(log_stream.str().find("vae: frames streamed from the shards"), std::string::npos) << log_stream.str();

  // The store's own accounting: frames of more than twice the budget, a cache never above it.
  std::smatch m;
  const std::string s = log_stream.str();
  ASSERT_TRUE(std::regex_search(s, m, std::regex(R"(frame cache peak (\d+) of (\d+) bytes, (\d+) pages read \((\d+) bytes\))")))
      << s;
  const int64_t peak = std::stoll(m[1]), budget = std::stoll(m[2]), bytes_read = std::stoll(m[4]);
  EXPECT_EQ(budget, int64_t{1} << 20);
  EXPECT_GT(peak, 0);
  EXPECT_LE(peak, budget);
  EXPECT_GT(bytes_read, 2 * budget);
  int64_t frame_bytes = 0;
  for (const char* shard : {"a.h5", "b.h5"}) {
    shards::ShardReader r(tmp / "shards" / shard);
    frame_bytes += r.offsets().back() * kMels * static_cast<int64_t>(sizeof(float));
  }
  ASSERT_GT(frame_bytes, 2 * budget) << "the data must not fit the budget";

  // The same run: metrics, records, weights, samples.
  EXPECT_EQ(m_memory["train_tracks"], 12);
  EXPECT_EQ(m_memory["val_tracks"], 4);
  ASSERT_TRUE(m_memory.contains("geo_consistency") && !m_memory["geo_consistency"].contains("skipped"))
      << m_memory.dump(2);
  EXPECT_EQ(m_memory["geo_consistency"]["transfer"]["tracks"], 2);
  EXPECT_EQ(without_timings(m_stream), without_timings(m_memory)) << m_stream.dump(2) << "\nvs\n" << m_memory.dump(2);
  const auto rec_memory = read_jsonl(dir_memory / "metrics.jsonl"), rec_stream = read_jsonl(dir_stream / "metrics.jsonl");
  ASSERT_EQ(rec_memory.size(), 3u);
  ASSERT_EQ(rec_stream.size(), rec_memory.size());
  for (size_t i = 0; i < rec_memory.size(); ++i) {
    EXPECT_TRUE(rec_memory[i].contains("val_reconstruction"));
    EXPECT_EQ(without_timings(rec_stream[i]), without_timings(rec_memory[i])) << "record " << i;
  }
  const auto a = generate::load_vae_bundle(dir_memory, torch::kCPU), b = generate::load_vae_bundle(dir_stream, torch::kCPU);
  EXPECT_TRUE(torch::equal(a.band_mean, b.band_mean));
  EXPECT_TRUE(torch::equal(a.band_std, b.band_std));
  const auto pa = a.net->parameters(), pb = b.net->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
  for (const char* f : {"samples/lima.wav", "samples/places.csv"})
    EXPECT_EQ(read_file(dir_stream / f), read_file(dir_memory / f)) << f;

  // config.json records the budget; the budget is not part of the identity: the in-memory run's directory is
  // complete for the streamed config.
  EXPECT_EQ(load_json_file((dir_stream / "config.json").string())["data"]["memory_budget_mb"], 1);
  std::ostringstream log_again;
  run_vae_experiment(stream, dir_memory, log_again);
  EXPECT_NE(log_again.str().find("is complete"), std::string::npos) << log_again.str();
}

TEST(VaeRunStreaming, ANegativeMemoryBudgetIsAConfigError) {
  try {
    VaeRunConfig::from_json(config_json(-1), "/tmp");
    FAIL() << "accepted data.memory_budget_mb = -1";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.memory_budget_mb"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace songlines::runs
