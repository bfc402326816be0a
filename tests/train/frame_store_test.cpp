// Frames streamed from shards (train::FrameStore, docs/scaling.md "Data larger than memory"): crops equal the
// in-memory frames, the cache never holds more than its budget on data many times larger, the prefetch thread
// hands out batches in order, a temporal model trained on streamed frames equals one trained in memory, and a
// shard that disappears or is cut short mid-run is an error naming the file.
#include "train/frame_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "core/error.h"
#include "support/test_support.h"
#include "train/batch_prefetcher.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace songlines::train {
namespace {

namespace fs = std::filesystem;

/// `tracks` tracks of the seed's four frame blocks with seeded random values and lengths 150..449 frames, at
/// four places; every value differs, so a crop from the wrong rows or columns cannot match by chance.
fs::path write_frame_shard(const fs::path& file, int tracks, uint64_t seed) {
  shards::ShardWriter w(file, shards::ShardAttributes{});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> length(150, 449);
  const std::pair<float, float> places[4] = {{48.85f, 2.35f}, {-33.87f, 151.21f}, {35.68f, 139.69f}, {-15.78f, -47.93f}};
  const std::map<std::string, int64_t> dims = {{"mfcc", 20}, {"chroma_stft", 12}, {"spectral_contrast", 7}, {"tonnetz", 6}};
  for (int i = 0; i < tracks; ++i) {
    shards::TrackRecord t;
    t.id = file.stem().string() + "-" + std::to_string(i);
    t.path = t.id + ".wav";
    t.latitude = places[i % 4].first;
    t.longitude = places[i % 4].second;
    const int64_t frames = length(rng);
    for (const auto& [name, d] : dims) {
      features::FeatureMatrix m(frames, d);
      for (auto& v : m.data) v = value(rng);
      if (name == "mfcc")  // a place signal in the frames, so training has something to learn
        for (int64_t f = 0; f < frames; ++f) m.at(f, 0) += static_cast<float>(i % 4);
      t.frames.emplace(name, std::move(m));
    }
    w.add(t);
  }
  w.close();
  return file;
}

struct TwoShards {
  testing::TempDir dir;
  std::vector<fs::path> files;
  TwoShards() { files = {write_frame_shard(dir / "a.h5", 24, 1), write_frame_shard(dir / "b.h5", 24, 2)}; }
};

FrameLoading streamed(int64_t budget_bytes, int64_t page_frames = 64, int max_open_files = 16) {
  FrameLoading l;
  l.residence = FrameResidence::kStream;
  l.memory_budget_bytes = budget_bytes;
  l.store.page_frames = page_frames;
  l.store.max_open_files = max_open_files;
  return l;
}

/// Every element of `actual` equals `expected`; on failure, the first differing index and both values.
::testing::AssertionResult SameFloats(const std::vector<float>& actual, const std::vector<float>& expected) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "sizes " << actual.size() << " vs " << expected.size();
  for (size_t i = 0; i < actual.size(); ++i)
    if (actual[i] != expected[i])
      return ::testing::AssertionFailure() << "element " << i << ": " << actual[i] << " vs " << expected[i];
  return ::testing::AssertionSuccess();
}

/// Seeded random crops (track, start, count) of a sequence set, within each track.
std::vector<std::array<int64_t, 3>> random_windows(const FrameSequences& seq, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::array<int64_t, 3>> out;
  for (int k = 0; k < n; ++k) {
    const int64_t t = std::uniform_int_distribution<int64_t>(0, seq.size() - 1)(rng);
    const int64_t start = std::uniform_int_distribution<int64_t>(0, seq.length(t) - 1)(rng);
    const int64_t count = std::uniform_int_distribution<int64_t>(1, seq.length(t) - start)(rng);
    out.push_back({t, start, count});
  }
  return out;
}

std::vector<float> read_window(const FrameSequences& seq, const std::array<int64_t, 3>& w) {
  std::vector<float> out(static_cast<size_t>(w[2] * seq.dim), std::nanf(""));  // poisoned: unwritten fails
  seq.copy_rows(w[0], w[1], w[2], out.data());
  return out;
}

