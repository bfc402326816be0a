// resample(): librosa.resample(res_type="soxr_hq") semantics (librosa 0.11 core/audio.py: resample) — the length
// rule, accuracy against analytic sines, HQ stop-band rejection, chunking invariance and scale=True.
#include "audio/resample.h"

#include <gtest/gtest.h>
#include <soxr.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <numbers>
#include <random>
#include <vector>

#include "core/error.h"
#include "support/test_support.h"

namespace songlines::audio {
namespace {

using songlines::testing::MaxAbsNear;
using songlines::testing::RelativeL2Near;

constexpr int kTargetRate = 22050;

std::vector<float> sine(double freq, double rate, int64_t n, double amplitude = 0.5) {
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    y[static_cast<size_t>(i)] = static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * freq * i / rate));
  return y;
}

std::vector<double> slice(const std::vector<float>& y, size_t begin, size_t end) {
  return std::vector<double>(y.begin() + static_cast<std::ptrdiff_t>(begin), y.begin() + static_cast<std::ptrdiff_t>(end));
}

double rms(const std::vector<float>& y, size_t begin, size_t end) {
  double s = 0.0;
  for (size_t i = begin; i < end; ++i) s += static_cast<double>(y[i]) * y[i];
  return std::sqrt(s / static_cast<double>(end - begin));
}

std::vector<float> seeded_noise(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.3f);
  std::vector<float> y(static_cast<size_t>(n));
  for (float& v : y) v = dist(rng);
  return y;
}

// Independent integer form of librosa's ceil(n * target / orig) for integer rates.
int64_t ceil_length(int64_t n, int64_t orig, int64_t target) { return (n * target + orig - 1) / orig; }

TEST(Resample, LengthIsCeilOfNTimesRatioForEveryRateAndLength) {
  for (int orig : {8000, 11025, 16000, 44100, 48000, 96000, 192000}) {
    for (int64_t n : {1, 2, 3, 7, 1000, 12345, 44101, 96001}) {
      const auto x = seeded_noise(n, static_cast<unsigned>(orig + n));
      const auto y = resample(x, orig, kTargetRate);
      EXPECT_EQ(static_cast<int64_t>(y.size()), ceil_length(n, orig, kTargetRate)) << "orig " << orig << " n " << n;
      EXPECT_EQ(resampled_length(n, orig, kTargetRate), ceil_length(n, orig, kTargetRate));
    }
  }
}

TEST(Resample, EqualRatesReturnTheInputUntouched) {
  const auto x = seeded_noise(1001, 3);
  EXPECT_EQ(resample(x, 22050, 22050, ResampleScale::kEnergy), x);  // librosa returns y before scaling
}

TEST(Resample, EmptyInputGivesEmptyOutput) {
  EXPECT_TRUE(resample(std::vector<float>{}, 44100, 22050).empty());
}

TEST(Resample, RejectsNonPositiveRates) {
  const std::vector<float> x(10, 0.0f);
  EXPECT_THROW(resample(x, 0, 22050), Error);
  EXPECT_THROW(resample(x, 44100, -1), Error);
}

// A pure tone well inside both passbands comes out as the analytic tone at the new rate: soxr HQ is linear
// phase with its delay removed, so there is no shift to search for. Edges are excluded (filter transients).
struct RatePair {
  int orig;
  int target;
  double freq;
};
class ResampleSine : public ::testing::TestWithParam<RatePair> {};

TEST_P(ResampleSine, MatchesAnalyticSineAwayFromEdges) {
  const auto [orig, target, freq] = GetParam();
  const int64_t n = 2 * orig;  // 2 s
  const auto y = resample(sine(freq, orig, n), orig, target);
  ASSERT_EQ(static_cast<int64_t>(y.size()), ceil_length(n, orig, target));
  const auto expected = sine(freq, target, static_cast<int64_t>(y.size()));
  const size_t edge = static_cast<size_t>(target / 10);  // 0.1 s
  EXPECT_TRUE(RelativeL2Near(slice(y, edge, y.size() - edge), slice(expected, edge, y.size() - edge), 1e-6,
                             "resampled sine"));
}

INSTANTIATE_TEST_SUITE_P(RatePairs, ResampleSine,
                         ::testing::Values(RatePair{44100, 22050, 440.0}, RatePair{48000, 22050, 440.0},
                                           RatePair{8000, 22050, 1000.0}, RatePair{192000, 22050, 3000.0},
                                           RatePair{22050, 11025, 1000.0}, RatePair{16000, 22050, 2500.0}),
                         [](const auto& info) {
                           return std::to_string(info.param.orig) + "_to_" + std::to_string(info.param.target);
                         });

// SOXR_HQ's stop band is 120 dB down; a tone above the new Nyquist must vanish (> 100 dB).
TEST(Resample, SuppressesToneAboveNewNyquistByMoreThan100dB) {
  for (int orig : {44100, 48000, 96000}) {
    const double freq = 15000.0;  // > 11025 Hz, the Nyquist of 22050
    const int64_t n = 2 * orig;
    const auto x = sine(freq, orig, n);
    const auto y = resample(x, orig, kTargetRate);
    const size_t edge = kTargetRate / 10;
    const double ratio_db = 20.0 * std::log10(rms(y, edge, y.size() - edge) / rms(x, 0, x.size()));
    EXPECT_LT(ratio_db, -100.0) << "orig " << orig << ": tone at " << freq << " Hz only " << ratio_db << " dB down";
  }
}

