// The speed rewrites of spectral_contrast (q-smallest / q-largest selection by column extremes and rank placement
// instead of sorting each band) and chroma_stft (bin-major accumulation) must give bit-identical results to the straightforward
// algorithms they replaced; seeded random spectra with many ties exercise the selection's edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "features/chroma_stft.h"
#include "features/feature_extractor.h"
#include "features/mel.h"
#include "features/spectral_contrast.h"
#include "features/tuning.h"

namespace songlines::features {
namespace {

constexpr int kSampleRate = 22050;
constexpr int kNfft = 2048;
constexpr int kBins = kNfft / 2 + 1;

/// [frames, 1025] spectrum of integer multiples of 0.01 drawn from [0, levels]: few levels -> many ties.
FeatureMatrix random_spectrum(int64_t frames, int levels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, levels);
  FeatureMatrix S(frames, kBins);
  for (float& v : S.data) v = static_cast<float>(u(rng)) * 0.01f;
  return S;
}

/// librosa spectral_contrast with a full sort of every band (the reference the selection must reproduce).
FeatureMatrix contrast_by_sorting(const FeatureMatrix& S, const SpectralContrastOptions& opt) {
  const ContrastBands bands = spectral_contrast_bands(kSampleRate, kNfft, opt);
  const int nb = static_cast<int>(bands.q.size());
  std::vector<double> peak(static_cast<size_t>(S.frames * nb)), valley(peak.size());
  for (int64_t t = 0; t < S.frames; ++t)
    for (int k = 0; k < nb; ++k) {
      std::vector<float> band(S.row(t) + bands.begin[k], S.row(t) + bands.end[k]);
      std::sort(band.begin(), band.end());
      const int q = bands.q[k], n = static_cast<int>(band.size());
      float vs = 0.0f, ps = 0.0f;
      for (int i = 0; i < q; ++i) vs += band[i];
      for (int i = n - q; i < n; ++i) ps += band[i];
      valley[static_cast<size_t>(t * nb + k)] = vs / static_cast<float>(q);
      peak[static_cast<size_t>(t * nb + k)] = ps / static_cast<float>(q);
    }
  power_to_db_inplace(peak, DbOptions{});
  power_to_db_inplace(valley, DbOptions{});
  FeatureMatrix out(S.frames, nb);
  for (size_t i = 0; i < out.data.size(); ++i) out.data[i] = static_cast<float>(peak[i] - valley[i]);
  return out;
}

void expect_bitwise_equal(const FeatureMatrix& got, const FeatureMatrix& want, const char* what) {
  ASSERT_EQ(got.frames, want.frames);
  ASSERT_EQ(got.dim, want.dim);
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < got.data.size(); ++i)
    if (got.data[i] != want.data[i] && mismatches++ == 0) first = i;
  EXPECT_EQ(mismatches, 0u) << what << ": first mismatch at [" << first / got.dim << ", " << first % got.dim
                            << "]: " << got.data[first] << " vs " << want.data[first];
}

TEST(FastPaths, SpectralContrastSelectionEqualsFullSort) {
  for (int levels : {0, 3, 50, 100000}) {  // all equal, heavy ties .. nearly distinct
    FeatureMatrix S = random_spectrum(200, levels, 11u + static_cast<uint32_t>(levels));
    if (levels == 100000)  // and a falling slope, as spectra have, on half of the frames
      for (int64_t t = 0; t < S.frames; t += 2)
        for (int64_t k = 0; k < S.dim; ++k) S.at(t, k) *= 1.0f / static_cast<float>(1 + k);
    // 0.02 (librosa's): q 1..9, by rank placement; 0.005: q = 1 everywhere; 0.04: q up to 17, past the 16
    // columns; 0.1, 0.3: the sorted band.
    for (double quantile : {0.005, 0.02, 0.04, 0.1, 0.3}) {
      SpectralContrastOptions opt;
      opt.quantile = quantile;
      expect_bitwise_equal(spectral_contrast_from_magnitude(S, kSampleRate, kNfft, opt), contrast_by_sorting(S, opt),
                           "spectral_contrast");
    }
  }
}

TEST(FastPaths, ChromaBinMajorEqualsRowDotProducts) {
  for (int n_chroma : {12, 24, 7}) {  // the compile-time 12 path and the generic one
    const ChromaFilterbank fb(kSampleRate, kNfft, n_chroma, 0.13);
    const FeatureMatrix S = random_spectrum(151, 1000, 99u + static_cast<uint32_t>(n_chroma));  // pairs + one
    FeatureMatrix want(S.frames, n_chroma);  // raw[t, c] = sum_k W[c, k] S[t, k] in ascending k, then / max
    for (int64_t t = 0; t < S.frames; ++t) {
      float mx = 0.0f;
      for (int c = 0; c < n_chroma; ++c) {
        float acc = 0.0f;
        for (int k = 0; k < kBins; ++k) acc += fb.dense()[static_cast<size_t>(c) * kBins + k] * S.at(t, k);
        want.at(t, c) = acc;
        mx = std::max(mx, std::abs(acc));
      }
      for (int c = 0; c < n_chroma; ++c) want.at(t, c) /= mx;
    }
    expect_bitwise_equal(fb.apply(S), want, "chroma_stft");
  }
}

