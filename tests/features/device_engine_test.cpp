// The device engine (features/device_engine.h) against the FFTW reference engine and librosa's goldens. One test
// body per check, instantiated per backend: the host backend (Thrust OpenMP) runs for real everywhere; the CUDA
// instance GTEST_SKIPs without the CUDA backend or a GPU. Every run poisons the outputs with NaN first, so an
// element the engine fails to write fails the comparison (RelativeL2Near rejects non-finite values).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "features/cqt.h"
#include "features/device.h"
#include "features/device_engine.h"
#include "features/device_engine/chain.h"
#include "features/device_engine/row_divider.h"
#include "features/feature_extractor.h"
#include "features/stft.h"
#include "features/tuning.h"
#include "golden_h5.h"
#include "support/test_support.h"

namespace songlines::features {
namespace {

using songlines::testing::GoldenFile;
using songlines::testing::golden_transposed;
using songlines::testing::MaxAbsNear;
using songlines::testing::RelativeL2Near;

constexpr double kRelL2 = 1e-4;             // issue 14: device engine vs librosa and vs the reference, float32
constexpr double kBatchInvariance = 1e-6;   // a track in a ragged, chunked batch vs the same track alone
constexpr double kChromaMaxAbs = 1e-3;      // issue 14: chroma max abs
constexpr double kContrastMaxAbs = 1e-3;    // issue 14: spectral_contrast max abs (dB)

const std::vector<std::string> kGoldenSignals = {"amajor_chord_3s", "chirp_50_8000_4s", "short_0p05s", "silence_2s",
                                                 "sine440_3s",      "synth_song_6s",    "white_noise_seed0_3s"};

// The STFT -> mel -> MFCC chain and spectral_contrast (chroma_stft has tests of its own).
FeatureOptions chain_options() {
  FeatureOptions o;
  o.features = {"stft_mag", "melspectrogram", "mel_db", "mfcc", "spectral_contrast"};
  return o;
}

/// The bar per feature: max abs for spectral_contrast (dB) and the chromas, relative L2 otherwise.
::testing::AssertionResult feature_near(const std::string& name, const std::vector<double>& actual,
                                        const std::vector<double>& expected, double rel_l2, const std::string& what,
                                        int64_t dim) {
  if (name == "spectral_contrast") return MaxAbsNear(actual, expected, kContrastMaxAbs, what, dim);
  if (name == "chroma_stft") return MaxAbsNear(actual, expected, kChromaMaxAbs, what, dim);
  return RelativeL2Near(actual, expected, rel_l2, what, dim);
}

std::vector<double> as_double(const FeatureMatrix& m, int64_t frames = -1) {
  const int64_t n = (frames < 0 ? m.frames : frames) * m.dim;
  return std::vector<double>(m.data.begin(), m.data.begin() + n);
}

/// Seeded test signal: random partials with random onsets, a noise floor, and a stretch of digital silence
/// (so that power_to_db's floor and clip are exercised inside real tracks).
std::vector<float> seeded_signal(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.02);
  struct Partial {
    double freq, amp, onset;
  };
  std::vector<Partial> partials;
  for (int k = 0; k < 6; ++k) partials.push_back({60.0 + 4000.0 * u(rng) * u(rng), 0.4 * u(rng), u(rng) * n});
  const int64_t quiet_begin = static_cast<int64_t>(u(rng) * n), quiet_end = quiet_begin + n / 10;
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double v = noise(rng);
    for (const Partial& p : partials)
      if (i >= p.onset) v += p.amp * std::sin(2.0 * M_PI * p.freq * i / 22050.0) * std::exp(-(i - p.onset) / 44100.0);
    y[static_cast<size_t>(i)] = (i >= quiet_begin && i < quiet_end) ? 0.0f : static_cast<float>(v);
  }
  return y;
}

/// Seeded signals (seeded_signal: partials at random frequencies, so that the estimated tunings spread over the
/// histogram) of random lengths from 1 sample to max_len.
std::vector<std::vector<float>> random_length_tracks(int count, uint32_t seed, int64_t max_len) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> len(1, max_len);
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < count; ++i) tracks.push_back(seeded_signal(len(rng), seed * 1000 + static_cast<uint32_t>(i)));
  return tracks;
}

class DeviceEngineTest : public ::testing::TestWithParam<DeviceBackend> {
 protected:
  void SetUp() override {
    if (!device_backend_available(GetParam()))
      GTEST_SKIP() << device_backend_name(GetParam()) << " backend not available (no CUDA backend built, or no GPU)";
  }
  std::vector<TrackFeatures> run(const FeatureOptions& o, const std::vector<std::vector<float>>& tracks,
                                 int64_t max_batch_frames = 0, int64_t* batches = nullptr) const {
    DeviceEngineOptions eo;
    eo.backend = GetParam();
    eo.max_batch_frames = max_batch_frames;
    eo.poison_outputs = true;
    DeviceFeatureEngine engine(o, eo);
    std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
    std::vector<TrackFeatures> out = engine.compute_batch(spans);
    if (batches) *batches = engine.last_batch_count();
    return out;
  }
};

/// Each feature of `actual` against the reference engine on the same track.
void expect_matches_reference(const FeatureOptions& o, const std::vector<float>& y, const TrackFeatures& actual,
                              const std::string& what) {
  const FeatureExtractor reference(o);
  const TrackFeatures expected = reference.compute(y.data(), static_cast<int64_t>(y.size()));
  ASSERT_EQ(actual.n_frames, expected.n_frames) << what;
  ASSERT_EQ(actual.frames.size(), expected.frames.size()) << what;
  for (const auto& [name, m] : expected.frames) {
    const FeatureMatrix& a = actual.frames.at(name);
    ASSERT_EQ(a.frames, m.frames) << what << "/" << name;
    ASSERT_EQ(a.dim, m.dim) << what << "/" << name;
    EXPECT_TRUE(feature_near(name, as_double(a), as_double(m), kRelL2, what + "/" + name + " vs reference", m.dim));
  }
}

