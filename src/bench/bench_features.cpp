// songlines bench features: CPU throughput of the seed's four features (mfcc, chroma_stft, spectral_contrast,
// tonnetz) in seconds of audio per second ("x real time"), computed exactly as `extract` computes them: one
// shared FeatureExtractor, FeatureExtractor::compute per track (one STFT feeding mel/mfcc, tuning, chroma_stft
// and spectral_contrast; tuning + CQT + chroma_cqt for tonnetz).
//   (a) one thread (a worker thread, as in extract): the median of R timed compute() calls on one track, with
//       the per-stage split;
//   (b) all threads: T worker threads share the extractor and take tracks from a queue, as `extract` does;
//       figure = audio seconds of the batch / batch wall clock, also divided by T (per core).
// Inputs: seeded synthetic music (extract/synthetic_music.h), a different seed, scale and tonic per track, so the
// tuning estimates (and hence the cached CQT bases) differ as they would on a real collection.
// Reference figure: the target (1000x real time per core).
// --peers: the same run also times librosa, torchaudio, nnAudio and essentia (scripts/bench_peers.py in the venv
// of scripts/peers.sh) on one audio file that this writes (track 0 at 44.1 kHz stereo, FLAC), both sides pinned to
// one core, one thread each; per feature it prints the medians and the ratios peer / songlines.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <exception>
#include <filesystem>
#include <memory>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audio/audio_file.h"
#include "bench/benchmark.h"
#include "core/config.h"
#include "core/error.h"
#include "core/thread_cpu_time.h"
#include "extract/synthetic_music.h"
#include "features/feature_extractor.h"
#include "features/feature_options.h"

