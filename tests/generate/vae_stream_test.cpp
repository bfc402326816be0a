// The VAE's crops streamed from shards (ShardMelSource, docs/scaling.md "Data larger than memory"): the same
// crops as the tracks in memory, and a short training run on them gives the same weights and normalisation bit
// for bit, with a page cache many times smaller than the frames.
#include <gtest/gtest.h>

#include <random>

#include "generate/mel_crop_source.h"
#include "generate/vae_training.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::generate {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMels = 16;

/// 14 tracks of mel_db [40..139 frames, 16] (seeded), at two places; two are shorter than a 32-frame segment.
fs::path write_mel_shard(const fs::path& file) {
  shards::ShardWriter w(file, shards::ShardAttributes{});
  std::mt19937_64 rng(21);
  std::normal_distribution<float> db(-40.0f, 12.0f);
  std::uniform_int_distribution<int64_t> length(40, 139);
  for (int i = 0; i < 14; ++i) {
    shards::TrackRecord t;
    t.id = "mel" + std::to_string(i);
    t.path = t.id + ".wav";
    t.latitude = i % 2 ? 48.85f : -33.87f;
    t.longitude = i % 2 ? 2.35f : 151.21f;
    features::FeatureMatrix m(i < 2 ? 20 : length(rng), kMels);
    for (auto& v : m.data) v = db(rng) + static_cast<float>(i % 2) * 6.0f;
    t.frames.emplace("mel_db", std::move(m));
    w.add(t);
  }
  w.close();
  return file;
}

std::vector<MelTrack> tracks_in_memory(const fs::path& shard) {
  shards::ShardReader r(shard);
  std::vector<MelTrack> out;
  for (int64_t t = 0; t < r.size(); ++t) {
    auto m = r.read_frames("mel_db", t);
    out.push_back({r.ids()[t], {r.latitudes()[t], r.longitudes()[t]},
                   torch::from_blob(m.data.data(), {m.frames, m.dim}, torch::kFloat32).clone()});
  }
  return out;
}

TEST(VaeStreaming, CropsAndTrainedModelEqualTheInMemoryPath) {
  testing::TempDir dir;
  const auto shard = write_mel_shard(dir / "mel.h5");
  const auto memory = tracks_in_memory(shard);
  models::VaeOptions model;
  model.n_mels = kMels;
  model.segment_frames = 32;
  model.channels = {4, 8};
  model.latent_channels = 2;
  model.n_fourier = 2;
  model.cond_dim = 8;
  model.conditional_prior = false;
  MelAnalysisOptions audio;
  audio.sample_rate = 8000;
  audio.n_fft = 256;
  audio.hop_length = 64;
  audio.n_mels = kMels;
  VaeTrainOptions o;
  o.steps = 12;
  o.batch_size = 4;
  o.log_every = 4;
  o.seed = 7;
  o.device = "cpu";

  train::FrameStoreOptions store;
  store.page_frames = 16;            // 1 KiB pages
  store.budget_bytes = 4 << 10;      // 4 KiB: four pages
  const ShardMelSource stream({shard}, "mel_db", model.segment_frames, store);
  ASSERT_EQ(stream.size(), 12) << "the two short tracks are left out";
  ASSERT_GE(stream.store().total_bytes(), 15 * store.budget_bytes);
  // The same crops: every window of the kept tracks against the tensor in memory.
  std::mt19937_64 rng(3);
  for (int k = 0; k < 200; ++k) {
    const int64_t t = std::uniform_int_distribution<int64_t>(0, stream.size() - 1)(rng);
    const MelTrack& m = memory[static_cast<size_t>(t + 2)];
    ASSERT_EQ(stream.id(t), m.id);
    const int64_t start = std::uniform_int_distribution<int64_t>(0, stream.frames(t) - 32)(rng);
    ASSERT_TRUE(torch::equal(stream.crop(t, start, 32), m.mel_db.narrow(0, start, 32))) << m.id << " at " << start;
  }

  std::vector<Json> log_memory, log_stream;
  VaeBundle a = train_vae(memory, {}, model, audio, o, [&](const Json& r) { log_memory.push_back(r); });
  VaeBundle b = train_vae(stream, {}, model, audio, o, [&](const Json& r) { log_stream.push_back(r); });
  EXPECT_TRUE(torch::equal(a.band_mean, b.band_mean));
  EXPECT_TRUE(torch::equal(a.band_std, b.band_std));
  ASSERT_EQ(log_memory.size(), log_stream.size());
  for (size_t i = 0; i < log_memory.size(); ++i)
    EXPECT_EQ(log_stream[i]["loss"].get<double>(), log_memory[i]["loss"].get<double>()) << "record " << i;
  const auto pa = a.net->parameters(), pb = b.net->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
  EXPECT_LE(stream.store().stats().peak_cached_bytes, store.budget_bytes);
}

}  // namespace
}  // namespace songlines::generate