TEST_P(DeviceEngineTest, GoldenSignalsInOneRaggedBatchMatchLibrosaAndTheReference) {
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  const FeatureOptions o = chain_options();
  const std::vector<TrackFeatures> out = run(o, tracks);
  for (size_t i = 0; i < tracks.size(); ++i) {
    const GoldenFile g(kGoldenSignals[i]);
    EXPECT_EQ(out[i].n_frames, static_cast<int64_t>(g.attribute("n_frames"))) << kGoldenSignals[i];
    for (const std::string& name : o.features) {
      const FeatureMatrix& m = out[i].frames.at(name);
      const auto gold = g.dataset(name);
      const int64_t frames = std::min<int64_t>(m.frames, gold.cols());  // the stft_mag golden keeps <= 64 frames
      ASSERT_EQ(gold.rows(), m.dim) << name;
      const auto r = feature_near(name, as_double(m, frames), golden_transposed(gold, frames), kRelL2,
                                  kGoldenSignals[i] + "/" + name + " vs librosa", m.dim);
      EXPECT_TRUE(r);
      if (r) std::cout << "  measured " << r.message() << "\n";  // docs/cuda.md quotes the worst of these
    }
    expect_matches_reference(o, tracks[i], out[i], kGoldenSignals[i]);
  }
}

TEST_P(DeviceEngineTest, RaggedChunkedBatchEqualsEachTrackAlone) {
  // Lengths from 1 sample (one frame, all padding) past n_fft and over several batches; a budget of 37 frames
  // puts batch and chunk edges at awkward places (tracks longer than 37 frames are chunked).
  const std::vector<int64_t> lengths = {1, 700, 2047, 2048, 2049, 22050, 3 * 22050 + 17, 511, 9 * 22050 + 1};
  std::vector<std::vector<float>> tracks;
  for (size_t i = 0; i < lengths.size(); ++i) tracks.push_back(seeded_signal(lengths[i], 100 + static_cast<uint32_t>(i)));
  const FeatureOptions o = chain_options();
  int64_t batches = 0;
  const std::vector<TrackFeatures> together = run(o, tracks, 37, &batches);
  int64_t total_frames = 0;
  for (const auto& tf : together) total_frames += tf.n_frames;
  EXPECT_GE(batches, (total_frames + 36) / 37) << "the budget of 37 frames was not respected";
  for (size_t i = 0; i < tracks.size(); ++i) {
    const std::string what = "track " + std::to_string(i) + " (" + std::to_string(lengths[i]) + " samples)";
    int64_t alone_batches = 0;
    const TrackFeatures alone = run(o, {tracks[i]}, 1 << 20, &alone_batches).at(0);
    EXPECT_EQ(alone_batches, 1) << what;
    ASSERT_EQ(together[i].n_frames, stft_num_frames(lengths[i], o.stft)) << what;
    for (const auto& [name, m] : alone.frames) {
      const FeatureMatrix& t = together[i].frames.at(name);
      ASSERT_EQ(t.frames, m.frames) << what << "/" << name;
      EXPECT_TRUE(RelativeL2Near(as_double(t), as_double(m), kBatchInvariance, what + "/" + name + " batched vs alone",
                                 m.dim));
      if (name == "spectral_contrast") {  // per frame, exact selection: within rounding of the FFT's last bits
        EXPECT_TRUE(MaxAbsNear(as_double(t), as_double(m), 1e-4, what + "/" + name + " batched vs alone", m.dim));
      }
    }
    expect_matches_reference(o, tracks[i], together[i], what);
  }
}

TEST_P(DeviceEngineTest, LongTrackInChunksMatchesTheReference) {
  // Eight minutes (20672 frames) in chunks of the default budget (8192 frames on the host: 2.5 chunks), mel_db's
  // and spectral_contrast's global maxima carried across chunks; mfcc without mel_db, so the unclipped dB lives in
  // the engine's scratch. The chunked result equals the whole track in one batch.
  const std::vector<float> y = seeded_signal(480 * 22050, 7);
  FeatureOptions o;
  o.features = {"mfcc", "spectral_contrast"};
  int64_t batches = 0;
  const TrackFeatures tf = run(o, {y}, 8192, &batches).at(0);
  EXPECT_EQ(batches, 3);
  ASSERT_EQ(tf.frames.size(), 2u);
  expect_matches_reference(o, y, tf, "480 s track, mfcc and spectral_contrast");
  const TrackFeatures whole = run(o, {y}, 1 << 20, &batches).at(0);
  EXPECT_EQ(batches, 1);
  // Chunks and the whole track run FFTs of other batch sizes, whose plans may round the last bits differently:
  // the bound is a few float32 ulps of the feature's largest magnitude (mfcc's c0 reaches ~555, where one ulp is
  // 6.1e-5), not an absolute 1e-4.
  for (const auto& [name, m] : whole.frames) {
    double peak = 0.0;
    for (float v : m.data) peak = std::max(peak, std::abs(static_cast<double>(v)));
    EXPECT_TRUE(MaxAbsNear(as_double(tf.frames.at(name)), as_double(m), std::max(1e-4, 1e-6 * peak),
                           "480 s track/" + name + " chunked vs whole", m.dim));
  }
}

TEST_P(DeviceEngineTest, SpectralContrastOptionsGridMatchesTheReference) {
  // Every option of spectral_contrast (fmin, n_bands, quantile: from one bin per band to nearly half of it, so the
  // selection keeps long sorted lists) under two STFT sizes, on random lengths in ragged, chunked batches.
  const std::vector<std::vector<float>> tracks = random_length_tracks(5, 41, 6 * 22050);
  struct Case {
    int n_fft;
    double fmin;
    int n_bands;
    double quantile;
  };
  for (const Case& c : {Case{2048, 200.0, 6, 0.02}, Case{2048, 100.0, 3, 0.3}, Case{1024, 300.0, 5, 0.49},
                        Case{512, 150.0, 4, 0.1}, Case{2048, 50.0, 7, 0.001}}) {
    FeatureOptions o;
    o.features = {"spectral_contrast"};
    o.stft.n_fft = c.n_fft;
    o.stft.hop_length = c.n_fft / 4;
    o.spectral_contrast.fmin = c.fmin;
    o.spectral_contrast.n_bands = c.n_bands;
    o.spectral_contrast.quantile = c.quantile;
    const std::string config = "n_fft " + std::to_string(c.n_fft) + ", fmin " + std::to_string(c.fmin) + ", n_bands " +
                               std::to_string(c.n_bands) + ", quantile " + std::to_string(c.quantile);
    const std::vector<TrackFeatures> out = run(o, tracks, 53);
    for (size_t i = 0; i < tracks.size(); ++i) {
      ASSERT_EQ(out[i].frames.at("spectral_contrast").dim, c.n_bands + 1) << config;
      expect_matches_reference(o, tracks[i], out[i], config + ", track " + std::to_string(i));
    }
  }
}

