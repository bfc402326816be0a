// songlines bench long-track: what one long recording costs the CPU engine against the same audio cut into
// ordinary tracks (issue 14 item 5, bar G2: a 60-minute track at <= 1.25x the time per second of audio of
// 3-minute tracks, in <= 1 GiB).
//   Input: --tracks N pieces of --seconds S seeded synthetic music (extract/synthetic_music.h, the quickstart's
//   varied scales, tonics, tempi and timbres), and their concatenation as one track of N x S seconds
//   (default 20 x 180 s = 60 min).
//   (a) pieces: FeatureExtractor::compute on each piece in turn; (b) long: compute on the concatenation. Both on
//   one worker thread (as extract computes), the extract's default features (mfcc, chroma_stft,
//   spectral_contrast, tonnetz, mel_db); one warm-up, then R repeats, medians of the thread's CPU time and the
//   wall clock per second of audio, and their ratio long / pieces.
//   Memory: the pieces are views into the long track's PCM (one copy of the audio in memory). Before each part
//   the freed heap goes back to the system (malloc_trim) and the process's peak resident set (VmHWM) is reset
//   (/proc/self/clear_refs 5); it is read after the part. "engine" is that peak minus the resident set before the
//   part (the binary's libraries and the PCM); the peak itself is what a process computing that part needs.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/benchmark.h"
#include "core/config.h"
#include "core/error.h"
#include "core/thread_cpu_time.h"
#include "extract/synthetic_music.h"
#include "features/feature_extractor.h"
#include "features/feature_options.h"

namespace songlines::bench {
namespace {

constexpr uint64_t kSeed = 14005;  ///< seeds the pieces' styles (issue 14, item 5)
constexpr double kTargetRatio = 1.25;            ///< bar G2: long track <= 1.25x the time per audio second
constexpr double kTargetPeakBytes = 1024.0 * 1024 * 1024;  ///< bar G2: <= 1 GiB
constexpr double kMiB = 1024.0 * 1024.0;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size();
  return m == 0 ? 0.0 : (m % 2 == 1 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]));
}

/// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); -1 where unreadable (not Linux).
double proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;  // "...  kB"
  return -1.0;
}

/// Resets the process's peak resident set to its current one (Linux >= 4.0); false where that is refused.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

struct PartResult {
  std::vector<double> cpu_s, wall_s;  ///< per repeat, the whole part (all pieces, or the long track)
  double rss_before = 0.0, peak_rss = 0.0;
  int64_t frames = 0;
};

