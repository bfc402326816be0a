// songlines bench device-features: the device engine (features/device_engine.h) on every backend this binary can
// run (host always; cuda with the CUDA backend and a GPU), beside the FFTW reference engine on one thread (issue 14
// item 7; docs/benchmarks.md "Device engine"). Three parts:
//
// 1. Compute only: --tracks seeded synthetic tracks of --seconds s, already in memory (for the host backend that
//    is the engine's memory; for CUDA the figure includes the PCM uploads and result downloads), each feature
//    alone and all of them (chroma_stft and the CQT at their estimated tunings). Hours of audio per second, median
//    of --repeats after a warm-up.
// 2. Memory floor, beside each measured time: the bytes the feature set must move divided by the backend's
//    measured copy bandwidth (DeviceFeatureEngine::measure_copy_bandwidth; for the reference, one thread's memcpy).
//    The model (floor_bytes below): the PCM read once; every intermediate a stage hands to the next (the power
//    spectrogram, the mel spectrogram, the CQT magnitude) written once and read once; every output written once;
//    on the device engine also the PCM transfer in and the outputs' transfer out. A fused engine could skip the
//    intermediates; the "io" column is that lower floor (PCM in and outputs out only).
// 3. End to end: `extract` (decode threads -> batches -> engine -> shards) on the audio under --input (real
//    compressed audio; without --input, the synthetic tracks written as 16-bit FLAC), the extract's default
//    features, --threads jobs, each engine run --repeats times (median; the files are read once before, so the
//    page cache is warm for all); beside it, decoding alone with as many threads.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "audio/audio_file.h"
#include "bench/benchmark.h"
#include "core/error.h"
#include "extract/extract.h"
#include "features/device_engine.h"
#include "features/feature_extractor.h"
#include "features/stft.h"