TEST_P(DeviceEngineTest, SilenceGivesTheFloorEverywhere) {
  const std::vector<float> y(2 * 22050, 0.0f);
  const FeatureOptions o = chain_options();
  const TrackFeatures tf = run(o, {y, y}, 50).at(1);  // 87 frames each: the second one chunked
  const std::vector<float>& db = tf.frames.at("mel_db").data;
  EXPECT_NEAR(db.at(0), 10.0 * std::log10(o.db.amin), 1e-4);  // -100 dB: power_to_db's amin floor
  for (float v : db) ASSERT_EQ(v, db[0]);
  for (float v : tf.frames.at("stft_mag").data) ASSERT_EQ(v, 0.0f);
  expect_matches_reference(o, y, tf, "silence");
}

TEST_P(DeviceEngineTest, ChromaStftAtLibrosasTuningMatchesLibrosaAndTheReference) {
  // A fixed tuning (options.chroma_stft.tuning): each golden signal is computed at the tuning librosa estimated
  // for it, in one ragged batch whose 50-frame budget chunks every track but the shortest.
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  for (size_t i = 0; i < tracks.size(); ++i) {
    const GoldenFile g(kGoldenSignals[i]);
    FeatureOptions o;
    o.features = {"chroma_stft", "mfcc"};
    o.chroma_stft.tuning = g.attribute("tuning_chroma_stft");
    const std::vector<TrackFeatures> out = run(o, {tracks[i], tracks[(i + 1) % tracks.size()]}, 50);
    const FeatureMatrix& m = out[0].frames.at("chroma_stft");
    EXPECT_EQ(out[0].tuning_chroma_stft, *o.chroma_stft.tuning);
    const auto gold = g.dataset("chroma_stft");
    ASSERT_EQ(gold.rows(), m.dim);
    ASSERT_EQ(gold.cols(), m.frames);
    const auto r = MaxAbsNear(as_double(m), golden_transposed(gold, m.frames), kChromaMaxAbs,
                              kGoldenSignals[i] + "/chroma_stft vs librosa", m.dim);
    EXPECT_TRUE(r);
    if (r) std::cout << "  measured " << r.message() << "\n";
    const TrackFeatures ref = FeatureExtractor(o).compute(tracks[i].data(), static_cast<int64_t>(tracks[i].size()));
    EXPECT_TRUE(MaxAbsNear(as_double(m), as_double(ref.frames.at("chroma_stft")), kChromaMaxAbs,
                           kGoldenSignals[i] + "/chroma_stft vs reference", m.dim));
    EXPECT_TRUE(RelativeL2Near(as_double(out[0].frames.at("mfcc")), as_double(ref.frames.at("mfcc")), kRelL2,
                               kGoldenSignals[i] + "/mfcc beside chroma", 20));
  }
}

/// Each track's estimated tuning (out: chroma_stft and stft_mag under options o, features aside):
/// - EXACTLY the reference's estimate_tuning of the engine's own power spectrogram (stft_mag squared in float32,
///   as the engine squares it): the port of piptrack, the median and the histogram is exact whatever the batches
///   and chunks;
/// - the reference engine's tuning on all but max_mismatches tracks: the engine's float32 FFT differs from the
///   reference's float64 one in the last bits, which can move a residual across a 0.01 edge or break a tie of
///   the histogram's argmax when a track has only a few peaks.
void expect_reference_tunings(const std::vector<std::vector<float>>& tracks, const std::vector<TrackFeatures>& out,
                              const std::string& what, int max_mismatches = 0, FeatureOptions o = {}) {
  o.features = {"chroma_stft"};
  const FeatureExtractor reference(o);
  int nonzero = 0, mismatches = 0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    const std::string track = what + ": track " + std::to_string(i) + " (" + std::to_string(tracks[i].size()) + " samples)";
    FeatureMatrix power = out[i].frames.at("stft_mag");
    for (float& v : power.data) v = v * v;
    EXPECT_EQ(out[i].tuning_chroma_stft,
              estimate_tuning(power, o.sample_rate, o.stft.n_fft, o.chroma_stft.n_chroma, o.chroma_stft.tuning_resolution))
        << track << " vs estimate_tuning of the engine's own power";
    const double expected =
        reference.compute(tracks[i].data(), static_cast<int64_t>(tracks[i].size())).tuning_chroma_stft;
    if (out[i].tuning_chroma_stft != expected) {
      ++mismatches;
      std::cout << "  " << track << ": tuning " << out[i].tuning_chroma_stft << ", reference " << expected << "\n";
    }
    nonzero += expected != 0.0;
  }
  EXPECT_LE(mismatches, max_mismatches) << what << ": tunings unlike the reference engine's";
  EXPECT_GT(nonzero, 0) << what << ": every tuning was 0, the comparison proves little";
}

TEST_P(DeviceEngineTest, EstimatedTuningEqualsLibrosaAndTheReferenceAcrossBatchesAndChunks) {
  // librosa's estimate_tuning is a per-track median and histogram: it must not depend on how the engine cuts
  // tracks into batches and chunks, nor on how estimate_tunings streams the candidates (budget x 64 at a time).
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  const std::vector<std::vector<float>> random = random_length_tracks(12, 21, 12 * 22050);
  tracks.insert(tracks.end(), random.begin(), random.end());
  FeatureOptions o;
  o.features = {"chroma_stft", "stft_mag"};
  for (int64_t budget : {0, 1 << 20, 50, 37, 7}) {
    const std::string what = "budget " + std::to_string(budget);
    const std::vector<TrackFeatures> out = run(o, tracks, budget);
    for (size_t i = 0; i < kGoldenSignals.size(); ++i)
      EXPECT_EQ(out[i].tuning_chroma_stft, GoldenFile(kGoldenSignals[i]).attribute("tuning_chroma_stft"))
          << what << ": " << kGoldenSignals[i] << " vs librosa";
    expect_reference_tunings(tracks, out, what);
  }
}

TEST_P(DeviceEngineTest, EstimatedTuningOfManyShortTracksEqualsTheReference) {
  // 600 tracks (over two of estimate_tunings' groups of 256 tracks) of 1 sample to 0.5 s, many in one batch.
  // Tracks this short have few peaks, so a last-bit difference of the FFT can flip a tuning (1 of the 600 here).
  const std::vector<std::vector<float>> tracks = random_length_tracks(600, 5, 11025);
  FeatureOptions o;
  o.features = {"chroma_stft", "stft_mag"};
  expect_reference_tunings(tracks, run(o, tracks, 4000), "600 short tracks", 6);
}