TEST(FrameStore, CropsEqualTheInMemoryFramesAndTheCacheStaysWithinItsBudget) {
  TwoShards data;
  const auto memory = load_summary_dataset(data.files, {}, default_frame_blocks());
  constexpr int64_t kBudget = 64 << 10;  // 64 KiB: about five pages of 64 frames x 45 floats
  const auto stream = load_summary_dataset(data.files, {}, default_frame_blocks(), streamed(kBudget));
  ASSERT_FALSE(memory.sequences->streamed());
  ASSERT_TRUE(stream.sequences->streamed());
  const FrameStore& store = *stream.sequences->store;
  ASSERT_GE(store.total_bytes(), 20 * kBudget) << "the data must be many times the budget";
  EXPECT_EQ(store.total_bytes(), static_cast<int64_t>(memory.sequences->frames.size() * sizeof(float)));
  EXPECT_EQ(stream.sequences->offsets, memory.sequences->offsets);
  EXPECT_EQ(stream.sequences->dim, memory.sequences->dim);
  EXPECT_EQ(stream.ids, memory.ids);
  EXPECT_EQ(stream.x, memory.x);

  // Random windows (across page borders, whole tracks, single frames), twice: the second pass hits the cache
  // for windows read recently.
  const auto windows = random_windows(*memory.sequences, 400, 5);
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& w : windows) {
      ASSERT_TRUE(SameFloats(read_window(*stream.sequences, w), read_window(*memory.sequences, w)))
          << "track " << w[0] << " frames " << w[1] << "+" << w[2] << ", pass " << pass;
      ASSERT_LE(store.stats().cached_bytes, kBudget);
    }
  const auto s = store.stats();
  EXPECT_LE(s.peak_cached_bytes, kBudget);
  EXPECT_GT(s.peak_cached_bytes, kBudget / 2) << "the cache should fill up to its budget";
  EXPECT_GT(s.page_hits, 0);
  EXPECT_GT(s.page_misses, 0);
  EXPECT_GT(s.bytes_read, store.total_bytes()) << "data larger than the cache is read more than once";
}

TEST(FrameStore, AutoKeepsFramesInMemoryWhenTheyFitTheBudget) {
  TwoShards data;
  FrameLoading fits;
  fits.residence = FrameResidence::kAuto;
  fits.memory_budget_bytes = 64 << 20;
  FrameLoading too_small = fits;
  too_small.memory_budget_bytes = 64 << 10;
  const auto a = load_summary_dataset(data.files, {}, default_frame_blocks(), fits);
  const auto b = load_summary_dataset(data.files, {}, default_frame_blocks(), too_small);
  EXPECT_FALSE(a.sequences->streamed());
  ASSERT_TRUE(b.sequences->streamed());
  EXPECT_EQ(b.sequences->store->options().budget_bytes, 64 << 10);
  EXPECT_EQ(a.sequences->offsets, b.sequences->offsets);
}

TEST(FrameStore, StandardizerOfStreamedFramesEqualsTheInMemoryOne) {
  TwoShards data;
  const auto memory = load_summary_dataset(data.files, {}, default_frame_blocks());
  const auto stream = load_summary_dataset(data.files, {}, default_frame_blocks(), streamed(64 << 10));
  const std::vector<int64_t> tracks = {0, 3, 7, 25, 40, 47};
  const auto a = Standardizer::fit_frames(*memory.sequences, tracks);
  const auto b = Standardizer::fit_frames(*stream.sequences, tracks);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.scale, b.scale);
}

