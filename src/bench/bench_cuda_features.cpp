// songlines bench cuda-features: throughput of the CUDA feature engine in hours of audio per second.
//   (a) compute only, per stage (device events around each stage; PCM upload excluded, download reported apart)
//   (b) end to end of compute_batch (host packing, uploads, CPU octave decimation for the CQT, downloads)
//   (c) the memory floor: bytes the STFT -> mel -> MFCC path must move, over the measured D2D copy bandwidth.
// Inputs are seeded synthetic music-like tracks, so the numbers are reproducible without a collection.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <span>
#include <vector>

#include "bench/benchmark.h"
#include "core/error.h"
#include "features/cuda_feature_engine.h"
#include "features/device.h"
#include "features/feature_options.h"

namespace songlines::bench {
namespace {

std::vector<float> synthetic_track(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> y(static_cast<size_t>(n));
  const double sr = 22050.0;
  double f0 = 110.0;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 11025 == 0) f0 = 110.0 * std::pow(2.0, std::floor(u(rng) * 36.0f) / 12.0);
    double t = static_cast<double>(i) / sr;
    y[static_cast<size_t>(i)] = static_cast<float>(0.3 * std::sin(2.0 * M_PI * f0 * t) +
                                                   0.1 * std::sin(4.0 * M_PI * f0 * t) + 0.01 * (u(rng) - 0.5f));
  }
  return y;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int run_cuda_features(const cxxopts::ParseResult& args) {
  using namespace songlines::features;
  if (!cuda_engine_built()) throw Error("bench cuda-features: this songlines was built without CUDA");
  if (cuda_device_count() == 0) throw Error("bench cuda-features: no CUDA device is available");
  const int n_tracks = args["tracks"].as<int>();
  const double seconds = args["seconds"].as<double>();
  const int repeats = std::max(1, args["repeats"].as<int>());
  CudaEngineOptions eng;
  eng.device = args["device-index"].as<int>();
  eng.max_batch_frames = args["batch-frames"].as<int64_t>();

  FeatureOptions opt;  // all features at librosa's defaults
  const int64_t n = static_cast<int64_t>(seconds * opt.sample_rate);
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < n_tracks; ++i) tracks.push_back(synthetic_track(n, 1234u + static_cast<uint32_t>(i)));
  std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
  const double audio_hours = n_tracks * seconds / 3600.0;

  CudaFeatureEngine engine(opt, eng);
  engine.compute_batch(spans);  // warm-up: plans, filterbank caches, allocations
  std::map<std::string, std::vector<double>> stage_ms;
  std::vector<double> wall_s;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    engine.compute_batch(spans);
    wall_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& [name, ms] : engine.last_times().ms) stage_ms[name].push_back(ms);
  }

  std::printf("songlines bench cuda-features: %d tracks x %.0f s = %.3f h of audio, %d repeats (median)\n", n_tracks,
              seconds, audio_hours, repeats);
  std::printf("%-20s %12s %16s\n", "stage", "ms", "h audio / s");
  double compute_ms = 0.0;
  for (const auto& [name, v] : stage_ms) {
    double ms = median(v);
    if (name != "download") compute_ms += ms;
    std::printf("%-20s %12.3f %16.1f\n", name.c_str(), ms, audio_hours / (ms * 1e-3));
  }
  std::printf("%-20s %12.3f %16.1f   (all features, compute only; PCM upload excluded)\n", "compute total",
              compute_ms, audio_hours / (compute_ms * 1e-3));
  const double wall = median(wall_s);
  std::printf("%-20s %12.3f %16.1f   (compute_batch wall clock: packing, copies, CPU decimation)\n", "end to end",
              wall * 1e3, audio_hours / wall);

  // Memory floor of STFT -> mel -> MFCC as this engine runs it (float32 bytes per frame): PCM read (hop samples),
  // frames written + read (2 n_fft), complex spectrum written + read (2 * 2 bins), power written + read (2 bins),
  // mel written + read + dB written + read (4 n_mels), MFCC written (n_mfcc).
  const double bins = opt.stft.n_fft / 2 + 1;
  const double frames = n_tracks * (1.0 + std::floor(static_cast<double>(n) / opt.stft.hop_length));
  const double bytes_engine = 4.0 * frames *
                              (opt.stft.hop_length + 2.0 * opt.stft.n_fft + 4.0 * bins + 2.0 * bins +
                               4.0 * opt.mel.n_mels + opt.mfcc.n_mfcc);
  const double bytes_fused = 4.0 * frames * (opt.stft.hop_length + opt.mfcc.n_mfcc);  // PCM in, MFCC out
  const double gbs = measure_device_copy_bandwidth_gbs(eng.device);
  double mfcc_path_ms = 0.0;
  for (const char* s : {"stft", "mel", "mel_db", "mfcc"})
    if (stage_ms.count(s)) mfcc_path_ms += median(stage_ms[s]);
  const double floor_engine_ms = bytes_engine / (gbs * 1e9) * 1e3, floor_fused_ms = bytes_fused / (gbs * 1e9) * 1e3;
  std::printf("D2D copy bandwidth: %.1f GB/s (read + write)\n", gbs);
  std::printf("STFT->mel->MFCC: %.3f ms measured; floor %.3f ms for this engine's traffic (%.2fx), %.3f ms for a "
              "fully fused kernel (%.2fx)\n",
              mfcc_path_ms, floor_engine_ms, mfcc_path_ms / floor_engine_ms, floor_fused_ms,
              mfcc_path_ms / floor_fused_ms);
  std::printf("(note: the stft stage also writes |X| for stft_mag, contrast and the CQT tuning)\n");
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"cuda-features",
                                       "CUDA feature engine: hours of audio per second per stage, end to end, and "
                                       "the STFT->mel->MFCC memory floor",
                                       run_cuda_features});

}  // namespace
}  // namespace songlines::bench