TEST_P(DeviceEngineTest, ChromaStftAtTheEstimatedTuningMatchesLibrosaAndTheReference) {
  // librosa's default chroma_stft (tuning estimated per track) on every golden signal, in one ragged batch whose
  // 50-frame budget chunks every track but the shortest; mfcc beside it, computed in the same main pass.
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  FeatureOptions o;
  o.features = {"chroma_stft", "mfcc"};
  const std::vector<TrackFeatures> out = run(o, tracks, 50);
  const FeatureExtractor reference(o);
  double worst = 0.0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    const GoldenFile g(kGoldenSignals[i]);
    const FeatureMatrix& m = out[i].frames.at("chroma_stft");
    EXPECT_EQ(out[i].tuning_chroma_stft, g.attribute("tuning_chroma_stft")) << kGoldenSignals[i];
    const auto gold = g.dataset("chroma_stft");
    ASSERT_EQ(gold.rows(), m.dim);
    ASSERT_EQ(gold.cols(), m.frames);
    const std::vector<double> gold_t = golden_transposed(gold, m.frames), actual = as_double(m);
    const auto r = MaxAbsNear(actual, gold_t, kChromaMaxAbs, kGoldenSignals[i] + "/chroma_stft vs librosa", m.dim);
    EXPECT_TRUE(r);
    for (size_t k = 0; k < actual.size(); ++k) worst = std::max(worst, std::abs(actual[k] - gold_t[k]));
    const TrackFeatures ref = reference.compute(tracks[i].data(), static_cast<int64_t>(tracks[i].size()));
    EXPECT_EQ(out[i].tuning_chroma_stft, ref.tuning_chroma_stft) << kGoldenSignals[i];
    EXPECT_TRUE(MaxAbsNear(actual, as_double(ref.frames.at("chroma_stft")), kChromaMaxAbs,
                           kGoldenSignals[i] + "/chroma_stft vs reference", m.dim));
    EXPECT_TRUE(RelativeL2Near(as_double(out[i].frames.at("mfcc")), as_double(ref.frames.at("mfcc")), kRelL2,
                               kGoldenSignals[i] + "/mfcc beside chroma", 20));
  }
  std::cout << "  measured: chroma_stft (estimated tuning) vs librosa, worst max abs over the goldens " << worst << "\n";
}

TEST_P(DeviceEngineTest, ChromaStftAtTheEstimatedTuningOfRandomTracksMatchesTheReference) {
  // The estimate under non-default options too: n_chroma 24 (the estimate's bins per octave and the
  // filterbank's), then n_fft 1024 / hop 300 / no centring (another piptrack band) with a 0.05 resolution.
  const std::vector<std::vector<float>> tracks = random_length_tracks(8, 33, 10 * 22050);
  FeatureOptions chroma24;
  chroma24.chroma_stft.n_chroma = 24;
  FeatureOptions small_fft;
  small_fft.stft.n_fft = 1024;
  small_fft.stft.hop_length = 300;
  small_fft.stft.center = false;
  small_fft.chroma_stft.tuning_resolution = 0.05;
  for (FeatureOptions o : {chroma24, small_fft}) {
    o.features = {"chroma_stft", "stft_mag"};
    const std::string config = "n_chroma " + std::to_string(o.chroma_stft.n_chroma) + ", n_fft " +
                               std::to_string(o.stft.n_fft);
    const std::vector<TrackFeatures> out = run(o, tracks, 61);
    expect_reference_tunings(tracks, out, config, 0, o);
    for (size_t i = 0; i < tracks.size(); ++i) {
      const std::string what = config + ", track " + std::to_string(i) + " (" + std::to_string(tracks[i].size()) + " samples)";
      const TrackFeatures ref = FeatureExtractor(o).compute(tracks[i].data(), static_cast<int64_t>(tracks[i].size()));
      EXPECT_TRUE(MaxAbsNear(as_double(out[i].frames.at("chroma_stft")), as_double(ref.frames.at("chroma_stft")),
                             kChromaMaxAbs, what + "/chroma_stft vs reference", o.chroma_stft.n_chroma));
    }
  }
}

TEST_P(DeviceEngineTest, EstimateTuningsEqualsANaiveMedianAndHistogram) {
  // The chain's per-track reduction alone, on candidate sets built to be awkward: empty, one element, even and
  // odd counts, heavy ties at the median, negative and zero magnitudes, bins outside the edges (slot n_hist);
  // streamed 3, 64 and 100000 elements at a time. Expected: np.median, then the first maximal histogram bin.
  const std::vector<double> edges = tuning_histogram_edges(0.01);
  const int32_t n_hist = static_cast<int32_t>(edges.size()) - 1;
  device_engine::ChainConstants c;
  c.n_fft = 2048;
  c.hop_length = 512;
  c.tuning_edges = edges;
  std::unique_ptr<device_engine::Chain> chain = GetParam() == DeviceBackend::kHost
                                                    ? device_engine::make_host_chain(c)
                                                    : device_engine::make_cuda_chain(c, 0);
  std::mt19937 rng(17);
  std::vector<device_engine::TuningCandidates> sets(40);
  for (size_t t = 0; t < sets.size(); ++t) {
    const int64_t m = t < 4 ? static_cast<int64_t>(t) : std::uniform_int_distribution<int64_t>(1, 1500)(rng);
    const int levels = 1 + static_cast<int>(t % 5) * 7;  // few distinct magnitudes: ties everywhere
    std::uniform_int_distribution<int> level(-3, levels), bin(0, t % 3 == 0 ? n_hist : 20);
    for (int64_t k = 0; k < m; ++k) {
      sets[t].mag.push_back(t % 2 ? static_cast<float>(level(rng)) * 0.37f : std::ldexp(1.0f + level(rng), -level(rng) - 4));
      sets[t].bin.push_back(bin(rng));
    }
  }
  std::vector<const device_engine::TuningCandidates*> ptrs;
  for (const auto& set : sets) ptrs.push_back(&set);
  std::vector<double> expected;
  for (const auto& set : sets) {
    std::vector<float> sorted = set.mag;
    std::sort(sorted.begin(), sorted.end());
    const size_t m = sorted.size();
    const float median = m == 0 ? 0.0f : (m % 2 ? sorted[m / 2] : (sorted[m / 2 - 1] + sorted[m / 2]) / 2.0f);
    std::vector<int64_t> hist(static_cast<size_t>(n_hist), 0);
    bool any = false;
    for (size_t k = 0; k < m; ++k) {
      if (!(set.mag[k] >= median)) continue;
      any = true;
      if (set.bin[k] < n_hist) ++hist[static_cast<size_t>(set.bin[k])];
    }
    expected.push_back(any ? edges[static_cast<size_t>(std::max_element(hist.begin(), hist.end()) - hist.begin())] : 0.0);
  }
  for (int64_t chunk : {3, 64, 100000}) {
    const std::vector<double> got = chain->estimate_tunings(ptrs, chunk);
    ASSERT_EQ(got.size(), sets.size());
    for (size_t t = 0; t < sets.size(); ++t)
      EXPECT_EQ(got[t], expected[t]) << "set " << t << " (" << sets[t].mag.size() << " candidates), chunk " << chunk;
  }
}

