// songlines bench train: seconds per training epoch of the location models in the C++ trainer
// (train::NeuralLocationEstimator, the loop `songlines run` uses) against the same model, data shape, batch size,
// optimiser and loss in PyTorch's Python API (scripts/bench_train_torch.py), measured in the same run.
//   mlp:      the GOM table shipped in data/gom (1059 tracks x 68 features), hidden 256, batch 64
//   temporal: synthetic frames, 2000 tracks x 1300 frames x 45 dims (the seed's four frame features' width),
//             crops of 256 frames, batch 32
// Epoch times come from the trainer's per-epoch callback; the first epoch is a warm-up and is not counted.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include <ATen/Parallel.h>

#include "bench/benchmark.h"
#include "core/config.h"
#include "core/error.h"
#include "models/torch_compat.h"
#include "train/trainer.h"

namespace songlines::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}

/// Per-epoch seconds of fit() (epoch 0, which includes setup, is the warm-up and dropped).
std::vector<double> time_epochs(train::NeuralLocationEstimator& est, const train::Dataset& data, int epochs) {
  std::vector<int64_t> rows(data.size());
  for (int64_t i = 0; i < data.size(); ++i) rows[i] = i;
  std::vector<double> t;
  auto last = Clock::now();
  est.fit(data, rows, [&](int, double) {
    auto now = Clock::now();
    t.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
  });
  if (static_cast<int>(t.size()) != epochs) throw Error("bench train: trainer reported " + std::to_string(t.size()) + " epochs");
  t.erase(t.begin());
  return t;
}

/// Runs the Python peer; returns its median epoch seconds, or NaN (with the reason printed) when it cannot run.
double python_peer(const std::string& args, std::string* version) {
  fs::path script;
  try {
    script = project_file("scripts/bench_train_torch.py");
  } catch (const Error& e) {
    std::printf("  PyTorch peer: unavailable (%s)\n", e.what());
    return NAN;
  }
  // SONGLINES_PYTHON picks the interpreter whose torch is the peer (default: python3 on PATH).
  const char* env = std::getenv("SONGLINES_PYTHON");
  const std::string python = env && *env ? env : "python3";
  int rc = 0;
  const std::string out = run_capture("'" + python + "' '" + script.string() + "' " + args, &rc);
  auto brace = out.rfind('{');
  if (rc != 0 || brace == std::string::npos) {
    std::printf("  PyTorch peer: failed (exit %d): %s\n", rc, out.substr(0, 300).c_str());
    return NAN;
  }
  Json j = Json::parse(out.substr(brace));
  *version = j.at("torch").get<std::string>() + ", " + std::to_string(j.at("threads").get<int>()) + " threads";
  return j.at("median_s").get<double>();
}

void report(const char* name, const std::vector<double>& cpp, double py, const std::string& py_version) {
  double m = median_of(cpp);
  auto [lo, hi] = std::minmax_element(cpp.begin(), cpp.end());
  std::printf("  %-9s C++ (libtorch %s): %8.4f s/epoch (median of %zu, range %.4f..%.4f)\n", name,
              torch_compat::version().c_str(), m, cpp.size(), *lo, *hi);
  if (std::isnan(py)) return;
  std::printf("  %-9s PyTorch %s: %8.4f s/epoch   C++ / Python time: %.2fx (%s)\n", name, py_version.c_str(), py, m / py,
              m <= py ? "C++ no slower: target met" : "C++ slower: target missed");
}

int run_train(const cxxopts::ParseResult& args) {
  const int epochs = std::max(3, args["repeats"].as<int>() + 1);
  const int threads = at::get_num_threads();
  std::printf("songlines bench train: %d timed epochs after one warm-up epoch, %d intra-op threads, CPU\n", epochs - 1,
              threads);

  // ---- mlp on GOM ----
  auto gom = project_file("data/gom/default_features_1059_tracks.txt");
  auto data = train::dataset_from_table(train::read_feature_table(gom, train::parse_table_format("gom")), {});
  models::LocationModelOptions mo;
  mo.type = "mlp";
  mo.hidden_sizes = {256};
  mo.dropout = 0.3;
  train::TrainOptions to;
  to.epochs = epochs;
  to.batch_size = 64;
  to.device = "cpu";
  train::NeuralLocationEstimator mlp(mo, to);
  auto cpp_mlp = time_epochs(mlp, data, epochs);
  std::string ver;
  double py_mlp = python_peer("--task mlp --gom '" + gom.string() + "' --batch 64 --epochs " + std::to_string(epochs) +
                                  " --threads " + std::to_string(threads),
                              &ver);
  report("mlp/GOM", cpp_mlp, py_mlp, ver);

  // ---- temporal on synthetic frames ----
  const int64_t tracks = args.count("tracks") ? args["tracks"].as<int>() : 2000, frames = 1300, dim = 45;
  train::Dataset syn;
  auto seq = std::make_shared<train::FrameSequences>();
  seq->dim = dim;
  seq->blocks = train::default_frame_blocks();
  seq->frames.resize(static_cast<size_t>(tracks * frames * dim));
  std::mt19937_64 rng(0);
  std::normal_distribution<float> normal;
  for (auto& v : seq->frames) v = normal(rng);
  std::uniform_real_distribution<double> lat(-60, 70), lon(-180, 180);
  for (int64_t i = 0; i < tracks; ++i) {
    seq->offsets.push_back(seq->offsets.back() + frames);
    syn.coords.push_back({lat(rng), lon(rng)});
    syn.ids.push_back("t" + std::to_string(i));
    syn.countries.emplace_back();
    syn.artists.emplace_back();
  }
  syn.dim = 0;
  syn.sequences = seq;
  models::LocationModelOptions tmo;
  tmo.type = "temporal";
  tmo.conv_channels = 64;
  tmo.conv_layers = 2;
  tmo.kernel_size = 5;
  tmo.dropout = 0.2;
  train::TrainOptions tto = to;
  tto.batch_size = 32;
  tto.crop_frames = 256;
  train::NeuralLocationEstimator temporal(tmo, tto);
  auto cpp_t = time_epochs(temporal, syn, epochs);
  double py_t = python_peer("--task temporal --tracks " + std::to_string(tracks) + " --frames 1300 --crop 256 --batch 32 --epochs " +
                                std::to_string(epochs) + " --threads " + std::to_string(threads),
                            &ver);
  report("temporal", cpp_t, py_t, ver);
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"train",
                                       "seconds per epoch of the location models (mlp on GOM, temporal on 2000 x "
                                       "1300 synthetic frames) vs the same loop in PyTorch's Python API",
                                       run_train});

}  // namespace
}  // namespace songlines::bench
