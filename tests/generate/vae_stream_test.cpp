// The VAE's crops streamed from shards (ShardMelSource, docs/scaling.md "Data larger than memory"): the same
// crops as the tracks in memory, and a short training run on them gives the same weights and normalisation bit
// for bit, with a page cache many times smaller than the frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "generate/mel_crop_source.h"
#include "generate/vae_training.h"
#include "shards/shard.h"
#include "support/test_support.h"
#include "support/tiny_mel.h"

namespace songlines::generate {
namespace {

using songlines::testing::tiny_mel_analysis;

namespace fs = std::filesystem;

constexpr int64_t kMels = 16;

/// 14 tracks of mel_db [40..139 frames, 16] (seeded), at two places; two are shorter than a 32-frame segment.
fs::path write_mel_shard(const fs::path& file, uint64_t seed = 21) {
  shards::ShardWriter w(file, shards::ShardAttributes{});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> db(-40.0f, 12.0f);
  std::uniform_int_distribution<int64_t> length(40, 139);
  for (int i = 0; i < 14; ++i) {
    shards::TrackRecord t;
    t.id = file.stem().string() + "-" + std::to_string(i);
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

models::VaeOptions tiny_stream_model() {
  models::VaeOptions model;
  model.n_mels = kMels;
  model.segment_frames = 32;
  model.channels = {4, 8};
  model.latent_channels = 2;
  model.n_fourier = 2;
  model.cond_dim = 8;
  model.conditional_prior = false;
  return model;
}

VaeTrainOptions short_training() {
  VaeTrainOptions o;
  o.steps = 12;
  o.batch_size = 4;
  o.log_every = 4;
  o.seed = 7;
  o.device = "cpu";
  return o;
}

/// The two bundles' band statistics and weights are equal bit for bit.
void expect_same_model(const VaeBundle& a, const VaeBundle& b) {
  EXPECT_TRUE(torch::equal(a.band_mean, b.band_mean));
  EXPECT_TRUE(torch::equal(a.band_std, b.band_std));
  const auto pa = a.net->parameters(), pb = b.net->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

TEST(VaeStreaming, CropsAndTrainedModelEqualTheInMemoryPath) {
  testing::TempDir dir;
  const auto shard = write_mel_shard(dir / "mel.h5");
  const auto memory = tracks_in_memory(shard);
  const models::VaeOptions model = tiny_stream_model();
  const MelAnalysisOptions audio = tiny_mel_analysis(kMels);
  const VaeTrainOptions o = short_training();

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
    const MelTrack& m = memory[static_cast<size_t>(t + 2)];  // the first two are too short
    ASSERT_EQ(stream.id(t), m.id);
    const int64_t start = std::uniform_int_distribution<int64_t>(0, stream.frames(t) - 32)(rng);
    ASSERT_TRUE(torch::equal(stream.crop(t, start, 32), m.mel_db.narrow(0, start, 32))) << m.id << " at " << start;
  }

  std::vector<Json> log_memory, log_stream;
  VaeBundle a = train_vae(memory, {}, model, audio, o, [&](const Json& r) { log_memory.push_back(r); });
  VaeBundle b = train_vae(stream, InMemoryMelSource({}), model, audio, o, [&](const Json& r) { log_stream.push_back(r); });
  expect_same_model(a, b);
  ASSERT_EQ(log_memory.size(), log_stream.size());
  for (size_t i = 0; i < log_memory.size(); ++i)
    EXPECT_EQ(log_stream[i]["loss"].get<double>(), log_memory[i]["loss"].get<double>()) << "record " << i;
  EXPECT_LE(stream.store().stats().peak_cached_bytes, store.budget_bytes);
}

// What `songlines run` does with data larger than data.memory_budget_mb (runs/vae_run.cpp): training and
// held-out tracks are seeded picks from two shards, in a shuffled order, that share one streamed source. With a
// cache of 1 KiB over 100 times as many bytes of frames, the crops, the held-out reconstruction during and
// after training, and the trained weights equal those of the same tracks in memory; the cache's own accounting
// never exceeds its budget, checked at every metrics record (while the prefetch thread reads) and at the end.
TEST(VaeStreaming, ShuffledTrainingAndHeldOutSelectionsOfTwoShardsEqualTheInMemoryPath) {
  testing::TempDir dir;
  const fs::path a = write_mel_shard(dir / "a.h5", 21), b = write_mel_shard(dir / "b.h5", 22);
  std::vector<MelTrack> memory = tracks_in_memory(a);
  for (auto& t : tracks_in_memory(b)) memory.push_back(std::move(t));
  const models::VaeOptions model = tiny_stream_model();
  const MelAnalysisOptions audio = tiny_mel_analysis(kMels);
  VaeTrainOptions o = short_training();
  o.log_every = 3;

  // A seeded shuffle of the long-enough tracks of both shards; the first 5 are held out.
  std::vector<int64_t> order;
  for (size_t i = 0; i < memory.size(); ++i)
    if (memory[i].mel_db.size(0) >= model.segment_frames) order.push_back(static_cast<int64_t>(i));
  std::mt19937_64 rng(5);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t n_val = 5;
  std::vector<MelTrack> train_memory, val_memory;
  for (size_t k = 0; k < order.size(); ++k)
    (k < n_val ? val_memory : train_memory).push_back(memory[static_cast<size_t>(order[k])]);

  // The store holds the picked tracks shard by shard; the selections put them in the shuffled order.
  constexpr int64_t kTracksPerShard = 14;
  std::vector<ShardTracks> layout{{a, {}}, {b, {}}};
  for (const int64_t i : order) layout[static_cast<size_t>(i / kTracksPerShard)].tracks.push_back(i % kTracksPerShard);
  for (auto& l : layout) std::sort(l.tracks.begin(), l.tracks.end());
  std::vector<int64_t> store_index_of(memory.size(), -1);
  int64_t next = 0;
  for (size_t s = 0; s < layout.size(); ++s)
    for (const int64_t t : layout[s].tracks) store_index_of[s * kTracksPerShard + static_cast<size_t>(t)] = next++;
  std::vector<int64_t> train_sel, val_sel;
  for (size_t k = 0; k < order.size(); ++k)
    (k < n_val ? val_sel : train_sel).push_back(store_index_of[static_cast<size_t>(order[k])]);

  train::FrameStoreOptions store;
  store.page_frames = 8;         // 512-byte pages
  store.budget_bytes = 1 << 10;  // 1 KiB: two pages
  const ShardMelSource all(layout, "mel_db", store);
  const MelSourceSelection train_stream(all, train_sel), val_stream(all, val_sel);
  ASSERT_GE(all.store().total_bytes(), 100 * store.budget_bytes);
  ASSERT_EQ(train_stream.size(), static_cast<int64_t>(train_memory.size()));
  EXPECT_TRUE(train_stream.streamed());
  for (int64_t t = 0; t < train_stream.size(); ++t) {
    const MelTrack& m = train_memory[static_cast<size_t>(t)];
    ASSERT_EQ(train_stream.id(t), m.id);
    ASSERT_EQ(train_stream.place(t).lat, m.place.lat);
    ASSERT_TRUE(torch::equal(train_stream.crop(t, 0, train_stream.frames(t)), m.mel_db)) << m.id;
  }
  for (int64_t t = 0; t < val_stream.size(); ++t)
    ASSERT_TRUE(torch::equal(val_stream.crop(t, 0, val_stream.frames(t)), val_memory[static_cast<size_t>(t)].mel_db));

  std::vector<Json> log_memory, log_stream;
  VaeBundle in_memory =
      train_vae(train_memory, val_memory, model, audio, o, [&](const Json& r) { log_memory.push_back(r); });
  VaeBundle streamed = train_vae(train_stream, val_stream, model, audio, o, [&](const Json& r) {
    log_stream.push_back(r);
    EXPECT_LE(all.store().stats().peak_cached_bytes, store.budget_bytes) << "at step " << r["step"];
  });
  expect_same_model(in_memory, streamed);
  ASSERT_EQ(log_memory.size(), 4u);
  ASSERT_EQ(log_stream.size(), log_memory.size());
  for (size_t i = 0; i < log_memory.size(); ++i)
    for (const char* key : {"loss", "reconstruction", "kl", "val_reconstruction"})
      EXPECT_EQ(log_stream[i][key].get<double>(), log_memory[i][key].get<double>()) << key << ", record " << i;
  EXPECT_EQ(evaluate_reconstruction(streamed, val_stream, 16), evaluate_reconstruction(in_memory, val_memory, 16));
  const auto st = all.store().stats();
  EXPECT_LE(st.peak_cached_bytes, store.budget_bytes);
  EXPECT_GT(st.peak_cached_bytes, 0);
  // The band statistics read the training frames twice (no page survives in so small a cache); crops come on top.
  int64_t train_bytes = 0;
  for (const auto& t : train_memory) train_bytes += t.mel_db.numel() * static_cast<int64_t>(sizeof(float));
  EXPECT_GT(st.bytes_read, 2 * train_bytes);
}

}  // namespace
}  // namespace songlines::generate
