// songlines bench crops: how fast crops of streamed frames come off the shards (train::FrameStore, the path of
// temporal models when the frames exceed data.memory_budget_mb) against how fast the temporal trainer consumes
// them (docs/scaling.md "Data larger than memory").
//   data:   --tracks synthetic tracks (default 400) of --seconds audio (default 180 s -> 7752 frames at 22050 Hz,
//           hop 512) x 45 float32 (the seed's four frame blocks), in shards of 100 tracks, written to a temporary
//           folder and removed at the end
//   reads:  one crop of 256 frames per track per epoch in a random order at random starts, 4 epochs, through a
//           64 MiB cache, single-threaded (what the prefetch thread does), with pages of 64 and 256 frames;
//           cold (the shards dropped from the OS page cache with posix_fadvise) and warm (read once before)
//   train:  the temporal model of `bench train` (conv 64 x 2, kernel 5, batch 32, crops of 256) on the same
//           shards, frames in memory and streamed through the 64 MiB cache with the prefetch thread; the first
//           epoch is a warm-up
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include <ATen/Parallel.h>

#include "bench/benchmark.h"
#include "bench/page_cache.h"
#include "bench/scratch_dir.h"
#include "bench/synthetic_shards.h"
#include "core/error.h"
#include "train/dataset.h"
#include "train/frame_store.h"
#include "train/trainer.h"

namespace songlines::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kCropFrames = 256;
constexpr int64_t kCacheBytes = int64_t{64} << 20;
constexpr int kTracksPerShard = 100;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct ReadFigures {
  double crops_per_s, crop_mb_per_s, shard_mb_per_s;
};

/// `epochs` epochs of one random crop per track, as the trainer draws them, read through a fresh store.
ReadFigures time_reads(const std::vector<fs::path>& files, int64_t page_frames, int epochs) {
  train::FrameLoading l;
  l.residence = train::FrameResidence::kStream;
  l.memory_budget_bytes = kCacheBytes;
  l.store.page_frames = page_frames;
  const auto data = train::load_summary_dataset(files, {}, train::default_frame_blocks(), l);
  const train::FrameSequences& seq = *data.sequences;
  std::mt19937_64 rng(1);
  std::vector<float> crop(static_cast<size_t>(kCropFrames * seq.dim));
  std::vector<int64_t> order(static_cast<size_t>(seq.size()));
  const auto start = Clock::now();
  int64_t crops = 0;
  for (int e = 0; e < epochs; ++e) {
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::shuffle(order.begin(), order.end(), rng);
    for (const int64_t t : order) {
      const int64_t first = std::uniform_int_distribution<int64_t>(0, seq.length(t) - kCropFrames)(rng);
      seq.copy_rows(t, first, kCropFrames, crop.data());
      ++crops;
    }
  }
  const double s = seconds_since(start);
  const auto st = seq.store->stats();
  const double crop_mb = static_cast<double>(crops * kCropFrames * seq.dim * 4) / 1e6;
  return {static_cast<double>(crops) / s, crop_mb / s, static_cast<double>(st.bytes_read) / 1e6 / s};
}

/// Median crops per second of the temporal trainer over epochs 2..n (the first is the warm-up).
double time_training(const train::Dataset& data, int epochs) {
  models::LocationModelOptions mo;
  mo.type = "temporal";
  mo.conv_channels = 64;
  mo.conv_layers = 2;
  mo.kernel_size = 5;
  mo.dropout = 0.2;
  train::TrainOptions to;
  to.epochs = epochs;
  to.batch_size = 32;
  to.crop_frames = kCropFrames;
  to.device = "cpu";
  std::vector<int64_t> rows(static_cast<size_t>(data.size()));
  for (int64_t i = 0; i < data.size(); ++i) rows[i] = i;
  std::vector<double> per_epoch;
  auto last = Clock::now();
  train::NeuralLocationEstimator est(mo, to);
  est.fit(data, rows, [&](int, double) {
    per_epoch.push_back(seconds_since(last));
    last = Clock::now();
  });
  per_epoch.erase(per_epoch.begin());
  std::sort(per_epoch.begin(), per_epoch.end());
  return static_cast<double>(data.size()) / per_epoch[(per_epoch.size() - 1) / 2];
}

int run_crops(const cxxopts::ParseResult& args) {
  const int64_t tracks = args.count("tracks") ? args["tracks"].as<int>() : 400;
  const double seconds = args["seconds"].as<double>();
  const int64_t frames = static_cast<int64_t>(seconds * 22050 / 512) + 1;
  if (tracks < 1 || frames < kCropFrames) throw UsageError("bench crops: need --tracks >= 1 and --seconds >= 6");
  const int epochs = std::max(3, args["repeats"].as<int>() + 1);
  const ScratchDir scratch("crops");
  const fs::path& dir = scratch.path();

  auto t0 = Clock::now();
  SyntheticShards data;
  data.tracks = tracks;
  data.frames = frames;
  data.tracks_per_shard = kTracksPerShard;
  data.blocks = {{"mfcc", 20}, {"chroma_stft", 12}, {"spectral_contrast", 7}, {"tonnetz", 6}};
  const auto files = write_synthetic_shards(dir, data);
  const double data_mb = static_cast<double>(tracks * frames * 45 * 4) / 1e6;
  std::printf("songlines bench crops: %lld tracks x %lld frames x 45 float32 = %.0f MB of frames in %zu shards "
              "(written in %.1f s), cache %lld MiB, crops of %lld frames, %d intra-op threads\n",
              static_cast<long long>(tracks), static_cast<long long>(frames), data_mb, files.size(), seconds_since(t0),
              static_cast<long long>(kCacheBytes >> 20), static_cast<long long>(kCropFrames), at::get_num_threads());

  std::printf("  reads (one thread, 4 epochs of one random crop per track):\n");
  for (const int64_t page : {int64_t{64}, int64_t{256}}) {
    drop_from_page_cache(files);
    const ReadFigures cold = time_reads(files, page, 4);
    warm_page_cache(files);
    const ReadFigures warm = time_reads(files, page, 4);
    for (const auto& [label, f] : {std::pair{"cold", cold}, std::pair{"warm", warm}})
      std::printf("    pages of %3lld frames, %s page cache: %8.0f crops/s  %7.1f MB/s of crops  %7.1f MB/s from shards\n",
                  static_cast<long long>(page), label, f.crops_per_s, f.crop_mb_per_s, f.shard_mb_per_s);
  }

  std::printf("  temporal training (CPU), median of %d epochs after a warm-up:\n", epochs - 1);
  {
    const auto memory = train::load_summary_dataset(files, {}, train::default_frame_blocks());
    std::printf("    frames in memory:                  %8.0f crops/s\n", time_training(memory, epochs));
  }
  {
    train::FrameLoading l;
    l.residence = train::FrameResidence::kStream;
    l.memory_budget_bytes = kCacheBytes;
    const auto stream = train::load_summary_dataset(files, {}, train::default_frame_blocks(), l);
    const double crops_per_s = time_training(stream, epochs);
    const auto st = stream.sequences->store->stats();
    std::printf("    frames streamed (64 MiB, prefetch): %8.0f crops/s (peak cache %.1f MiB, %.1f s of reads)\n",
                crops_per_s, static_cast<double>(st.peak_cached_bytes) / (1 << 20), st.read_seconds);
  }
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"crops",
                                       "crops/s and MB/s read from shards through the frame cache (cold and warm) "
                                       "vs crops/s the temporal trainer consumes, in memory and streamed",
                                       run_crops});

}  // namespace
}  // namespace songlines::bench