TEST_P(DeviceEngineTest, NonDefaultOptionsAreHonoured) {
  // Every option of the chain's structs away from its default, against the reference under the same options.
  FeatureOptions o = chain_options();
  o.stft.n_fft = 1024;
  o.stft.hop_length = 300;
  o.stft.center = false;
  o.mel.n_mels = 40;
  o.mel.fmin = 55.0;
  o.mel.fmax = 7000.0;
  o.db.ref = 3.0;
  o.db.amin = 1e-6;
  o.db.top_db = 40.0;
  o.mfcc.n_mfcc = 13;
  o.mfcc.lifter = 22;
  o.features.push_back("chroma_stft");
  o.chroma_stft.n_chroma = 24;
  o.chroma_stft.tuning = -0.17;
  o.spectral_contrast.fmin = 150.0;
  o.spectral_contrast.n_bands = 5;
  o.spectral_contrast.quantile = 0.1;
  const std::vector<std::vector<float>> tracks = {seeded_signal(5 * 22050, 11), seeded_signal(1024, 12),
                                                  seeded_signal(2 * 22050 + 5, 13)};
  const std::vector<TrackFeatures> out = run(o, tracks, 64);
  for (size_t i = 0; i < tracks.size(); ++i) expect_matches_reference(o, tracks[i], out[i], "options track " + std::to_string(i));
  FeatureOptions no_clip = o;
  no_clip.db.top_db = 0.0;
  const std::vector<TrackFeatures> unclipped = run(no_clip, tracks, 64);
  expect_matches_reference(no_clip, tracks[0], unclipped[0], "top_db 0");
}

// ---- the CQT family (cqt_mag, chroma_cqt, tonnetz of chroma_cqt) ----

FeatureOptions cqt_options() {
  FeatureOptions o;
  o.features = {"cqt_mag", "chroma_cqt", "tonnetz"};
  return o;
}

/// actual's features against the reference engine on the same track: chroma and tonnetz by max abs, the others
/// by relative L2 (issue 14's bars); both tunings equal.
void expect_cqt_matches_reference(const FeatureOptions& o, const std::vector<float>& y, const TrackFeatures& actual,
                                  const std::string& what) {
  const TrackFeatures expected = FeatureExtractor(o).compute(y.data(), static_cast<int64_t>(y.size()));
  auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };  // NaN: not computed
  EXPECT_TRUE(same(actual.tuning_cqt, expected.tuning_cqt)) << what << ": " << actual.tuning_cqt << " vs " << expected.tuning_cqt;
  EXPECT_TRUE(same(actual.tuning_chroma_stft, expected.tuning_chroma_stft))
      << what << ": " << actual.tuning_chroma_stft << " vs " << expected.tuning_chroma_stft;
  ASSERT_EQ(actual.frames.size(), expected.frames.size()) << what;
  for (const auto& [name, m] : expected.frames) {
    const FeatureMatrix& a = actual.frames.at(name);
    ASSERT_EQ(a.frames, m.frames) << what << "/" << name;
    ASSERT_EQ(a.dim, m.dim) << what << "/" << name;
    if (name != "chroma_cqt" && name != "chroma_stft" && name != "tonnetz")
      EXPECT_TRUE(RelativeL2Near(as_double(a), as_double(m), kRelL2, what + "/" + name + " vs reference", m.dim));
    else
      EXPECT_TRUE(MaxAbsNear(as_double(a), as_double(m), kChromaMaxAbs, what + "/" + name + " vs reference", m.dim));
  }
}

/// Every matrix of `a` equals `b`'s within kBatchInvariance (relative L2); with chroma_max_abs > 0, chroma_cqt and
/// tonnetz within that max abs instead.
void expect_same_features(const TrackFeatures& a, const TrackFeatures& b, const std::string& what,
                          double chroma_max_abs = 0.0) {
  ASSERT_EQ(a.frames.size(), b.frames.size()) << what;
  EXPECT_EQ(a.tuning_cqt, b.tuning_cqt) << what;
  for (const auto& [name, m] : b.frames) {
    const FeatureMatrix& t = a.frames.at(name);
    ASSERT_EQ(t.frames, m.frames) << what << "/" << name;
    if (chroma_max_abs > 0.0 && (name == "chroma_cqt" || name == "tonnetz"))
      EXPECT_TRUE(MaxAbsNear(as_double(t), as_double(m), chroma_max_abs, what + "/" + name, m.dim));
    else
      EXPECT_TRUE(RelativeL2Near(as_double(t), as_double(m), kBatchInvariance, what + "/" + name, m.dim));
  }
}

/// Early-downsampled CQT, a chunked and batched track against the same track alone: chroma_cqt and tonnetz are
/// normalised per frame, so the GEMM's last bits (which depend on the batch's row count) move them by up to ~1e-5;
/// 1e-4 max abs, ten times inside issue 14's 1e-3 bar. The rest within kBatchInvariance.
constexpr double kEarlyChromaBatchInvariance = 1e-4;

