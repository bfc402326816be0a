// Oracle tests (CTest label oracle): audio input and every feature of the CPU engine against LIVE librosa 0.11,
// on seeded random music-like files of random lengths at 22.05, 44.1 and 48 kHz, mono and stereo, WAV and FLAC.
// scripts/oracle_librosa.py writes the files and librosa's outputs (run once per process, with the peers' venv
// of scripts/peers.sh); this compares audio::load_audio and FeatureExtractor::compute with them at the golden
// tolerances (tests/features/feature_golden_test.cpp): relative L2 1e-4, chroma and tonnetz max abs 1e-3,
// tunings exact. They complement the checked-in goldens (fixed signals, librosa not needed), not replace them.
//
// When the venv is missing: the tests FAIL when the oracle is required (CI set, as .ci/run runs, or
// SONGLINES_ORACLE=1), and skip with a message otherwise; SONGLINES_ORACLE=0 skips them on purpose.
// SONGLINES_ORACLE_SEED=N draws other signals; SONGLINES_PEERS_VENV names another venv (docs/features.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "features/feature_extractor.h"
#include "support/test_support.h"

namespace songlines {
namespace {

namespace fs = std::filesystem;
using testing::MaxAbsNear;
using testing::RelativeL2Near;

constexpr int kCases = 6;               // scripts/oracle_librosa.py --cases: 3 rates x mono/stereo
constexpr double kRelL2 = 1e-4;         // the golden tolerances
constexpr double kChromaMaxAbs = 1e-3;
constexpr double kTuningExact = 1e-9;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool oracle_required() {
  const std::string o = env("SONGLINES_ORACLE");
  if (o == "0") return false;
  return o == "1" || (!env("CI").empty() && env("CI") != "false");
}

struct Oracle {
  std::string unavailable;  ///< why the oracle could not run ("" when it did)
  bool failed = false;      ///< the venv exists (or is required) but the oracle did not produce its outputs
  std::unique_ptr<testing::TempDir> dir;
  nlohmann::json manifest;

  std::vector<double> array(int c, const std::string& key, std::vector<int64_t>* shape) const {
    const auto& a = manifest.at("cases").at(c).at("arrays").at(key);
    *shape = a.at("shape").get<std::vector<int64_t>>();
    int64_t n = 1;
    for (int64_t d : *shape) n *= d;
    const fs::path path = dir->path() / a.at("file").get<std::string>();
    std::ifstream in(path, std::ios::binary);
    std::vector<double> out(static_cast<size_t>(n));
    if (a.at("dtype") == "float32") {
      std::vector<float> f(static_cast<size_t>(n));
      in.read(reinterpret_cast<char*>(f.data()), static_cast<std::streamsize>(n * sizeof(float)));
      out.assign(f.begin(), f.end());
    } else {
      in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n * sizeof(double)));
    }
    if (!in) throw std::runtime_error(path.string() + ": shorter than its manifest shape");
    return out;
  }
  std::string audio(int c) const { return (dir->path() / manifest.at("cases").at(c).at("audio").get<std::string>()).string(); }
};

const Oracle& oracle() {
  static const std::unique_ptr<Oracle> o = [] {
    auto r = std::make_unique<Oracle>();
    if (env("SONGLINES_ORACLE") == "0") {
      r->unavailable = "SONGLINES_ORACLE=0";
      return r;
    }
    const fs::path venv = env("SONGLINES_PEERS_VENV").empty() ? testing::source_dir() / ".venv-peers"
                                                               : fs::path(env("SONGLINES_PEERS_VENV"));
    const fs::path python = venv / "bin" / "python";
    if (!fs::exists(python)) {
      r->unavailable = "no peers venv at " + venv.string() + " (make it with bash scripts/peers.sh)";
      r->failed = oracle_required();
      return r;
    }
    r->dir = std::make_unique<testing::TempDir>();
    const std::string seed = env("SONGLINES_ORACLE_SEED").empty() ? "20261202" : env("SONGLINES_ORACLE_SEED");
    const std::string cmd = "'" + python.string() + "' '" + (testing::source_dir() / "scripts/oracle_librosa.py").string() +
                            "' --out '" + r->dir->path().string() + "' --seed " + seed + " --cases " +
                            std::to_string(kCases);
    const testing::CommandResult res = testing::run_command(cmd);
    std::cout << res.output;
    const fs::path manifest = r->dir->path() / "manifest.json";
    if (res.exit_code != 0 || !fs::exists(manifest)) {
      r->unavailable = "scripts/oracle_librosa.py failed (exit " + std::to_string(res.exit_code) + "): " + cmd;
      r->failed = true;
      return r;
    }
    std::ifstream in(manifest);
    r->manifest = nlohmann::json::parse(in);
    std::cout << "oracle: librosa " << r->manifest.at("librosa").get<std::string>() << ", seed " << seed << "\n";
    return r;
  }();
  return *o;
}

#define SONGLINES_NEED_ORACLE()                                             \
  do {                                                                      \
    const Oracle& o_ = oracle();                                            \
    if (o_.failed) FAIL() << "oracle required but unavailable: " << o_.unavailable; \
    if (!o_.unavailable.empty()) GTEST_SKIP() << "oracle skipped: " << o_.unavailable; \
  } while (0)

/// [dim, frames] (librosa) -> [frames, dim] (FeatureMatrix), the first `frames` columns.
std::vector<double> transposed(const std::vector<double>& a, int64_t dim, int64_t cols, int64_t frames) {
  std::vector<double> out(static_cast<size_t>(frames * dim));
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t k = 0; k < dim; ++k) out[static_cast<size_t>(t * dim + k)] = a[static_cast<size_t>(k * cols + t)];
  return out;
}

