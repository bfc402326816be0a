// songlines bench vae-crops: how fast the VAE's crops come off the shards (generate::ShardMelSource, the path of
// a VAE run whose frames exceed data.memory_budget_mb) against how fast train_vae consumes them
// (docs/scaling.md "Data larger than memory", the VAE).
//   data:   --tracks synthetic tracks (default 100) of --seconds audio (default 180 s -> 7752 frames at 22050 Hz,
//           hop 512) x 128 mel bands float32 (mel_db as `extract` writes it), 25 tracks per shard, written to a
//           temporary folder and removed at the end
//   reads:  crops of the default segment (128 frames) drawn as train_vae draws them (a uniform track, a uniform
//           start), 16 per batch, 4 x tracks crops, one thread (what the prefetch thread does), through a 64 MiB
//           cache, pages of 128 and 256 frames (the default); cold (the shards dropped from the OS page cache)
//           and warm (read once before)
//   train:  train_vae at the default model size (channels 32-64-128-128, batch 16, fp32, CPU) on one intra-op
//           thread, frames in memory and streamed through the 64 MiB cache with the prefetch thread: crops/s of
//           the training loop (the band statistics before it excluded), median of --repeats runs after a warm-up
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
#include "generate/mel_crop_source.h"
#include "generate/vae_training.h"

namespace songlines::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kCacheBytes = int64_t{64} << 20;
constexpr int kTracksPerShard = 25;
constexpr int kBatch = 16;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct ReadFigures {
  double crops_per_s, crop_mb_per_s, shard_mb_per_s;
};

/// `crops` crops of `segment` frames drawn as train_vae draws them, in batches, through a fresh source.
ReadFigures time_reads(const std::vector<fs::path>& files, int64_t page_frames, int64_t segment, int64_t crops) {
  train::FrameStoreOptions so;
  so.budget_bytes = kCacheBytes;
  so.page_frames = page_frames;
  const generate::ShardMelSource source(files, "mel_db", segment, so);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> pick(0, source.size() - 1);
  const auto start = Clock::now();
  for (int64_t done = 0; done < crops; done += kBatch) {
    std::vector<torch::Tensor> batch;
    for (int i = 0; i < kBatch; ++i) {
      const int64_t t = pick(rng);
      batch.push_back(source.crop(t, std::uniform_int_distribution<int64_t>(0, source.frames(t) - segment)(rng), segment));
    }
    torch::stack(batch);
  }
  const double s = seconds_since(start);
  const int64_t n = (crops + kBatch - 1) / kBatch * kBatch;
  const double crop_mb = static_cast<double>(n * segment * source.n_mels() * 4) / 1e6;
  return {static_cast<double>(n) / s, crop_mb / s, static_cast<double>(source.store().stats().bytes_read) / 1e6 / s};
}

/// Median crops/s of train_vae's loop over `repeats` runs of `steps` steps, after a warm-up run.
double time_training(const generate::MelCropSource& source, const models::VaeOptions& model,
                     const generate::MelAnalysisOptions& audio, int64_t steps, int repeats) {
  generate::VaeTrainOptions t;
  t.batch_size = kBatch;
  t.device = "cpu";
  t.seed = 1;
  t.steps = 2;
  t.log_every = t.steps;
  const generate::InMemoryMelSource no_val({});
  generate::train_vae(source, no_val, model, audio, t);  // warm-up: allocator, thread pool
  t.steps = steps;
  t.log_every = steps;
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    double rate = 0;
    generate::train_vae(source, no_val, model, audio, t, [&](const Json& rec) { rate = rec["crops_per_s"].get<double>(); });
    rates.push_back(rate);
  }
  std::sort(rates.begin(), rates.end());
  return rates[(rates.size() - 1) / 2];
}

