// The speed rewrites of spectral_contrast (q-smallest / q-largest selection by column extremes and rank placement
// instead of sorting each band) and chroma_stft (bin-major accumulation) must give bit-identical results to the straightforward
// algorithms they replaced; seeded random spectra with many ties exercise the selection's edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "features/chroma_stft.h"
#include "features/mel.h"
#include "features/spectral_contrast.h"

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
    const FeatureMatrix S = random_spectrum(150, 1000, 99u + static_cast<uint32_t>(n_chroma));
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

}  // namespace
}  // namespace songlines::features