std::string describe(int c) {
  const auto& m = oracle().manifest.at("cases").at(c);
  return "case " + std::to_string(c) + " (" + std::to_string(m.at("sample_rate").get<int>()) + " Hz, " +
         std::to_string(m.at("channels").get<int>()) + " ch, " + m.at("subtype").get<std::string>() + " " +
         m.at("audio").get<std::string>() + ")";
}

class OracleLoad : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(OracleLoad, DecodeDownmixResampleMatchLibrosaLoad) {
  SONGLINES_NEED_ORACLE();
  const auto [c, rate] = GetParam();
  const std::string key = rate == 0 ? "load_native" : "load_" + std::to_string(rate);
  std::vector<int64_t> shape;
  const std::vector<double> expected = oracle().array(c, key, &shape);
  audio::LoadOptions lo;
  lo.sample_rate = rate;
  const audio::MonoAudio a = audio::load_audio(oracle().audio(c), lo);
  ASSERT_EQ(static_cast<int64_t>(a.samples.size()), shape.at(0)) << describe(c) << " " << key << ": length";
  const auto r = RelativeL2Near(std::vector<double>(a.samples.begin(), a.samples.end()), expected, kRelL2,
                                describe(c) + " " + key);
  EXPECT_TRUE(r);
  if (r) std::cout << "  " << key << " measured " << r.message() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Librosa, OracleLoad,
                         ::testing::Combine(::testing::Range(0, kCases), ::testing::Values(22050, 16000, 0)),
                         [](const auto& info) {
                           const int rate = std::get<1>(info.param);
                           return "case" + std::to_string(std::get<0>(info.param)) + "_" +
                                  (rate == 0 ? std::string("native") : std::to_string(rate));
                         });

/// The features of load_22050 (librosa's own y, so a feature's error is the engine's alone), computed once per case.
const features::TrackFeatures& computed(int c) {
  static std::map<int, features::TrackFeatures> cache;
  auto it = cache.find(c);
  if (it != cache.end()) return it->second;
  static const features::FeatureExtractor extractor(features::FeatureOptions{});  // every feature
  std::vector<int64_t> shape;
  const std::vector<double> y64 = oracle().array(c, "load_22050", &shape);
  const std::vector<float> y(y64.begin(), y64.end());
  return cache[c] = extractor.compute(y.data(), static_cast<int64_t>(y.size()));
}

TEST(OracleSetup, FrameCountIsOnePlusLengthOverHop) {
  // The features are computed from librosa's own y (so an error is the engine's alone).
  SONGLINES_NEED_ORACLE();
  for (int c = 0; c < kCases; ++c) {
    std::vector<int64_t> shape;
    oracle().array(c, "load_22050", &shape);
    EXPECT_EQ(computed(c).n_frames, 1 + shape.at(0) / 512) << describe(c);
  }
}

class OracleTuning : public ::testing::TestWithParam<int> {};

TEST_P(OracleTuning, BothTuningEstimatesEqualLibrosa) {
  SONGLINES_NEED_ORACLE();
  const int c = GetParam();
  const auto& m = oracle().manifest.at("cases").at(c);
  EXPECT_NEAR(computed(c).tuning_chroma_stft, m.at("tuning_chroma_stft").get<double>(), kTuningExact) << describe(c);
  EXPECT_NEAR(computed(c).tuning_cqt, m.at("tuning_cqt").get<double>(), kTuningExact) << describe(c);
}

INSTANTIATE_TEST_SUITE_P(Librosa, OracleTuning, ::testing::Range(0, kCases),
                         [](const auto& info) { return "case" + std::to_string(info.param); });

struct FeatureCase {
  const char* name;
  bool max_abs;  ///< chroma/tonnetz: max abs error; the others relative L2
};
void PrintTo(const FeatureCase& c, std::ostream* os) { *os << c.name; }

const FeatureCase kFeatureCases[] = {{"stft_mag", false},    {"melspectrogram", false}, {"mel_db", false},
                                     {"mfcc", false},        {"chroma_stft", true},     {"spectral_contrast", false},
                                     {"cqt_mag", false},     {"chroma_cqt", true},      {"tonnetz", true}};

class OracleFeature : public ::testing::TestWithParam<std::tuple<int, FeatureCase>> {};

TEST_P(OracleFeature, MatchesLibrosa) {
  SONGLINES_NEED_ORACLE();
  const auto [c, fc] = GetParam();
  const features::FeatureMatrix& m = computed(c).frames.at(fc.name);
  std::vector<int64_t> shape;
  const std::vector<double> raw = oracle().array(c, fc.name, &shape);
  ASSERT_EQ(shape.size(), 2u);
  ASSERT_EQ(shape[0], m.dim) << describe(c) << " " << fc.name << ": rows";
  ASSERT_EQ(shape[1], m.frames) << describe(c) << " " << fc.name << ": frames";
  const std::vector<double> expected = transposed(raw, shape[0], shape[1], m.frames);
  const std::vector<double> actual(m.data.begin(), m.data.end());
  const std::string what = describe(c) + " " + fc.name + " [frames, dim]";
  const auto r = fc.max_abs ? MaxAbsNear(actual, expected, kChromaMaxAbs, what, m.dim)
                            : RelativeL2Near(actual, expected, kRelL2, what, m.dim);
  EXPECT_TRUE(r);
  if (r) std::cout << "  measured " << r.message() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Librosa, OracleFeature,
                         ::testing::Combine(::testing::Range(0, kCases), ::testing::ValuesIn(kFeatureCases)),
                         [](const auto& info) {
                           return "case" + std::to_string(std::get<0>(info.param)) + "_" + std::get<1>(info.param).name;
                         });

}  // namespace
}  // namespace songlines