TEST_P(DeviceEngineTest, CqtFamilyOfTheGoldenSignalsMatchesLibrosaAndTheReference) {
  // librosa's defaults (the CQT's tuning estimated per track), every golden signal in one ragged batch; a budget of
  // 50 frames cuts every track but the shortest into chunks of the CQT pass, and the estimate's pass too.
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  const FeatureOptions o = cqt_options();
  for (int64_t budget : {int64_t{0}, int64_t{50}}) {
    const std::vector<TrackFeatures> out = run(o, tracks, budget);
    double worst_l2 = 0.0, worst_abs = 0.0;
    for (size_t i = 0; i < tracks.size(); ++i) {
      const std::string what = kGoldenSignals[i] + " (budget " + std::to_string(budget) + ")";
      const GoldenFile g(kGoldenSignals[i]);
      EXPECT_EQ(out[i].tuning_cqt, g.attribute("tuning_cqt")) << what;
      for (const std::string& name : o.features) {
        const FeatureMatrix& m = out[i].frames.at(name);
        const auto gold = g.dataset(name);
        ASSERT_EQ(gold.rows(), m.dim) << what << "/" << name;
        ASSERT_EQ(gold.cols(), m.frames) << what << "/" << name;
        const std::vector<double> want = golden_transposed(gold, m.frames), got = as_double(m);
        if (name == "cqt_mag") {
          const auto r = RelativeL2Near(got, want, kRelL2, what + "/cqt_mag vs librosa", m.dim);
          EXPECT_TRUE(r);
          double num = 0.0, den = 0.0;
          for (size_t k = 0; k < got.size(); ++k) {
            num += (got[k] - want[k]) * (got[k] - want[k]);
            den += want[k] * want[k];
          }
          if (den > 0.0) worst_l2 = std::max(worst_l2, std::sqrt(num / den));
        } else {
          EXPECT_TRUE(MaxAbsNear(got, want, kChromaMaxAbs, what + "/" + name + " vs librosa", m.dim));
          for (size_t k = 0; k < got.size(); ++k) worst_abs = std::max(worst_abs, std::abs(got[k] - want[k]));
        }
      }
      expect_cqt_matches_reference(o, tracks[i], out[i], what);
    }
    std::cout << "  measured (budget " << budget << "): cqt_mag vs librosa worst relative L2 " << worst_l2
              << ", chroma_cqt / tonnetz worst max abs " << worst_abs << "\n";  // docs/cuda.md quotes these
  }
}

TEST_P(DeviceEngineTest, CqtInRaggedChunkedBatchesEqualsEachTrackAloneAndTheReference) {
  // Lengths from 1 sample (a single frame of padding in every octave) past the lowest octave's 65536-sample frames;
  // budgets of 7 and 37 frames cut tracks at awkward places, so every octave reads spans of its signal that start
  // and end inside the track. The same tracks alone (one batch each) are the unchunked computation.
  const std::vector<int64_t> lengths = {1, 700, 2047, 2048, 2049, 22050, 3 * 22050 + 17, 511, 9 * 22050 + 1};
  std::vector<std::vector<float>> tracks;
  for (size_t i = 0; i < lengths.size(); ++i) tracks.push_back(seeded_signal(lengths[i], 300 + static_cast<uint32_t>(i)));
  FeatureOptions o = cqt_options();
  std::vector<TrackFeatures> alone;
  for (const auto& y : tracks) {
    int64_t batches = 0;
    alone.push_back(run(o, {y}, 1 << 20, &batches).at(0));
    EXPECT_EQ(batches, 2) << "one batch of the estimate's pass, one of the CQT pass";
  }
  for (int64_t budget : {7, 37}) {
    int64_t batches = 0;
    const std::vector<TrackFeatures> together = run(o, tracks, budget, &batches);
    int64_t cqt_frames = 0;
    for (const auto& tf : together) cqt_frames += tf.frames.at("cqt_mag").frames;
    EXPECT_GE(batches, (cqt_frames + budget - 1) / budget) << "budget " << budget;
    for (size_t i = 0; i < tracks.size(); ++i) {
      const std::string what = "track " + std::to_string(i) + " (" + std::to_string(lengths[i]) + " samples), budget " +
                               std::to_string(budget);
      EXPECT_EQ(together[i].frames.at("cqt_mag").frames, 1 + lengths[i] / 512) << what;
      expect_same_features(together[i], alone[i], what + " batched vs alone");
      if (budget == 37) expect_cqt_matches_reference(o, tracks[i], together[i], what);
    }
  }
}

TEST_P(DeviceEngineTest, LongCqtTrackInChunksMatchesTheReference) {
  // 100 s (4307 CQT frames) in chunks of 1000 frames beside the STFT family, at a fixed CQT tuning, then the same
  // with the tuning estimated; against the unchunked engine and the reference.
  const std::vector<float> y = seeded_signal(100 * 22050, 9);
  FeatureOptions o = cqt_options();
  o.features.push_back("mfcc");
  for (const std::optional<double> tuning : {std::optional<double>(0.13), std::optional<double>()}) {
    o.cqt.tuning = tuning;
    const std::string what = tuning ? "fixed tuning" : "estimated tuning";
    int64_t batches = 0;
    const TrackFeatures chunked = run(o, {y}, 1000, &batches).at(0);
    EXPECT_GE(batches, 5 + 5) << what;
    const TrackFeatures whole = run(o, {y}, 1 << 20).at(0);
    expect_same_features(chunked, whole, what + ": chunked vs whole");
    expect_cqt_matches_reference(o, y, chunked, what);
  }
}

TEST_P(DeviceEngineTest, CqtSilenceIsZero) {
  const std::vector<float> y(2 * 22050, 0.0f);
  const FeatureOptions o = cqt_options();
  const TrackFeatures tf = run(o, {y, y}, 50).at(1);
  EXPECT_EQ(tf.tuning_cqt, 0.0);
  for (const std::string& name : o.features)
    for (float v : tf.frames.at(name).data) ASSERT_EQ(v, 0.0f) << name;
  expect_cqt_matches_reference(o, y, tf, "silence");
}

TEST_P(DeviceEngineTest, NonDefaultCqtOptionsAreHonoured) {
  // Every CQT and chroma_cqt option away from its default: 80 bins at 12 per octave (a lowest octave of 8
  // filters), a wider filter_scale (2048-point frames), another sparsity, a fixed tuning, 12 chroma with a threshold;
  // then 24 bins per octave with 24 chroma (a fmin whose C is rolled) and an odd STFT for the tuning estimate.
  FeatureOptions a = cqt_options();
  a.cqt.n_bins = 80;
  a.cqt.bins_per_octave = 12;
  a.cqt.filter_scale = 2.0;
  a.cqt.sparsity = 0.05;
  a.cqt.tuning = -0.21;
  a.chroma_cqt.threshold = 0.3;
  FeatureOptions b = cqt_options();
  b.cqt.n_bins = 168;
  b.cqt.bins_per_octave = 24;
  b.cqt.fmin = 40.0;
  b.chroma_cqt.n_chroma = 24;
  b.stft.n_fft = 1024;
  b.stft.hop_length = 300;
  b.chroma_stft.tuning_resolution = 0.05;
  const std::vector<std::vector<float>> tracks = {seeded_signal(5 * 22050, 21), seeded_signal(1024, 22),
                                                  seeded_signal(2 * 22050 + 5, 23)};
  for (const FeatureOptions& o : {a, b}) {
    ASSERT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
    const std::vector<TrackFeatures> out = run(o, tracks, 64);
    for (size_t i = 0; i < tracks.size(); ++i)
      expect_cqt_matches_reference(o, tracks[i], out[i], "bpo " + std::to_string(o.cqt.bins_per_octave) + ", track " +
                                                             std::to_string(i));
  }
}

