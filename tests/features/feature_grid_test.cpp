// STFT and mel against naive in-test loops over a parameter grid (n_fft, hop, n_mels, fmin/fmax), on seeded
// random input, plus filterbanks against librosa's (tests/data/golden/filters.h5).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "features/chroma_stft.h"
#include "features/mel.h"
#include "features/stft.h"
#include "golden_h5.h"
#include "support/test_support.h"

namespace songlines::features {
namespace {

using songlines::testing::GoldenFile;
using songlines::testing::MaxAbsNear;
using songlines::testing::RelativeL2Near;

std::vector<float> seeded_noise(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.3f);
  std::vector<float> y(static_cast<size_t>(n));
  for (float& v : y) v = d(rng);
  return y;
}

// Direct DFT of the centred, zero-padded, periodic-Hann-windowed frames: |X|, [T, n_fft/2+1].
std::vector<double> naive_stft_magnitude(const std::vector<float>& y, int n_fft, int hop) {
  const int64_t n = static_cast<int64_t>(y.size());
  const int64_t T = 1 + n / hop, K = n_fft / 2 + 1;
  std::vector<double> out(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      double re = 0.0, im = 0.0;
      for (int i = 0; i < n_fft; ++i) {
        const int64_t j = t * hop - n_fft / 2 + i;
        if (j < 0 || j >= n) continue;
        const double w = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n_fft);
        const double ang = -2.0 * std::numbers::pi * static_cast<double>((k * i) % n_fft) / n_fft;
        re += w * y[static_cast<size_t>(j)] * std::cos(ang);
        im += w * y[static_cast<size_t>(j)] * std::sin(ang);
      }
      out[static_cast<size_t>(t * K + k)] = std::hypot(re, im);
    }
  return out;
}

// Slaney mel filterbank straight from the formulas (triangles in Hz between mel-spaced edges, area-normalised).
std::vector<double> naive_mel_basis(int sr, int n_fft, int n_mels, double fmin, double fmax) {
  auto hz_to_mel = [](double f) { return f < 1000.0 ? f * 3.0 / 200.0 : 15.0 + std::log(f / 1000.0) * 27.0 / std::log(6.4); };
  auto mel_to_hz = [](double m) { return m < 15.0 ? m * 200.0 / 3.0 : 1000.0 * std::exp((m - 15.0) * std::log(6.4) / 27.0); };
  const int K = n_fft / 2 + 1;
  std::vector<double> edges(static_cast<size_t>(n_mels + 2));
  for (int j = 0; j < n_mels + 2; ++j)
    edges[j] = mel_to_hz(hz_to_mel(fmin) + (hz_to_mel(fmax) - hz_to_mel(fmin)) * j / (n_mels + 1));
  std::vector<double> W(static_cast<size_t>(n_mels * K), 0.0);
  for (int i = 0; i < n_mels; ++i)
    for (int k = 0; k < K; ++k) {
      const double f = static_cast<double>(k) * sr / n_fft;
      const double up = (f - edges[i]) / (edges[i + 1] - edges[i]);
      const double down = (edges[i + 2] - f) / (edges[i + 2] - edges[i + 1]);
      W[static_cast<size_t>(i * K + k)] = std::max(0.0, std::min(up, down)) * 2.0 / (edges[i + 2] - edges[i]);
    }
  return W;
}

struct GridPoint {
  int n_fft, hop, n_mels;
  double fmin, fmax;
};

class StftMelGrid : public ::testing::TestWithParam<GridPoint> {};

TEST_P(StftMelGrid, MatchesNaiveLoops) {
  const GridPoint p = GetParam();
  const int sr = 22050;
  const std::vector<float> y = seeded_noise(3 * p.n_fft + 77, 1234u + static_cast<uint32_t>(p.n_fft + p.hop));
  StftOptions so;
  so.n_fft = p.n_fft;
  so.hop_length = p.hop;
  StftPlan plan(so);
  FeatureMatrix mag, pow;
  plan.compute(y.data(), static_cast<int64_t>(y.size()), &mag, &pow);
  const int64_t K = p.n_fft / 2 + 1;
  ASSERT_EQ(mag.frames, 1 + static_cast<int64_t>(y.size()) / p.hop);
  ASSERT_EQ(mag.dim, K);
  const std::vector<double> ref_mag = naive_stft_magnitude(y, p.n_fft, p.hop);
  EXPECT_TRUE(RelativeL2Near({mag.data.begin(), mag.data.end()}, ref_mag, 1e-6, "stft magnitude", K));

  MelOptions mo;
  mo.n_mels = p.n_mels;
  mo.fmin = p.fmin;
  mo.fmax = p.fmax;
  const MelFilterbank fb(sr, p.n_fft, mo);
  const std::vector<double> W = naive_mel_basis(sr, p.n_fft, p.n_mels, p.fmin, p.fmax > 0 ? p.fmax : sr / 2.0);
  EXPECT_TRUE(RelativeL2Near({fb.dense().begin(), fb.dense().end()}, W, 1e-6, "mel basis", K));

  // mel[t, i] = sum_k W[i, k] |X[t, k]|^2
  const FeatureMatrix mel = fb.apply(pow);
  std::vector<double> ref_mel(static_cast<size_t>(mel.frames * p.n_mels), 0.0);
  for (int64_t t = 0; t < mel.frames; ++t)
    for (int i = 0; i < p.n_mels; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const double m = ref_mag[static_cast<size_t>(t * K + k)];
        ref_mel[static_cast<size_t>(t * p.n_mels + i)] += W[static_cast<size_t>(i * K + k)] * m * m;
      }
  EXPECT_TRUE(RelativeL2Near({mel.data.begin(), mel.data.end()}, ref_mel, 1e-5, "melspectrogram", p.n_mels));
}

INSTANTIATE_TEST_SUITE_P(Grid, StftMelGrid,
                         ::testing::Values(GridPoint{512, 128, 40, 0.0, 0.0}, GridPoint{1024, 256, 64, 30.0, 8000.0},
                                           GridPoint{2048, 512, 128, 0.0, 0.0}, GridPoint{256, 100, 20, 100.0, 5000.0},
                                           GridPoint{1000, 333, 50, 0.0, 11025.0}));

TEST(Filterbanks, HannMatchesScipyPeriodicHann) {
  const GoldenFile f("filters");
  const std::vector<double> w = periodic_hann(2048);
  EXPECT_TRUE(MaxAbsNear(w, f.dataset("hann_2048_periodic").data, 1e-15, "hann_2048_periodic"));
}

TEST(Filterbanks, MelBasisMatchesLibrosa) {
  const GoldenFile f("filters");
  const MelFilterbank fb(22050, 2048, MelOptions{});
  const auto& W = fb.dense();
  EXPECT_TRUE(RelativeL2Near({W.begin(), W.end()}, f.dataset("mel_basis").data, 1e-7, "mel_basis [128, 1025]", 1025));
  const std::vector<double> edges = mel_frequencies(130, 0.0, 11025.0);
  EXPECT_TRUE(RelativeL2Near(edges, f.dataset("mel_center_freqs_130").data, 1e-12, "mel_frequencies(130)"));
}

TEST(Filterbanks, ChromaFilterbankAtTuningZeroMatchesLibrosa) {
  const GoldenFile f("filters");
  const ChromaFilterbank fb(22050, 2048, 12, 0.0);
  const auto& W = fb.dense();
  EXPECT_TRUE(MaxAbsNear({W.begin(), W.end()}, f.dataset("chroma_fb_tuning0").data, 1e-7, "chroma_fb [12, 1025]", 1025));
}

}  // namespace
}  // namespace songlines::features