namespace songlines::bench {
namespace {

constexpr double kDefaultSeconds = 60.0;     ///< issue 2: 60 s of music-like audio per track
constexpr double kTargetRealTime = 1000.0;   ///< issue 2: >= 1000x real time per core

struct Spread {
  double median = 0.0, min = 0.0, max = 0.0;
};

Spread spread(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t m = v.size();
  const double med = (m % 2 == 1) ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
  return {med, v.front(), v.back()};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Track i of the benchmark set: the quickstart's varied synthetic tracks (scale, tonic, tempo, timbre), reseeded.
std::vector<float> bench_track(int i, double seconds, int sample_rate) {
  const auto tracks = extract::default_synthetic_tracks(std::max(8, i + 1), seconds, 7000 + static_cast<uint64_t>(i));
  extract::SyntheticMusicOptions o = tracks[static_cast<size_t>(i)].options;
  o.sample_rate = sample_rate;
  o.seconds = seconds;
  return extract::synthesize_music(o);
}

/// Which feature each stage is charged to in the per-feature split (the STFT is shared by three of the four).
const char* feature_of(const std::string& stage) {
  if (stage == "mel" || stage == "mfcc") return "mfcc";
  if (stage == "tuning_stft" || stage == "chroma_stft") return "chroma_stft";
  if (stage == "spectral_contrast") return "spectral_contrast";
  if (stage == "tuning_cqt" || stage == "cqt" || stage == "chroma_cqt" || stage == "tonnetz") return "tonnetz";
  return "shared (input check, stft)";
}

// ---- --peers ---------------------------------------------------------------------------------------------------

/// What --peers compares, in print order: a row's songlines feature set, and whether the file is loaded first
/// (decode, downmix, resample to 22050 Hz). scripts/bench_peers.py times the peers under the same names.
struct PeerRow {
  std::string name;
  std::vector<std::string> features;
  bool load = false;
};

std::vector<PeerRow> peer_rows() {
  const auto& seed = features::seed_feature_names();
  std::vector<PeerRow> rows = {{"load", {}, true}};
  for (const char* f : {"stft_mag", "melspectrogram", "mfcc", "chroma_stft", "spectral_contrast", "cqt_mag",
                        "chroma_cqt", "tonnetz"})
    rows.push_back({f, {f}, false});
  rows.push_back({"seed_four", seed, false});
  rows.push_back({"extract", seed, true});
  return rows;
}

/// Pins the calling thread (and the threads it starts later) to one core; returns the core and the previous set.
int pin_to_core(int requested, cpu_set_t* previous) {
  if (sched_getaffinity(0, sizeof *previous, previous) != 0) throw Error("bench features --peers: sched_getaffinity failed");
  int core = requested;
  for (int c = 0; core < 0 && c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, previous)) core = c;
  if (core < 0 || core >= CPU_SETSIZE || !CPU_ISSET(core, previous))
    throw UsageError("bench features --core " + std::to_string(requested) + ": not a core this process may run on");
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(core, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) throw Error("bench features --peers: sched_setaffinity failed");
  return core;
}

/// The peers' venv python, or "" with the reason in *why.
std::string peers_python(std::string* why) {
  const char* env = std::getenv("SONGLINES_PEERS_VENV");
  std::filesystem::path venv;
  try {
    venv = env && *env ? std::filesystem::path(env) : project_file(".venv-peers");
  } catch (const Error&) {
    *why = "no .venv-peers found from the working directory or the binary's folders (bash scripts/peers.sh makes it)";
    return "";
  }
  if (!std::filesystem::exists(venv / "bin/python")) {
    *why = (venv / "bin/python").string() + " does not exist (bash scripts/peers.sh makes it)";
    return "";
  }
  return (venv / "bin/python").string();
}

Json run_peers(const cxxopts::ParseResult& args, double seconds, int repeats) {
  namespace fs = std::filesystem;
  using namespace songlines::features;
  // The audio: track 0 at 44.1 kHz, stereo (right = 0.7 left + 0.3 left delayed by 7 samples), 16-bit FLAC.
  const std::vector<float> mono = bench_track(0, seconds, 44100);
  std::vector<float> stereo(mono.size() * 2);
  for (size_t i = 0; i < mono.size(); ++i) {
    stereo[2 * i] = mono[i];
    stereo[2 * i + 1] = 0.7f * mono[i] + 0.3f * (i >= 7 ? mono[i - 7] : 0.0f);
  }
  const fs::path dir = fs::temp_directory_path() / ("songlines-bench-peers-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct RemoveDir {
    fs::path d;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } remove_dir{dir};
  const std::string flac = (dir / "track0_44100_stereo.flac").string();
  audio::write_audio(flac, stereo.data(), static_cast<int64_t>(stereo.size()), 44100, 2, audio::SampleEncoding::kPcm16);

  cpu_set_t previous;
  const int core = pin_to_core(args["core"].as<int>(), &previous);
  struct Unpin {
    cpu_set_t set;
    ~Unpin() { sched_setaffinity(0, sizeof set, &set); }
  } unpin{previous};

  // songlines, one worker thread (it inherits the pin): the same rows, one warm-up call, then `repeats`.
  const std::vector<PeerRow> rows = peer_rows();
  std::map<std::string, Spread> ours, ours_cpu;  // wall, the worker thread's CPU time
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      const audio::LoadOptions lo;  // 22050 Hz, librosa.load's default
      const std::vector<float> y = audio::load_audio(flac, lo).samples;
      for (const PeerRow& row : rows) {
        std::unique_ptr<FeatureExtractor> fx;
        if (!row.features.empty()) {
          FeatureOptions o;
          o.features = row.features;
          fx = std::make_unique<FeatureExtractor>(o);
        }
        auto once = [&] {
          if (row.load) {
            const audio::MonoAudio a = audio::load_audio(flac, lo);
            if (fx) (void)fx->compute(a.samples.data(), static_cast<int64_t>(a.samples.size()));
          } else {
            (void)fx->compute(y.data(), static_cast<int64_t>(y.size()));
          }
        };
        once();
        std::vector<double> t, c;
        for (int r = 0; r < repeats; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          const double c0 = thread_cpu_seconds();
          once();
          c.push_back(thread_cpu_seconds() - c0);
          t.push_back(seconds_since(t0));
        }
        ours[row.name] = spread(t);
        ours_cpu[row.name] = spread(c);
      }
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);