// Our oneshot call must equal soxr fed in arbitrary chunks and flushed (what python-soxr's divide_proc and
// ResampleStream do), so decoding in blocks or in one go cannot change the features.
TEST(Resample, OneshotEqualsChunkedStreaming) {
  const int64_t n = 100003;
  const auto x = seeded_noise(n, 11);
  const auto oneshot = resample(x, 44100, kTargetRate);

  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t err = nullptr;
  soxr_t s = soxr_create(44100, kTargetRate, 1, &err, &io, &q, nullptr);
  ASSERT_EQ(err, nullptr);
  std::vector<float> streamed;
  std::vector<float> buf(8192);
  const int64_t chunk = 4099;  // prime: chunk edges fall everywhere in the filter
  size_t odone = 0;
  for (int64_t i = 0; i < n; i += chunk) {
    ASSERT_EQ(soxr_process(s, x.data() + i, static_cast<size_t>(std::min(chunk, n - i)), nullptr, buf.data(),
                           buf.size(), &odone),
              nullptr);
    streamed.insert(streamed.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(odone));
  }
  do {  // flush: NULL input until soxr has nothing left
    ASSERT_EQ(soxr_process(s, nullptr, 0, nullptr, buf.data(), buf.size(), &odone), nullptr);
    streamed.insert(streamed.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(odone));
  } while (odone > 0);
  soxr_delete(s);
  streamed.resize(oneshot.size(), 0.0f);  // librosa fix_length
  EXPECT_TRUE(MaxAbsNear(slice(oneshot, 0, oneshot.size()), slice(streamed, 0, streamed.size()), 0.0,
                         "oneshot vs chunked"));
}

// StreamingResampler (the decoder's path) gives resample()'s samples bit for bit, whatever the blocks: rates up
// and down, lengths around the filter's size, blocks of one sample, primes, and larger than the input.
TEST(StreamingResampler, EqualsOneShotBitForBitForEveryBlockSize) {
  const std::pair<int, int> rates[] = {{44100, 22050}, {48000, 22050}, {8000, 22050}, {96000, 22050}, {22050, 22050},
                                       {44100, 16000}};
  int checked = 0;
  for (const auto& [orig, target] : rates) {
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{1000}, int64_t{44101}, int64_t{100003}}) {
      const auto x = seeded_noise(n, static_cast<unsigned>(orig + n));
      const auto oneshot = resample(x, orig, target);
      for (int64_t block : {int64_t{1}, int64_t{127}, int64_t{4099}, int64_t{8192}, int64_t{1} << 20}) {
        if (block == 1 && n > 1000) continue;  // one sample per call: slow, and 1000 samples cross the filter
        StreamingResampler r(orig, target);
        std::vector<float> streamed;
        for (int64_t i = 0; i < n; i += block) r.push(x.data() + i, std::min(block, n - i), streamed);
        r.finish(streamed);
        EXPECT_EQ(r.input_length(), n);
        ASSERT_EQ(streamed.size(), oneshot.size()) << orig << "->" << target << " n " << n << " block " << block;
        size_t differ = 0, first = 0;
        for (size_t i = 0; i < streamed.size(); ++i)
          if (std::memcmp(&streamed[i], &oneshot[i], sizeof(float)) != 0 && differ++ == 0) first = i;
        EXPECT_EQ(differ, 0u) << orig << "->" << target << " n " << n << " block " << block << ": first at " << first
                              << " (" << streamed[first] << " vs " << oneshot[first] << ")";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// librosa scale=True: y_hat /= sqrt(target/orig). The CQT decimates octaves with resample(y, 2, 1, kEnergy).
TEST(Resample, EnergyScaleForOctaveDecimation) {
  const int64_t n = 20001;
  const auto x = sine(0.05, 2.0, n);  // 0.05 cycles per input sample: 0.1 per output sample
  const auto plain = resample(x, 2, 1);
  const auto scaled = resample(x, 2, 1, ResampleScale::kEnergy);
  ASSERT_EQ(static_cast<int64_t>(scaled.size()), (n + 1) / 2);
  const auto divisor = static_cast<float>(std::sqrt(0.5));
  std::vector<double> expected_scaled(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) expected_scaled[i] = plain[i] / divisor;
  EXPECT_TRUE(MaxAbsNear(slice(scaled, 0, scaled.size()), expected_scaled, 0.0, "scaled vs plain/sqrt(0.5)"));
  // The decimated tone itself: amplitude 0.5 * sqrt(2), frequency 0.05 Hz at rate 1.
  std::vector<double> analytic(scaled.size());
  for (size_t i = 0; i < analytic.size(); ++i)
    analytic[i] = 0.5 * std::sqrt(2.0) * std::sin(2.0 * std::numbers::pi * 0.05 * static_cast<double>(i));
  const size_t edge = 500;
  EXPECT_TRUE(RelativeL2Near(slice(scaled, edge, scaled.size() - edge),
                             std::vector<double>(analytic.begin() + edge, analytic.end() - edge), 1e-6,
                             "2->1 decimated tone"));
}

}  // namespace
}  // namespace songlines::audio