TEST(FastPaths, MelFourFramesAtATimeEqualsRowDotProducts) {
  const MelFilterbank fb(kSampleRate, kNfft, MelOptions{});
  for (int64_t frames : {1, 4, 150, 203}) {  // the four-frame loop, its remainder, and both
    const FeatureMatrix S = random_spectrum(frames, 1000, 7u + static_cast<uint32_t>(frames));
    FeatureMatrix want(S.frames, fb.n_mels());  // mel[t, i] = sum over all k, ascending, of W[i, k] S[t, k]
    for (int64_t t = 0; t < S.frames; ++t)
      for (int i = 0; i < fb.n_mels(); ++i) {
        float acc = 0.0f;
        for (int k = 0; k < kBins; ++k) acc += fb.dense()[static_cast<size_t>(i) * kBins + k] * S.at(t, k);
        want.at(t, i) = acc;
      }
    expect_bitwise_equal(fb.apply(S), want, "mel");
  }
}

/// piptrack's candidates by a plain bin-by-bin scan (librosa core/pitch.py piptrack, its localmax and
/// _parabolic_interpolation), the reference for the vectorised row max, threshold and peak listing.
PitchPeaks piptrack_by_scan(const FeatureMatrix& S, int sample_rate, int n_fft) {
  const int64_t K = S.dim;
  const PiptrackBand band = piptrack_band(sample_rate, n_fft);
  PitchPeaks peaks;
  for (int64_t t = 0; t < S.frames; ++t) {
    const float* s = S.row(t);
    const float ref = kPiptrackThreshold * *std::max_element(s, s + K);
    std::vector<float> x(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) x[k] = s[k] > ref ? s[k] : 0.0f;
    for (int64_t k = std::max<int64_t>(band.k_lo, 1); k < band.k_hi; ++k) {
      const bool peak = (k + 1 < K) ? (x[k] > x[k - 1] && x[k] >= x[k + 1]) : (x[k] > x[k - 1]);
      if (!peak) continue;
      float shift = 0.0f;
      if (k < K - 1) {
        const double a = static_cast<double>(s[k + 1] + s[k - 1]) - 2.0 * static_cast<double>(s[k]);
        const double b = static_cast<double>(s[k + 1] - s[k - 1]) / 2.0;
        shift = std::abs(b) >= std::abs(a) ? 0.0f : static_cast<float>(-b / a);
      }
      const float avg = k == K - 1 ? s[K - 1] - s[K - 2] : (s[k + 1] - s[k - 1]) / 2.0f;
      const float pitch = static_cast<float>((static_cast<double>(k) + shift) * sample_rate / n_fft);
      if (!(pitch > 0.0f)) continue;
      peaks.pitch.push_back(pitch);
      peaks.mag.push_back(s[k] + (0.5f * avg) * shift);
    }
  }
  return peaks;
}

TEST(FastPaths, PiptrackPeaksEqualTheBinByBinScan) {
  for (int levels : {0, 3, 50, 100000}) {  // flat (no peaks), plateaus (ties), nearly distinct
    const FeatureMatrix S = random_spectrum(97, levels, 40u + static_cast<uint32_t>(levels));
    PitchPeaks got;
    piptrack_peaks(S.data.data(), S.frames, kSampleRate, kNfft, got);
    const PitchPeaks want = piptrack_by_scan(S, kSampleRate, kNfft);
    ASSERT_EQ(got.pitch.size(), want.pitch.size()) << "levels " << levels;
    if (levels == 100000) EXPECT_GT(want.pitch.size(), 1000u) << "the test must see many peaks";
    for (size_t i = 0; i < want.pitch.size(); ++i) {
      ASSERT_EQ(got.pitch[i], want.pitch[i]) << "levels " << levels << ", candidate " << i;
      ASSERT_EQ(got.mag[i], want.mag[i]) << "levels " << levels << ", candidate " << i;
    }
  }
}

TEST(FastPaths, FinitenessCheckFindsEveryNonFiniteSampleAndPassesExtremeFiniteOnes) {
  FeatureOptions o;
  o.features = {"mel_db"};
  const FeatureExtractor fx(o);
  std::vector<float> y(4099, 0.25f);  // 4099: the vector loop and a 3-sample tail
  y[17] = std::numeric_limits<float>::max();
  y[18] = -std::numeric_limits<float>::max();
  y[19] = std::numeric_limits<float>::denorm_min();
  EXPECT_NO_THROW(fx.compute(y.data(), static_cast<int64_t>(y.size())));
  for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()})
    for (size_t at : {size_t{0}, size_t{2050}, size_t{4096}, size_t{4098}}) {
      std::vector<float> z = y;
      z[at] = bad;
      try {
        fx.compute(z.data(), static_cast<int64_t>(z.size()));
        ADD_FAILURE() << bad << " at " << at << " was accepted";
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("at index " + std::to_string(at)), std::string::npos) << e.what();
      }
    }
}

}  // namespace
}  // namespace songlines::features