  // The peers, pinned to the same core, one thread each.
  Json result = {{"core", core}, {"audio", "track 0, " + std::to_string(seconds) + " s, 44100 Hz stereo FLAC"},
                 {"repeats", repeats}};
  for (const PeerRow& row : rows) {
    const Spread& s = ours[row.name];
    const Spread& c = ours_cpu[row.name];
    result["songlines"][row.name] = {{"median_s", s.median}, {"min_s", s.min},         {"max_s", s.max},
                                     {"cpu_median_s", c.median}, {"cpu_min_s", c.min}, {"cpu_max_s", c.max}};
  }
  std::string why;
  const std::string python = peers_python(&why);
  Json peers = Json::object();
  if (!python.empty()) {
    const std::string cmd = "env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "
                            "taskset -c " + std::to_string(core) + " '" + python + "' '" +
                            project_file("scripts/bench_peers.py").string() + "' --audio '" + flac +
                            "' --repeats " + std::to_string(repeats);
    int rc = 0;
    const std::string out = run_capture(cmd, &rc);
    const size_t line = out.rfind("\n{");
    if (rc != 0 || line == std::string::npos) {
      why = "scripts/bench_peers.py failed (exit " + std::to_string(rc) + "): " + out.substr(out.size() > 600 ? out.size() - 600 : 0);
    } else {
      peers = Json::parse(out.substr(line + 1)).at("peers");
    }
  }
  result["peers"] = peers;
  if (!why.empty()) result["peers_error"] = why;