/// CQT options for which librosa (and the reference) downsample early, with the factor they give at tuning 0.
std::vector<std::pair<FeatureOptions, int>> early_downsampling_options() {
  std::vector<std::pair<FeatureOptions, int>> v;
  FeatureOptions low = cqt_options();  // two octaves from C1: a top octave near 130 Hz
  low.cqt.n_bins = 24;
  low.cqt.bins_per_octave = 12;
  FeatureOptions high = cqt_options();  // a high fmin, three octaves at 36 per octave, a fixed tuning
  high.cqt.fmin = 220.0;
  high.cqt.n_bins = 108;
  high.cqt.tuning = 0.2;
  FeatureOptions mid = cqt_options();  // one octave at 24 per octave, a wider filter
  mid.cqt.fmin = 110.0;
  mid.cqt.n_bins = 24;
  mid.cqt.bins_per_octave = 24;
  mid.cqt.filter_scale = 1.5;
  for (const FeatureOptions& o : {low, high, mid})
    v.emplace_back(o, cqt_octave_plan(o.sample_rate, o.cqt, o.cqt.tuning.value_or(0.0)).early_downsample_factor);
  return v;
}

TEST_P(DeviceEngineTest, EarlyDownsampledCqtMatchesTheReferenceOnTheGoldenSignals) {
  // librosa's __early_downsample, computed on the host with the reference's resampler before the octaves: every
  // golden signal in one ragged batch, whole and in 50-frame chunks, against the reference engine (issue 14's bars),
  // beside mfcc (the STFT pass) so the CQT's estimated tuning comes from the same batch.
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  for (auto [o, factor] : early_downsampling_options()) {
    ASSERT_GT(factor, 1) << "these options were chosen to downsample early";
    ASSERT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
    o.features.push_back("mfcc");
    const std::string label = "fmin " + std::to_string(o.cqt.fmin) + ", " + std::to_string(o.cqt.n_bins) + " bins (factor " +
                              std::to_string(factor) + ")";
    const std::vector<TrackFeatures> whole = run(o, tracks, 1 << 20), chunked = run(o, tracks, 50);
    for (size_t i = 0; i < tracks.size(); ++i) {
      const std::string what = label + ", " + kGoldenSignals[i];
      expect_cqt_matches_reference(o, tracks[i], whole[i], what + " whole");
      expect_cqt_matches_reference(o, tracks[i], chunked[i], what + " in 50-frame chunks");
      expect_same_features(chunked[i], whole[i], what + ": 50-frame chunks vs whole", kEarlyChromaBatchInvariance);
    }
  }
}

TEST_P(DeviceEngineTest, EarlyDownsampledCqtOfRandomLengthsEqualsEachTrackAlone) {
  // Lengths from the factor itself up (the frame counts of the early-downsampled signal differ from 1 + n / 512
  // for some lengths), in ragged batches of 37 frames vs each track alone, and against the reference.
  const auto [o, factor] = early_downsampling_options().at(0);
  std::vector<std::vector<float>> tracks = {seeded_signal(DeviceFeatureEngine::min_track_samples(o), 70)};
  for (int64_t n : {int64_t{511}, int64_t{512} * 7 + 511, int64_t{3 * 22050 + 31}, int64_t{6 * 22050 + 480}})
    tracks.push_back(seeded_signal(n, 71 + static_cast<uint32_t>(n % 97)));
  const std::vector<TrackFeatures> together = run(o, tracks, 37);
  for (size_t i = 0; i < tracks.size(); ++i) {
    const std::string what = "track of " + std::to_string(tracks[i].size()) + " samples (factor " + std::to_string(factor) + ")";
    expect_same_features(together[i], run(o, {tracks[i]}, 1 << 20).at(0), what + ": batched vs alone",
                         kEarlyChromaBatchInvariance);
    expect_cqt_matches_reference(o, tracks[i], together[i], what);
  }
  // Shorter than the factor: librosa and the reference refuse it; so does the engine, naming the track.
  const std::vector<float> tiny(static_cast<size_t>(DeviceFeatureEngine::min_track_samples(o) - 1), 0.1f);
  try {
    run(o, {tracks[1], tiny});
    ADD_FAILURE() << "a track of " << tiny.size() << " samples was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), "track 1") << e.what();
    EXPECT_NE(std::string(e.what()).find("early downsampling"), std::string::npos) << e.what();
  }
}

TEST_P(DeviceEngineTest, TonnetzOfChromaStftMatchesLibrosaAndTheReference) {
  // tonnetz(chroma=chroma_stft(y)) (tonnetz_chroma = stft) on the golden signals in one ragged batch of 50-frame
  // chunks: at the estimated tuning (chroma_stft not requested itself), then at a fixed one beside chroma_stft.
  std::vector<std::vector<float>> tracks;
  for (const auto& s : kGoldenSignals) tracks.push_back(GoldenFile(s).signal());
  FeatureOptions o;
  o.features = {"tonnetz", "mfcc"};
  o.tonnetz_chroma = TonnetzChroma::kStft;
  const std::vector<TrackFeatures> out = run(o, tracks, 50);
  double worst = 0.0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    const GoldenFile g(kGoldenSignals[i]);
    const FeatureMatrix& m = out[i].frames.at("tonnetz");
    EXPECT_EQ(out[i].tuning_chroma_stft, g.attribute("tuning_chroma_stft")) << kGoldenSignals[i];
    const auto gold = g.dataset("tonnetz_chroma_stft");
    ASSERT_EQ(gold.rows(), m.dim);
    ASSERT_EQ(gold.cols(), m.frames);
    const std::vector<double> want = golden_transposed(gold, m.frames), got = as_double(m);
    EXPECT_TRUE(MaxAbsNear(got, want, kChromaMaxAbs, kGoldenSignals[i] + "/tonnetz_chroma_stft vs librosa", m.dim));
    for (size_t k = 0; k < got.size(); ++k) worst = std::max(worst, std::abs(got[k] - want[k]));
    expect_cqt_matches_reference(o, tracks[i], out[i], kGoldenSignals[i] + " tonnetz of chroma_stft");
  }
  std::cout << "  measured: tonnetz of chroma_stft vs librosa, worst max abs over the goldens " << worst << "\n";
  o.features = {"tonnetz", "chroma_stft"};
  o.chroma_stft.tuning = 0.2;
  o.chroma_stft.n_chroma = 24;
  const std::vector<TrackFeatures> fixed = run(o, tracks, 50);
  for (size_t i = 0; i < tracks.size(); ++i)
    expect_cqt_matches_reference(o, tracks[i], fixed[i], kGoldenSignals[i] + " tonnetz of 24-bin chroma_stft at 0.2");
}