int run(const cxxopts::ParseResult& args) {
  const int64_t tracks = args.count("tracks") ? args["tracks"].as<int>() : 100;
  const double seconds = args["seconds"].as<double>();
  const int repeats = std::max(1, args["repeats"].as<int>());
  const models::VaeOptions model;             // the default size
  const generate::MelAnalysisOptions audio;   // 22050 Hz, hop 512, 128 bands
  const int64_t segment = model.segment_frames, n_mels = model.n_mels;
  const int64_t frames = static_cast<int64_t>(seconds * audio.sample_rate / audio.hop_length) + 1;
  if (tracks < 1 || frames < segment) throw UsageError("bench vae-crops: need --tracks >= 1 and --seconds >= 3");
  at::set_num_threads(1);
  const ScratchDir scratch("vae-crops");
  const fs::path& dir = scratch.path();

  auto t0 = Clock::now();
  SyntheticShards data;  // mel_db as extract writes it, around -40 dB
  data.tracks = tracks;
  data.frames = frames;
  data.tracks_per_shard = kTracksPerShard;
  data.blocks = {{"mel_db", n_mels}};
  data.mean = -40.0f;
  data.stddev = 12.0f;
  data.attributes.sample_rate = audio.sample_rate;
  data.attributes.n_fft = audio.n_fft;
  data.attributes.hop_length = audio.hop_length;
  const auto files = write_synthetic_shards(dir, data);
  const double data_mb = static_cast<double>(tracks * frames * n_mels * 4) / 1e6;
  std::printf("songlines bench vae-crops: %lld tracks x %lld frames x %lld mel bands float32 = %.0f MB in %zu shards "
              "(written in %.1f s), cache %lld MiB, crops of %lld frames, batch %d, %d intra-op thread\n",
              static_cast<long long>(tracks), static_cast<long long>(frames), static_cast<long long>(n_mels), data_mb,
              files.size(), seconds_since(t0), static_cast<long long>(kCacheBytes >> 20),
              static_cast<long long>(segment), kBatch, at::get_num_threads());

  const int64_t crops = 4 * tracks;
  std::printf("  reads (one thread, %lld crops drawn as train_vae draws them):\n", static_cast<long long>(crops));
  for (const int64_t page : {int64_t{128}, int64_t{256}}) {
    drop_from_page_cache(files);
    const ReadFigures cold = time_reads(files, page, segment, crops);
    warm_page_cache(files);
    const ReadFigures warm = time_reads(files, page, segment, crops);
    for (const auto& [label, f] : {std::pair{"cold", cold}, std::pair{"warm", warm}})
      std::printf("    pages of %3lld frames, %s page cache: %8.0f crops/s  %7.1f MB/s of crops  %7.1f MB/s from shards\n",
                  static_cast<long long>(page), label, f.crops_per_s, f.crop_mb_per_s, f.shard_mb_per_s);
  }

  const int64_t steps = 8;
  std::printf("  train_vae (CPU, fp32, default model), crops/s of the loop, median of %d runs of %lld steps:\n", repeats,
              static_cast<long long>(steps));
  {
    std::vector<generate::MelTrack> memory;
    for (const auto& f : files) {
      shards::ShardReader r(f);
      for (int64_t t = 0; t < r.size(); ++t) {
        auto m = r.read_frames("mel_db", t);
        memory.push_back({r.ids()[t], {r.latitudes()[t], r.longitudes()[t]},
                          torch::from_blob(m.data.data(), {m.frames, m.dim}, torch::kFloat32).clone()});
      }
    }
    std::vector<const generate::MelTrack*> ptrs;
    for (const auto& t : memory) ptrs.push_back(&t);
    std::printf("    frames in memory:                    %8.1f crops/s\n",
                time_training(generate::InMemoryMelSource(ptrs), model, audio, steps, repeats));
  }
  {
    train::FrameStoreOptions so;
    so.budget_bytes = kCacheBytes;
    const generate::ShardMelSource stream(files, "mel_db", segment, so);
    const double rate = time_training(stream, model, audio, steps, repeats);
    const auto st = stream.store().stats();
    std::printf("    frames streamed (64 MiB, prefetch):  %8.1f crops/s (peak cache %.1f MiB, %.1f s of reads, most "
                "of them the band statistics' two passes)\n",
                rate, static_cast<double>(st.peak_cached_bytes) / (1 << 20), st.read_seconds);
  }
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"vae-crops",
                                       "the VAE's crops/s and MB/s read from shards through the frame cache (cold and "
                                       "warm) vs crops/s train_vae consumes, in memory and streamed",
                                       run});

}  // namespace
}  // namespace songlines::bench