  // Report: median wall ms and peer / songlines.
  std::printf("\npeers, same run, same audio (track 0: %.0f s, 44.1 kHz stereo FLAC; features on the 22050 Hz mono "
              "signal), all pinned to core %d, one thread each; median CPU ms of %d calls after a warm-up (the "
              "process's CPU time for the peers, the worker thread's for songlines; wall times in --json); "
              "(x) = peer CPU time / songlines CPU time\n",
              seconds, core, repeats);
  if (!why.empty()) std::printf("  peers not run: %s\n", why.c_str());
  const std::vector<std::string> names = {"librosa", "torchaudio", "nnAudio", "essentia"};
  std::printf("%-18s %11s", "feature", "songlines");
  for (const auto& n : names) std::printf(" %20s", n.c_str());
  std::printf("\n");
  for (const PeerRow& row : rows) {
    const double mine = ours_cpu[row.name].median;
    std::printf("%-18s %11.1f", row.name.c_str(), mine * 1e3);
    for (const auto& n : names) {
      const Json* f = peers.contains(n) && peers[n].contains("features") && peers[n]["features"].contains(row.name)
                          ? &peers[n]["features"][row.name]
                          : nullptr;
      if (!f) {
        std::printf(" %20s", "-");
        continue;
      }
      const double theirs = f->at("cpu_median_s").get<double>();
      result["ratios"][n][row.name] = theirs / mine;
      char cell[64];
      std::snprintf(cell, sizeof cell, "%.1f (%.1fx)", theirs * 1e3, theirs / mine);
      std::printf(" %20s", cell);
    }
    std::printf("\n");
  }
  for (const auto& n : names) {
    if (!peers.contains(n)) continue;
    if (peers[n].contains("error")) std::printf("  %s: not run: %s\n", n.c_str(), peers[n]["error"].get<std::string>().c_str());
    else std::printf("  %s %s\n", n.c_str(), peers[n].value("version", "?").c_str());
  }
  std::printf("  x real time (CPU), whole extract path (load + the four), one core: songlines %.0fx",
              seconds / ours_cpu["extract"].median);
  if (result.contains("ratios") && result["ratios"].contains("librosa"))
    std::printf(", librosa %.0fx", seconds / peers["librosa"]["features"]["extract"]["cpu_median_s"].get<double>());
  std::printf("\n");
  return result;
}

// (a) one thread, one track: the cold first call and R timed calls with their per-stage split.
struct OneThreadTimes {
  double cold_s = 0;  ///< first call: plans, filterbanks, the CQT basis for this tuning
  std::vector<double> wall, cpu;
  std::map<std::string, std::vector<double>> stage_wall, stage_cpu;
  std::vector<std::string> stage_order;  ///< stages in the order compute() ran them
};

// On a worker thread, where extract computes: on this 2-vCPU VM the process's main thread ran the same calls
// ~1.4x slower in about one process in three (75-78 ms instead of 53-54 ms per 60 s track, same binary, idle
// machine; with or without ASLR, on either core), while fresh threads of the same processes took 52-54 ms in
// 24 of 24 measurements (docs/benchmarks.md).
OneThreadTimes time_one_thread(const features::FeatureExtractor& extractor, const std::vector<float>& track,
                               int repeats) {
  using namespace songlines::features;
  const auto n = static_cast<int64_t>(track.size());
  OneThreadTimes out;
  std::exception_ptr failure;
  std::thread single([&] {
    try {
      auto t0 = std::chrono::steady_clock::now();
      const TrackFeatures first = extractor.compute(track.data(), n);
      out.cold_s = seconds_since(t0);
      for (int r = 0; r < repeats; ++r) {
        StageTimes times;
        t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu_seconds();
        const TrackFeatures tf = extractor.compute(track.data(), n, &times);
        out.cpu.push_back(thread_cpu_seconds() - c0);
        out.wall.push_back(seconds_since(t0));
        for (const auto& st : times.stages) {
          if (!out.stage_wall.count(st.name)) out.stage_order.push_back(st.name);
          out.stage_wall[st.name].push_back(st.wall_s);
          out.stage_cpu[st.name].push_back(st.cpu_s);
        }
        if (tf.n_frames != first.n_frames) throw Error("bench features: frame count changed between repeats");
      }
    } catch (...) {
      failure = std::current_exception();
    }
  });
  single.join();
  if (failure) std::rethrow_exception(failure);
  return out;
}

// (b) all threads: T persistent workers (like extract's pool, so per-thread scratch is reused) share the
// extractor and drain a queue of the tracks; round 0 is the warm-up (every track's tuning gets its CQT basis).
// Returns the wall seconds and the CPU seconds of all workers of each timed round.
std::pair<std::vector<double>, std::vector<double>> time_all_threads(const features::FeatureExtractor& extractor,
                                                                     const std::vector<std::vector<float>>& tracks,
                                                                     int threads, int repeats) {
  const int n_tracks = static_cast<int>(tracks.size());
  std::atomic<int> next{0};
  std::barrier sync(threads + 1);
  std::exception_ptr failure;
  std::mutex mutex;
  std::vector<double> round_cpu(static_cast<size_t>(repeats + 1), 0.0);  // CPU seconds of all workers per round
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&] {
      for (int round = 0; round <= repeats; ++round) {
        sync.arrive_and_wait();  // start of the round
        const double c0 = thread_cpu_seconds();
        try {
          for (int i = next++; i < n_tracks; i = next++)
            (void)extractor.compute(tracks[static_cast<size_t>(i)].data(),
                                    static_cast<int64_t>(tracks[static_cast<size_t>(i)].size()));
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          failure = std::current_exception();
        }
        {
          std::lock_guard<std::mutex> lock(mutex);
          round_cpu[static_cast<size_t>(round)] += thread_cpu_seconds() - c0;
        }
        sync.arrive_and_wait();  // end of the round
      }
    });
  std::vector<double> wall_all;
  for (int round = 0; round <= repeats; ++round) {
    next = 0;
    const auto t0 = std::chrono::steady_clock::now();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (round > 0) wall_all.push_back(seconds_since(t0));
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return {wall_all, std::vector<double>(round_cpu.begin() + 1, round_cpu.end())};
}

// What one run measured, and the figures derived from it.
struct FeaturesBench {
  double seconds = 0;  ///< audio per track
  int sample_rate = 0, repeats = 0, threads = 0, n_tracks = 0;
  unsigned hw = 0;  ///< hardware threads
  OneThreadTimes one;
  Spread one_wall, one_cpu, all_wall, all_cpu;
  double rt1_wall = 0, rt1_cpu = 0, rt_all = 0, rt_all_per_thread = 0, rt_all_cpu = 0;
};