namespace songlines::bench {
namespace {

namespace fs = std::filesystem;
using namespace songlines::features;

constexpr double kGB = 1e9;

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

double seconds_of(const std::function<void()>& run) {
  const auto t0 = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> s) {
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

/// Median of `repeats` runs after one warm-up (plans, allocations, page faults).
double median_seconds(int repeats, const std::function<void()>& run) {
  run();
  std::vector<double> s;
  for (int r = 0; r < repeats; ++r) s.push_back(seconds_of(run));
  return median(s);
}

/// One thread's memcpy bandwidth in bytes moved per second (a copy of B bytes reads B and writes B), best of 3.
double memcpy_bandwidth(int64_t bytes) {
  std::vector<char> a(static_cast<size_t>(bytes), 1), b(static_cast<size_t>(bytes), 0);
  std::memcpy(b.data(), a.data(), a.size());  // page faults
  double best = 1e30;
  for (int r = 0; r < 3; ++r) best = std::min(best, seconds_of([&] { std::memcpy(b.data(), a.data(), a.size()); }));
  return 2.0 * static_cast<double>(bytes) / best;
}

/// The bytes a feature set must move (see the file comment), for tracks of n samples each.
struct FloorBytes {
  double pcm = 0;           ///< PCM read once
  double intermediate = 0;  ///< each intermediate written once and read once
  double outputs = 0;       ///< every output written once
  double device_bytes() const { return pcm + intermediate + outputs; }
};

FloorBytes floor_bytes(const FeatureOptions& o, const std::vector<std::string>& set, int64_t n, int n_tracks) {
  auto has = [&](const char* f) { return std::find(set.begin(), set.end(), f) != set.end(); };
  const double T = static_cast<double>(stft_num_frames(n, o.stft));
  const double Tc = static_cast<double>(1 + n / 512);  // the CQT's hop (cqt.h)
  FloorBytes b;
  b.pcm = 4.0 * static_cast<double>(n);
  const bool cqt_family = has("cqt_mag") || has("chroma_cqt") || (has("tonnetz") && o.tonnetz_chroma == TonnetzChroma::kCqt);
  const bool stft_family = has("stft_mag") || has("melspectrogram") || has("mel_db") || has("mfcc") ||
                           has("chroma_stft") || has("spectral_contrast") || (has("tonnetz") && !cqt_family) ||
                           (cqt_family && !o.cqt.tuning.has_value());  // the CQT's tuning is estimated on |STFT|
  const bool mel = has("mel_db") || has("mfcc");  // the mel spectrogram handed on to power_to_db
  if (stft_family && !(set.size() == 1 && has("stft_mag"))) b.intermediate += 2.0 * 4.0 * T * static_cast<double>(o.stft.n_fft / 2 + 1);
  if (mel) b.intermediate += 2.0 * 4.0 * T * o.mel.n_mels;
  if (cqt_family && (has("chroma_cqt") || has("tonnetz"))) b.intermediate += 2.0 * 4.0 * Tc * o.cqt.n_bins;
  for (const std::string& f : set) {
    const bool on_cqt = f == "cqt_mag" || f == "chroma_cqt" || (f == "tonnetz" && o.tonnetz_chroma == TonnetzChroma::kCqt);
    b.outputs += 4.0 * (on_cqt ? Tc : T) * static_cast<double>(o.feature_dim(f));
  }
  b.pcm *= n_tracks;
  b.intermediate *= n_tracks;
  b.outputs *= n_tracks;
  return b;
}

void print_row(const char* engine, const std::string& set, double s, double hours, double floor_s, double io_s) {
  std::printf("%-12s %-50s %9.3f %11.3f %9.4f %9.4f %8.1f\n", engine, set.c_str(), s, hours / s, floor_s, io_s,
              s / floor_s);
}

// ---- end to end ----

/// Audio files of the e2e part: --input, or the synthetic tracks written as FLAC into dir.
fs::path e2e_input(const cxxopts::ParseResult& args, const std::vector<std::vector<float>>& tracks, const fs::path& dir) {
  if (args.count("input")) return args["input"].as<std::string>();
  fs::create_directories(dir / "audio");
  for (size_t i = 0; i < tracks.size(); ++i)
    audio::write_audio((dir / "audio" / ("track" + std::to_string(i) + ".flac")).string(), tracks[i].data(),
                       static_cast<int64_t>(tracks[i].size()), 22050, 1, audio::SampleEncoding::kPcm16);
  return dir / "audio";
}

int run_device_features(const cxxopts::ParseResult& args) {
  const int n_tracks = std::max(1, args["tracks"].as<int>());
  const double seconds = args["seconds"].as<double>();
  const int repeats = std::max(1, args["repeats"].as<int>());
  const int64_t batch_frames = args["batch-frames"].as<int64_t>();
  const int threads = args["threads"].as<int>() > 0 ? args["threads"].as<int>()
                                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t n = static_cast<int64_t>(seconds * 22050);
  if (n < 1) throw UsageError("bench device-features: --seconds must give at least one sample");
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < n_tracks; ++i) tracks.push_back(bench_track(n, 777u + static_cast<uint32_t>(i)));
  const std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
  const double hours = n_tracks * seconds / 3600.0;

  std::printf("songlines bench device-features: %d tracks x %.0f s = %.3f h of audio, %d repeats (median), "
              "%u hardware threads\n",
              n_tracks, seconds, hours, repeats, std::thread::hardware_concurrency());

  // ---- copy bandwidths: the floors' denominators ----
  const int64_t bw_bytes = int64_t{256} << 20;
  const double ref_bw = memcpy_bandwidth(bw_bytes);
  std::printf("\ncopy bandwidth (256 MiB, best of 3; device-to-device counts read + write):\n");
  std::printf("  cpu reference (memcpy, 1 thread): %.2f GB/s\n", ref_bw / kGB);
  std::vector<DeviceBackend> backends;
  std::vector<CopyBandwidth> bws;
  for (DeviceBackend b : {DeviceBackend::kHost, DeviceBackend::kCuda}) {
    if (!device_backend_available(b)) {
      std::printf("  %s: not available\n", device_backend_name(b));
      continue;
    }
    FeatureOptions o;
    o.features = {"stft_mag"};
    DeviceEngineOptions eo;
    eo.backend = b;
    DeviceFeatureEngine engine(o, eo);
    const CopyBandwidth bw = engine.measure_copy_bandwidth(bw_bytes);
    std::printf("  %s: host->device %.2f GB/s, device->device %.2f GB/s, device->host %.2f GB/s\n",
                device_backend_name(b), bw.host_to_device / kGB, bw.device_to_device / kGB, bw.device_to_host / kGB);
    backends.push_back(b);
    bws.push_back(bw);
  }

  // ---- compute only, with the floors ----
  std::printf("\ncompute only (PCM in memory); floor = bytes to move / copy bandwidth (s); io = PCM in + outputs "
              "out only; x floor = s / floor\n");
  std::printf("%-12s %-50s %9s %11s %9s %9s %8s\n", "engine", "features", "s", "h audio/s", "floor s", "io s", "x floor");
  std::vector<std::vector<std::string>> sets;
  for (const std::string& f : DeviceFeatureEngine::supported_features()) sets.push_back({f});
  sets.push_back(DeviceFeatureEngine::supported_features());
  for (const auto& set : sets) {
    FeatureOptions o;
    o.features = set;
    const std::string names = set.size() > 1 ? "all (" + std::to_string(set.size()) + ")" : set[0];
    const FloorBytes fb = floor_bytes(o, set, n, n_tracks);
    const FeatureExtractor reference(o);
    const double ref_s = median_seconds(repeats, [&] {
      for (const auto& y : tracks) reference.compute(y.data(), static_cast<int64_t>(y.size()));
    });
    print_row("cpu 1 thr", names, ref_s, hours, fb.device_bytes() / ref_bw, (fb.pcm + fb.outputs) / ref_bw);
    for (size_t k = 0; k < backends.size(); ++k) {
      DeviceEngineOptions eo;
      eo.backend = backends[k];
      eo.max_batch_frames = backends[k] == DeviceBackend::kHost ? 0 : batch_frames;
      DeviceFeatureEngine engine(o, eo);
      const double s = median_seconds(repeats, [&] { engine.compute_batch(spans); });
      const CopyBandwidth& bw = bws[k];
      const double transfers = fb.pcm / bw.host_to_device + fb.outputs / bw.device_to_host;
      print_row(device_backend_name(backends[k]), names, s, hours, transfers + fb.device_bytes() / bw.device_to_device,
                transfers + (fb.pcm + fb.outputs) / bw.device_to_device);
    }
  }
  {  // the stages of all features, for reading the floors above
    FeatureOptions o;
    const FloorBytes fb = floor_bytes(o, DeviceFeatureEngine::supported_features(), n, n_tracks);
    std::printf("bytes of all features: PCM %.1f MB, intermediates (written + read) %.1f MB, outputs %.1f MB\n",
                fb.pcm / 1e6, fb.intermediate / 1e6, fb.outputs / 1e6);
  }

  // ---- end to end ----
  const fs::path dir = fs::temp_directory_path() / ("songlines-bench-e2e-" + std::to_string(::getpid()));
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  const fs::path input = e2e_input(args, tracks, dir);
  std::vector<extract::FailedFile> failed;
  const extract::AudioFileList files = extract::find_audio_files({input}, failed);
  if (files.files.empty()) throw InputError(input.string(), "no audio files for the end-to-end part");
  int64_t compressed = 0;
  for (const auto& f : files.files) {  // read once: the page cache is warm for every engine
    std::ifstream in(f, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) compressed += in.gcount();
  }
  // decoding alone, `threads` threads (the extract's decode stage at its best)
  double decoded_s = 0;
  std::vector<double> decode_times;
  for (int r = 0; r < repeats; ++r) {
    std::atomic<size_t> next{0};
    std::atomic<int64_t> samples{0};
    decode_times.push_back(seconds_of([&] {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
          audio::LoadOptions lo;
          for (size_t i = next++; i < files.files.size(); i = next++)
            samples += static_cast<int64_t>(audio::load_audio(files.files[i].string(), lo).samples.size());
        });
      for (auto& th : pool) th.join();
    }));
    decoded_s = static_cast<double>(samples.load()) / 22050.0;
  }
  const double decode_s = median(decode_times);
  std::printf("\nend to end: extract of %zu files under %s (%.1f MB compressed, %.3f h of audio), default shard "
              "features, %d jobs, median of %d\n",
              files.files.size(), input.string().c_str(), static_cast<double>(compressed) / 1e6, decoded_s / 3600.0,
              threads, repeats);
  std::printf("%-12s %9s %11s\n", "stage", "s", "h audio/s");
  std::printf("%-12s %9.3f %11.3f\n", "decode only", decode_s, decoded_s / 3600.0 / decode_s);
  std::vector<std::pair<Device, const char*>> engines = {{Device::kCpu, "cpu"}};
  for (DeviceBackend b : backends) engines.push_back({b == DeviceBackend::kHost ? Device::kHost : Device::kCuda, device_backend_name(b)});
  for (const auto& [device, label] : engines) {
    std::vector<double> times;
    double audio_s = 0;
    for (int r = 0; r < repeats; ++r) {
      extract::ExtractOptions eo;
      eo.inputs = {input};
      eo.output_dir = dir / ("out-" + std::string(label) + "-" + std::to_string(r));
      eo.jobs = threads;
      eo.device = device;
      eo.max_batch_frames = device == Device::kCuda ? batch_frames : 0;
      eo.progress = ProgressMode::kQuiet;
      const extract::ExtractResult res = extract::run_extract(eo);
      if (!res.failed.empty())
        throw InputError(res.failed[0].path, "end-to-end extract failed: " + res.failed[0].reason);
      times.push_back(res.wall_seconds);
      audio_s = res.audio_seconds;
      fs::remove_all(eo.output_dir);
    }
    const double s = median(times);
    std::printf("%-12s %9.3f %11.3f\n", (std::string("extract ") + label).c_str(), s, audio_s / 3600.0 / s);
  }
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"device-features",
                                       "device engine (issue 14) on every available backend beside the FFTW "
                                       "reference: compute-only hours of audio per second per feature and for all, "
                                       "each beside its memory floor (bytes to move / measured copy bandwidth), and "
                                       "end-to-end extract on --input DIR (default: the tracks as FLAC)",
                                       run_device_features});

}  // namespace
}  // namespace songlines::bench