// A short temporal training run (dropout on, minibatches, random crops) with frames far larger than the cache:
// the crops, and so the weights and predictions, equal the in-memory run's bit for bit.
TEST(FrameStore, TemporalTrainingOnStreamedFramesEqualsInMemory) {
  TwoShards data;
  const auto memory = load_summary_dataset(data.files, {}, default_frame_blocks());
  constexpr int64_t kBudget = 96 << 10;
  const auto stream = load_summary_dataset(data.files, {}, default_frame_blocks(), streamed(kBudget));
  models::LocationModelOptions mo;
  mo.type = "temporal";
  mo.conv_channels = 8;
  mo.conv_layers = 2;
  mo.kernel_size = 3;
  mo.dropout = 0.2;
  TrainOptions to;
  to.epochs = 3;
  to.batch_size = 8;
  to.crop_frames = 96;
  to.eval_crops = 3;
  to.seed = 4;
  to.device = "cpu";
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 40; ++i) rows.push_back(i);
  const std::vector<int64_t> held_out = {40, 41, 42, 43, 44, 45, 46, 47};
  auto outputs = [&](const Dataset& d, std::vector<double>& losses) {
    NeuralLocationEstimator e(mo, to);
    e.fit(d, rows, [&](int, double loss) { losses.push_back(loss); });
    std::vector<double> out;
    const auto p = e.predict(d, held_out);
    for (size_t i = 0; i < p.points.size(); ++i) out.insert(out.end(), {p.points[i].lat, p.points[i].lon, p.uncertainty_km[i]});
    return out;
  };
  std::vector<double> loss_memory, loss_stream;
  const auto a = outputs(memory, loss_memory);
  const auto b = outputs(stream, loss_stream);
  EXPECT_EQ(loss_stream, loss_memory);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)  // NaN uncertainty (a head without one) equals NaN here
    EXPECT_TRUE(b[i] == a[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << "output " << i << ": " << b[i] << " vs " << a[i];
  const auto s = stream.sequences->store->stats();
  EXPECT_LE(s.peak_cached_bytes, kBudget);
  EXPECT_GE(stream.sequences->store->total_bytes(), 15 * kBudget);
}

TEST(FrameStore, AShardThatDisappearsIsAnErrorNamingIt) {
  TwoShards data;
  // One file open at a time: reading from b closes a, so a is reopened (and found missing) on the next read.
  const auto stream = load_summary_dataset(data.files, {}, default_frame_blocks(), streamed(64 << 10, 64, 1));
  const FrameSequences& seq = *stream.sequences;
  std::vector<float> buffer(static_cast<size_t>(100 * seq.dim));
  seq.copy_rows(0, 0, 100, buffer.data());   // a.h5
  seq.copy_rows(30, 0, 100, buffer.data());  // b.h5
  fs::remove(data.files[0]);
  try {
    seq.copy_rows(1, 0, 100, buffer.data());
    FAIL() << "reading from a deleted shard must throw";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), data.files[0].string());
    EXPECT_NE(std::string(e.what()).find("disappeared"), std::string::npos) << e.what();
  }
  // The open one (b.h5) removed under the reader: its next uncached page is refused too.
  fs::remove(data.files[1]);
  EXPECT_THROW(
      {
        try {
          seq.copy_rows(31, 0, 100, buffer.data());
        } catch (const InputError& e) {
          EXPECT_EQ(e.path(), data.files[1].string());
          throw;
        }
      },
      InputError);
}

TEST(FrameStore, AShardCutShortMidRunIsAnErrorNamingItNotZeros) {
  TwoShards data;
  const auto stream = load_summary_dataset(data.files, {}, default_frame_blocks(), streamed(64 << 10));
  const FrameSequences& seq = *stream.sequences;
  std::vector<float> buffer(static_cast<size_t>(100 * seq.dim));
  seq.copy_rows(0, 0, 100, buffer.data());  // a.h5 is open now
  fs::resize_file(data.files[0], fs::file_size(data.files[0]) / 2);
  try {
    seq.copy_rows(23, 0, 100, buffer.data());  // the last track of a.h5: its rows lie in the cut half
    FAIL() << "reading from a truncated shard must throw";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), data.files[0].string());
    EXPECT_NE(std::string(e.what()).find("changed size"), std::string::npos) << e.what();
  }
}

TEST(BatchPrefetcher, HandsOutBatchesInOrderAndRethrowsTheProducersFailure) {
  std::atomic<int64_t> made{0};
  {
    BatchPrefetcher<int64_t> p(50, [&](int64_t i) {
      ++made;
      return i * i;
    });
    for (int64_t i = 0; i < 50; ++i) ASSERT_EQ(p.next(), i * i);
    EXPECT_THROW(p.next(), std::logic_error);
  }
  EXPECT_EQ(made.load(), 50);
  BatchPrefetcher<int64_t> failing(10, [](int64_t i) -> int64_t {
    if (i == 3) throw InputError("shard.h5", "cannot read");
    return i;
  });
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(failing.next(), i);
  EXPECT_THROW(failing.next(), InputError);
  // A consumer that leaves early: the destructor stops the producer (no hang, no leak).
  BatchPrefetcher<int64_t> abandoned(1000000, [](int64_t i) { return i; }, 3);
  EXPECT_EQ(abandoned.next(), 0);
}

}  // namespace
}  // namespace songlines::train