void print_features_report(const FeaturesBench& b) {
  const double seconds = b.seconds;
  std::printf("songlines bench features: mfcc, chroma_stft, spectral_contrast, tonnetz (librosa 0.11 defaults), "
              "%.0f s synthetic music at %d Hz, %d repeats after a warm-up (median [min, max])\n",
              seconds, b.sample_rate, b.repeats);
  std::printf("machine: %u hardware threads. wall = elapsed; cpu = the thread's CPU time (robust on a shared "
              "machine)\n\n",
              b.hw);
  std::printf("%-26s %9s %9s %9s %9s %11s %11s\n", "stage (1 thread, track 0)", "wall ms", "min", "max", "cpu ms",
              "x RT wall", "x RT cpu");
  std::map<std::string, std::pair<double, double>> feature_s;  // feature -> (wall, cpu) medians
  double sum_wall = 0.0, sum_cpu = 0.0;
  for (const auto& name : b.one.stage_order) {
    const Spread w = spread(b.one.stage_wall.at(name)), c = spread(b.one.stage_cpu.at(name));
    sum_wall += w.median;
    sum_cpu += c.median;
    feature_s[feature_of(name)].first += w.median;
    feature_s[feature_of(name)].second += c.median;
    std::printf("%-26s %9.2f %9.2f %9.2f %9.2f %11.0f %11.0f\n", name.c_str(), w.median * 1e3, w.min * 1e3,
                w.max * 1e3, c.median * 1e3, seconds / w.median, seconds / c.median);
  }
  std::printf("%-26s %9.2f %9s %9s %9.2f %11.0f %11.0f\n", "sum of stage medians", sum_wall * 1e3, "", "",
              sum_cpu * 1e3, seconds / sum_wall, seconds / sum_cpu);
  std::printf("\n%-26s %9s %9s %11s %11s %7s\n", "per feature (1 thread)", "wall ms", "cpu ms", "x RT wall",
              "x RT cpu", "share");
  for (const auto& [name, ws] : feature_s)
    std::printf("%-26s %9.2f %9.2f %11.0f %11.0f %6.1f%%\n", name.c_str(), ws.first * 1e3, ws.second * 1e3,
                seconds / ws.first, seconds / ws.second, 100.0 * ws.second / sum_cpu);
  std::printf("\n%-26s %9s %9s %9s %9s %11s %11s\n", "end to end (compute())", "wall s", "min", "max", "cpu s",
              "x RT wall", "x RT cpu");
  std::printf("%-26s %9.4f %9.4f %9.4f %9.4f %11.0f %11.0f\n", "1 thread, 1 track", b.one_wall.median, b.one_wall.min,
              b.one_wall.max, b.one_cpu.median, b.rt1_wall, b.rt1_cpu);
  char label[64];
  std::snprintf(label, sizeof label, "%d threads, %d tracks", b.threads, b.n_tracks);
  std::printf("%-26s %9.4f %9.4f %9.4f %9.4f %11.0f %11.0f\n", label, b.all_wall.median, b.all_wall.min,
              b.all_wall.max, b.all_cpu.median, b.rt_all, b.rt_all_cpu);
  std::printf("  all threads: %.0fx real time in total, %.0fx per thread (wall), %.0fx per core (cpu)\n", b.rt_all,
              b.rt_all_per_thread, b.rt_all_cpu);
  std::printf("cold first call (plans, filterbanks, CQT basis): %.3f s\n\n", b.one.cold_s);
  std::printf("x real time per core: %.0f (1 thread, cpu), %.0f (1 thread, wall), %.0f (%d threads, cpu)\n",
              b.rt1_cpu, b.rt1_wall, b.rt_all_cpu, b.threads);
  std::printf("vs target %.0fx per core: %.2fx (1 thread, cpu), %.2fx (1 thread, wall)\n", kTargetRealTime,
              b.rt1_cpu / kTargetRealTime, b.rt1_wall / kTargetRealTime);
}

