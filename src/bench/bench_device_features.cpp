// songlines bench device-features: throughput of the device engine (features/device_engine.h) on every backend
// this binary can run (host always; cuda with the CUDA backend and a GPU), beside the FFTW reference engine on
// one thread, for the features the engine computes so far. Hours of audio per second, median of the repeats after
// a warm-up. The input PCM is already in memory; for the host backend that is the engine's memory, so the figure
// is compute only (plus the copies of the results into TrackFeatures); for CUDA it includes PCM uploads and result
// downloads (no per-stage device timing yet).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench/benchmark.h"
#include "features/device_engine.h"
#include "features/feature_extractor.h"

namespace songlines::bench {
namespace {

/// Seeded synthetic tracks: a tone that changes pitch every half second, one overtone, a little noise.
std::vector<float> bench_track(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> y(static_cast<size_t>(n));
  double f0 = 220.0;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 11025 == 0) f0 = 55.0 * std::pow(2.0, std::floor(u(rng) * 48.0) / 12.0);
    const double t = static_cast<double>(i) / 22050.0;
    y[static_cast<size_t>(i)] =
        static_cast<float>(0.3 * std::sin(2.0 * M_PI * f0 * t) + 0.1 * std::sin(6.0 * M_PI * f0 * t) + 0.01 * (u(rng) - 0.5));
  }
  return y;
}

template <class F>
double median_seconds(int repeats, F&& run) {
  run();  // warm-up: plans, allocations, page faults
  std::vector<double> s;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

int run_device_features(const cxxopts::ParseResult& args) {
  using namespace songlines::features;
  const int n_tracks = std::max(1, args["tracks"].as<int>());
  const double seconds = args["seconds"].as<double>();
  const int repeats = std::max(1, args["repeats"].as<int>());
  const int64_t batch_frames = args["batch-frames"].as<int64_t>();
  const int64_t n = static_cast<int64_t>(seconds * 22050);
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < n_tracks; ++i) tracks.push_back(bench_track(n, 777u + static_cast<uint32_t>(i)));
  const std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
  const double hours = n_tracks * seconds / 3600.0;

  std::printf("songlines bench device-features: %d tracks x %.0f s = %.3f h of audio, %d repeats (median), "
              "%u hardware threads\n",
              n_tracks, seconds, hours, repeats, std::thread::hardware_concurrency());
  std::printf("%-34s %-50s %10s %14s\n", "engine", "features", "s", "h audio / s");
  // chroma_stft and the CQT at librosa's default: their tunings estimated per track (both engines).
  const std::vector<std::vector<std::string>> sets = {{"mel_db", "mfcc"},
                                                      {"chroma_stft"},
                                                      {"spectral_contrast"},
                                                      {"cqt_mag", "chroma_cqt", "tonnetz"},
                                                      DeviceFeatureEngine::supported_features()};
  for (const auto& set : sets) {
    std::string names;
    for (const auto& s : set) names += (names.empty() ? "" : ",") + s;
    FeatureOptions o;
    o.features = set;
    const FeatureExtractor reference(o);
    const double ref_s = median_seconds(repeats, [&] {
      for (const auto& y : tracks) reference.compute(y.data(), static_cast<int64_t>(y.size()));
    });
    std::printf("%-34s %-50s %10.3f %14.2f\n", "cpu (FFTW reference, 1 thread)", names.c_str(), ref_s, hours / ref_s);
    for (DeviceBackend b : {DeviceBackend::kHost, DeviceBackend::kCuda}) {
      if (!device_backend_available(b)) {
        std::printf("%-34s %-50s %10s %14s\n", device_backend_name(b), names.c_str(), "-", "not available");
        continue;
      }
      DeviceEngineOptions eo;
      eo.backend = b;
      eo.max_batch_frames = b == DeviceBackend::kHost ? 0 : batch_frames;
      DeviceFeatureEngine engine(o, eo);
      const double s = median_seconds(repeats, [&] { engine.compute_batch(spans); });
      const std::string label = b == DeviceBackend::kHost ? "host (Thrust OpenMP, all threads)" : "cuda";
      std::printf("%-34s %-50s %10.3f %14.2f\n", label.c_str(), names.c_str(), s, hours / s);
    }
  }
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"device-features",
                                       "device engine (issue 14) on every available backend beside the FFTW "
                                       "reference: hours of audio per second for the STFT->mel->MFCC chain and "
                                       "chroma_stft, spectral_contrast, the CQT family and all of them (estimated "
                                       "tunings)",
                                       run_device_features});

}  // namespace
}  // namespace songlines::bench