/// Runs `part` (one pass over its audio) once as a warm-up and `repeats` times timed, on a fresh worker thread.
PartResult measure(int repeats, const std::function<int64_t()>& part) {
  PartResult r;
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      malloc_trim(0);  // what earlier parts freed is not resident any more (the binary keeps its heap otherwise)
      const bool reset = reset_peak_rss();
      r.rss_before = proc_status_bytes("VmRSS");
      r.frames = part();  // warm-up: plans, filterbanks, CQT bases for the tunings met
      for (int k = 0; k < repeats; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu_seconds();
        if (part() != r.frames) throw Error("bench long-track: frame count changed between repeats");
        r.cpu_s.push_back(thread_cpu_seconds() - c0);
        r.wall_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      r.peak_rss = reset ? proc_status_bytes("VmHWM") : -1.0;
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
  return r;
}

int run_long_track(const cxxopts::ParseResult& args) {
  using namespace songlines::features;
  const double piece_s = args["seconds"].as<double>();
  const int n_pieces = args.count("tracks") ? args["tracks"].as<int>() : 20;
  const int repeats = std::max(1, args["repeats"].as<int>());
  if (!(piece_s > 0.0)) throw UsageError("bench long-track: --seconds must be positive, got " + std::to_string(piece_s));
  if (n_pieces < 1) throw UsageError("bench long-track: --tracks must be >= 1, got " + std::to_string(n_pieces));

  FeatureOptions opt;  // librosa 0.11 defaults
  opt.features = default_shard_feature_names();
  const FeatureExtractor extractor(opt);

  const double baseline_rss = proc_status_bytes("VmRSS");  // the binary and its libraries
  const auto styles = extract::default_synthetic_tracks(n_pieces, piece_s, kSeed);
  std::vector<float> whole;
  std::vector<std::pair<int64_t, int64_t>> pieces;  // [offset, samples] of each piece in `whole`
  for (const auto& t : styles) {
    extract::SyntheticMusicOptions o = t.options;
    o.sample_rate = opt.sample_rate;
    o.seconds = piece_s;
    const std::vector<float> piece = extract::synthesize_music(o);
    pieces.emplace_back(static_cast<int64_t>(whole.size()), static_cast<int64_t>(piece.size()));
    whole.insert(whole.end(), piece.begin(), piece.end());
  }
  whole.shrink_to_fit();
  const double audio_s = static_cast<double>(whole.size()) / opt.sample_rate;

  const PartResult short_part = measure(repeats, [&] {
    int64_t frames = 0;
    for (const auto& [offset, samples] : pieces) frames += extractor.compute(whole.data() + offset, samples).n_frames;
    return frames;
  });
  const PartResult long_part = measure(repeats, [&] {
    return extractor.compute(whole.data(), static_cast<int64_t>(whole.size())).n_frames;
  });

  const double short_cpu = median(short_part.cpu_s) / audio_s, short_wall = median(short_part.wall_s) / audio_s;
  const double long_cpu = median(long_part.cpu_s) / audio_s, long_wall = median(long_part.wall_s) / audio_s;
  std::printf("songlines bench long-track: %s (librosa 0.11 defaults); %d pieces of %.0f s of synthetic music vs "
              "their concatenation (%.1f min) as one track; 1 worker thread, warm-up + %d repeats, medians\n\n",
              "mfcc, chroma_stft, spectral_contrast, tonnetz, mel_db", n_pieces, piece_s, audio_s / 60.0, repeats);
  std::printf("%-22s %14s %14s %11s %11s %14s %14s\n", "part", "cpu ms/audio s", "wall ms/audio s", "x RT cpu",
              "x RT wall", "peak RSS MiB", "engine MiB");
  auto row = [&](const char* name, const PartResult& r, double cpu, double wall) {
    std::printf("%-22s %14.3f %14.3f %11.0f %11.0f %14.0f %14.0f\n", name, cpu * 1e3, wall * 1e3, 1.0 / cpu,
                1.0 / wall, r.peak_rss / kMiB, (r.peak_rss - r.rss_before) / kMiB);
  };
  char label[64];
  std::snprintf(label, sizeof label, "%d x %.0f s tracks", n_pieces, piece_s);
  row(label, short_part, short_cpu, short_wall);
  std::snprintf(label, sizeof label, "one %.0f s track", audio_s);
  row(label, long_part, long_cpu, long_wall);
  std::printf("\nratio long / pieces, time per audio second: %.3f (cpu), %.3f (wall); target <= %.2f\n",
              long_cpu / short_cpu, long_wall / short_wall, kTargetRatio);
  std::printf("peak RSS of the long part: %.0f MiB (target <= %.0f MiB); resident before it: %.0f MiB (the binary "
              "and its libraries at start: %.0f MiB; the PCM: %.0f MiB)\n",
              long_part.peak_rss / kMiB, kTargetPeakBytes / kMiB, long_part.rss_before / kMiB, baseline_rss / kMiB,
              static_cast<double>(whole.size()) * sizeof(float) / kMiB);

  if (args.count("json")) {
    Json j;
    j["benchmark"] = "long-track";
    j["features"] = opt.features;
    j["pieces"] = n_pieces;
    j["piece_seconds"] = piece_s;
    j["audio_seconds"] = audio_s;
    j["repeats"] = repeats;
    j["baseline_rss_bytes"] = baseline_rss;
    auto part_json = [](const PartResult& r, double cpu, double wall) {
      return Json{{"cpu_s_per_audio_s", cpu},   {"wall_s_per_audio_s", wall}, {"cpu_s", r.cpu_s},
                  {"wall_s", r.wall_s},         {"rss_before_bytes", r.rss_before},
                  {"peak_rss_bytes", r.peak_rss}, {"frames", r.frames}};
    };
    j["pieces_part"] = part_json(short_part, short_cpu, short_wall);
    j["long_part"] = part_json(long_part, long_cpu, long_wall);
    j["ratio_cpu"] = long_cpu / short_cpu;
    j["ratio_wall"] = long_wall / short_wall;
    j["target_ratio"] = kTargetRatio;
    j["target_peak_rss_bytes"] = kTargetPeakBytes;
    write_json_output(args["json"].as<std::string>(), j.dump(2));
  }
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"long-track",
                                       "CPU engine: one long track (--tracks x --seconds, default 20 x 180 s) vs the "
                                       "same audio as separate tracks: time per audio second, ratio, peak RSS",
                                       run_long_track});

}  // namespace
}  // namespace songlines::bench