Json features_json(const FeaturesBench& b, const std::vector<std::string>& features, const Json& peers) {
  Json j;
  j["benchmark"] = "features";
  j["features"] = features;
  j["audio_seconds_per_track"] = b.seconds;
  j["sample_rate"] = b.sample_rate;
  j["repeats"] = b.repeats;
  j["hardware_threads"] = b.hw;
  auto spread_json = [](const Spread& s) { return Json{{"median", s.median}, {"min", s.min}, {"max", s.max}}; };
  j["one_thread"] = {{"wall_s", spread_json(b.one_wall)},
                     {"cpu_s", spread_json(b.one_cpu)},
                     {"x_real_time_wall", b.rt1_wall},
                     {"x_real_time_cpu", b.rt1_cpu}};
  j["all_threads"] = {{"threads", b.threads},
                      {"tracks", b.n_tracks},
                      {"wall_s", spread_json(b.all_wall)},
                      {"cpu_s_all_threads", spread_json(b.all_cpu)},
                      {"x_real_time_wall", b.rt_all},
                      {"x_real_time_wall_per_thread", b.rt_all_per_thread},
                      {"x_real_time_cpu_per_core", b.rt_all_cpu}};
  Json stages = Json::array();
  for (const auto& name : b.one.stage_order)
    stages.push_back({{"stage", name},
                      {"feature", feature_of(name)},
                      {"wall_s", spread_json(spread(b.one.stage_wall.at(name)))},
                      {"cpu_s", spread_json(spread(b.one.stage_cpu.at(name)))}});
  j["stages_one_thread"] = stages;
  j["cold_first_call_s"] = b.one.cold_s;
  j["target_x_real_time_per_core"] = kTargetRealTime;
  if (!peers.is_null()) j["peers"] = peers;
  return j;
}

int run_features(const cxxopts::ParseResult& args) {
  using namespace songlines::features;
  FeaturesBench b;
  b.seconds = args.count("seconds") ? args["seconds"].as<double>() : kDefaultSeconds;
  b.repeats = std::max(1, args["repeats"].as<int>());
  b.hw = std::max(1u, std::thread::hardware_concurrency());
  b.threads = args["threads"].as<int>() > 0 ? args["threads"].as<int>() : static_cast<int>(b.hw);
  b.n_tracks = args.count("tracks") ? std::max(1, args["tracks"].as<int>()) : b.threads;
  if (!(b.seconds > 0.0)) throw UsageError("bench features: --seconds must be positive, got " + std::to_string(b.seconds));

  FeatureOptions opt;  // librosa defaults: sr 22050, n_fft 2048, hop 512, 128 mels, 20 mfcc, 252-bin CQT (36 per octave)
  opt.features = seed_feature_names();
  b.sample_rate = opt.sample_rate;
  const FeatureExtractor extractor(opt);
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < b.n_tracks; ++i) tracks.push_back(bench_track(i, b.seconds, opt.sample_rate));

  b.one = time_one_thread(extractor, tracks[0], b.repeats);
  b.one_wall = spread(b.one.wall);
  b.one_cpu = spread(b.one.cpu);
  const auto [wall_all, cpu_all] = time_all_threads(extractor, tracks, b.threads, b.repeats);
  b.all_wall = spread(wall_all);
  b.all_cpu = spread(cpu_all);

  const double audio_all = b.seconds * b.n_tracks;
  b.rt1_wall = b.seconds / b.one_wall.median;
  b.rt1_cpu = b.seconds / b.one_cpu.median;
  b.rt_all = audio_all / b.all_wall.median;
  b.rt_all_per_thread = b.rt_all / b.threads;
  b.rt_all_cpu = audio_all / b.all_cpu.median;  // per core: audio over CPU seconds spent
  print_features_report(b);
  Json peers;
  if (args.count("peers")) peers = run_peers(args, b.seconds, b.repeats);
  if (args.count("json")) write_json_output(args["json"].as<std::string>(), features_json(b, opt.features, peers).dump(2));
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"features",
                                       "CPU engine: x real time of mfcc + chroma_stft + spectral_contrast + tonnetz "
                                       "on 60 s tracks, 1 thread and all threads, per-stage split (--json FILE)",
                                       run_features});

}  // namespace
}  // namespace songlines::bench