TEST_P(DeviceEngineTest, NonFiniteOrEmptyInputIsATypedErrorNamingTheTrack) {
  for (const FeatureOptions& o : {chain_options(), cqt_options()}) {
    DeviceEngineOptions eo;
    eo.backend = GetParam();
    DeviceFeatureEngine engine(o, eo);
    std::vector<float> good = seeded_signal(4000, 3), bad = good, inf = good, empty;
    bad[1234] = std::numeric_limits<float>::quiet_NaN();
    inf[5] = -std::numeric_limits<float>::infinity();
    auto expect_input_error = [&](const std::vector<std::vector<float>>& tracks, const std::string& path,
                                  const std::string& reason_part) {
      std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
      try {
        engine.compute_batch(spans);
        ADD_FAILURE() << "no InputError for " << path;
      } catch (const InputError& e) {
        EXPECT_EQ(e.path(), path);
        EXPECT_NE(e.reason().find(reason_part), std::string::npos) << e.what();
      }
    };
    expect_input_error({good, good, bad}, "track 2", "index 1234");
    expect_input_error({inf, good}, "track 0", "index 5");
    expect_input_error({good, empty}, "track 1", "empty");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DeviceEngineTest, ::testing::Values(DeviceBackend::kHost, DeviceBackend::kCuda),
                         [](const ::testing::TestParamInfo<DeviceBackend>& info) {
                           return std::string(info.param == DeviceBackend::kHost ? "Host" : "Cuda");
                         });

TEST(DeviceEngine, ComputesEveryFeatureOfTheReference) {
  EXPECT_EQ(DeviceFeatureEngine::supported_features(), all_feature_names());
  FeatureOptions o;
  o.features.clear();  // all features
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_feature(o).has_value());
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
  o.features = default_shard_feature_names();
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_feature(o).has_value());
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_feature(chain_options()).has_value());
  // chroma_stft runs at a fixed tuning and at the estimated one (the default).
  o.features = {"chroma_stft"};
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
  EXPECT_NO_THROW(DeviceFeatureEngine engine(o));
  o.chroma_stft.tuning = 0.0;
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
}

TEST(DeviceEngine, HostAndCudaRunTheDeviceEngine) {
  FeatureOptions all;
  all.features.clear();
  EXPECT_EQ(feature_engine_for(Device::kCpu, all), FeatureEngineKind::kReference);
  EXPECT_EQ(feature_engine_for(Device::kHost, all), FeatureEngineKind::kDeviceEngine);
  EXPECT_EQ(feature_engine_for(Device::kCuda, all), FeatureEngineKind::kDeviceEngine);
  FeatureOptions shard;
  shard.features = default_shard_feature_names();
  EXPECT_EQ(feature_engine_for(Device::kCuda, shard), FeatureEngineKind::kDeviceEngine);
  // CQT options that need librosa's early downsampling (refused until it was computed) are accepted.
  FeatureOptions low = all;
  low.cqt.n_bins = 24;
  low.cqt.bins_per_octave = 12;
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(low).has_value());
  EXPECT_EQ(feature_engine_for(Device::kCuda, low), FeatureEngineKind::kDeviceEngine);
  EXPECT_NO_THROW(DeviceFeatureEngine engine(low));
}

/// Constructing the engine throws UsageError mentioning `part`.
void expect_refused(const FeatureOptions& o, const std::string& part) {
  try {
    DeviceFeatureEngine engine(o);
    ADD_FAILURE() << "accepted; expected a UsageError naming " << part;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(DeviceEngine, CqtOptionsAreCheckedAtConstruction) {
  FeatureOptions o;
  o.features = {"cqt_mag", "chroma_cqt", "tonnetz"};
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_feature(o).has_value());
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(o).has_value());
  FeatureOptions stft_tonnetz = o;  // tonnetz of chroma_stft
  stft_tonnetz.tonnetz_chroma = TonnetzChroma::kStft;
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(stft_tonnetz).has_value());
  // two octaves from C1 (a top octave near 130 Hz): librosa downsamples early; computed (EarlyDownsampled* tests)
  FeatureOptions low = o;
  low.cqt.n_bins = 24;
  low.cqt.bins_per_octave = 12;
  EXPECT_FALSE(DeviceFeatureEngine::first_unsupported_option(low).has_value());
  EXPECT_GT(DeviceFeatureEngine::min_track_samples(low), 1);
  EXPECT_EQ(DeviceFeatureEngine::min_track_samples(o), 1);
  // the tonnetz / chroma_cqt n_chroma check happens at setup: 10 does not divide 36 bins per octave
  FeatureOptions ten = o;
  ten.chroma_cqt.n_chroma = 10;
  expect_refused(ten, "n_chroma");
  ten.features = {"tonnetz"};
  expect_refused(ten, "n_chroma");
}

}  // namespace
}  // namespace songlines::features

namespace songlines::features::device_engine {
namespace {

TEST(RowDivider, EqualsIntegerDivisionOnAGridOfRowLengthsAndIndices) {
  // Row lengths the engine uses (n_fft, n_mels, n_mfcc, odd sizes) and awkward ones; indices at every row edge
  // near 0, near 2^31 and 2^32 (where 32-bit tricks fail) and near 2^50.
  std::mt19937_64 rng(5);
  int64_t checked = 0;
  for (int64_t d : {1LL, 2LL, 3LL, 7LL, 12LL, 13LL, 20LL, 40LL, 128LL, 1025LL, 2048LL, 4095LL, 65537LL, 1000003LL}) {
    const RowDivider div(d);
    for (int64_t base : {0LL, (1LL << 31) - 3 * d, (1LL << 32) - 3 * d, (1LL << 50) - 3 * d}) {
      const int64_t start = std::max<int64_t>(0, base - base % d);
      for (int64_t e = start; e < start + 6 * d && e < start + 5000; ++e, ++checked)
        ASSERT_EQ(div(e), e / d) << "e=" << e << " d=" << d;
    }
    std::uniform_int_distribution<int64_t> any(0, (1LL << 52) - 1);
    for (int k = 0; k < 2000; ++k, ++checked) {
      const int64_t e = any(rng);
      ASSERT_EQ(div(e), e / d) << "e=" << e << " d=" << d;
    }
  }
  EXPECT_GT(checked, 30000);
}

}  // namespace
}  // namespace songlines::features::device_engine
