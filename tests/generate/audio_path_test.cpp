// The audio path without a model: mel basis, mel inversion, fast Griffin-Lim and the MR-STFT metric.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "generate/griffin_lim.h"
#include "generate/mel_spectrogram.h"
#include "generate/stft_distance.h"
#include "support/test_support.h"

namespace songlines::generate {
namespace {

torch::Tensor sine(double freq, double seconds, int sr, double amp = 0.5) {
  auto t = torch::arange(static_cast<int64_t>(seconds * sr), torch::kFloat64) / sr;
  return (amp * torch::sin(2 * M_PI * freq * t)).to(torch::kFloat32);
}

TEST(MelBasis, SlaneyTrianglesHaveUnitAreaInMelHz) {
  MelAnalysisOptions o;
  auto w = mel_basis(o);  // [128, 1025]
  ASSERT_EQ(w.size(0), 128);
  ASSERT_EQ(w.size(1), 1025);
  EXPECT_GE(w.min().item<double>(), 0.0);
  // Slaney normalisation: each triangle's integral over Hz is 1 (enorm = 2 / width, triangle area width/2).
  const double df = 22050.0 / 2048;
  auto area = (w.sum(1) * df).to(torch::kFloat64);
  // Narrow low bands are undersampled by the FFT grid; check the wide upper half.
  auto upper = area.narrow(0, 64, 64);
  std::vector<double> got(upper.data_ptr<double>(), upper.data_ptr<double>() + 64);
  EXPECT_TRUE(testing::RelativeL2Near(got, std::vector<double>(64, 1.0), 0.02, "band area"));
}

TEST(MelInverse, RecoversMagnitudeOfASine) {
  MelAnalysisOptions o;
  auto y = sine(1000.0, 1.0, o.sample_rate);
  auto mag = magnitude_stft(y, o.n_fft, o.hop_length);  // [1025, frames]
  auto back = mel_db_to_magnitude(mel_db(y, o), o);
  ASSERT_EQ(back.sizes(), mag.sizes());
  // The energy stays at the sine's bin neighbourhood: spectral centroid within a mel band of 1000 Hz.
  auto freqs = torch::arange(1025, torch::kFloat32) * (22050.0 / 2048);
  const double centroid = ((back.pow(2) * freqs.unsqueeze(1)).sum() / back.pow(2).sum()).item<double>();
  EXPECT_NEAR(centroid, 1000.0, 60.0);
  // Same total energy within 20 % (the mel projection preserves band energy).
  const double e_true = mag.pow(2).sum().item<double>(), e_back = back.pow(2).sum().item<double>();
  EXPECT_NEAR(e_back / e_true, 1.0, 0.2);
}

TEST(StftDistance, ZeroForIdenticalAndGrowsWithNoise) {
  auto y = sine(440.0, 1.0, 22050) + sine(1320.0, 1.0, 22050, 0.2);
  EXPECT_LT(multi_resolution_stft_distance(y, y).total, 1e-6);
  auto gen = at::detail::createCPUGenerator(7);
  auto noise = torch::randn(y.sizes(), gen, torch::kFloat32);
  double previous = 0;
  for (double level : {0.001, 0.01, 0.1, 0.5}) {
    const double d = multi_resolution_stft_distance(y, y + level * noise).total;
    EXPECT_GT(d, previous) << "noise level " << level;
    previous = d;
  }
}

TEST(GriffinLim, ReconstructsASineFromItsTrueMagnitude) {
  const int sr = 22050;
  auto y = sine(440.0, 1.0, sr);
  auto mag = magnitude_stft(y, 2048, 512);
  GriffinLimOptions o;
  o.seed = 3;
  auto yhat = griffin_lim(mag, y.size(0), o);
  ASSERT_EQ(yhat.size(0), y.size(0));
  const double d = multi_resolution_stft_distance(y, yhat).total;
  const double d_noise = multi_resolution_stft_distance(y, torch::zeros_like(y) + 0.01).total;
  std::printf("griffin-lim sine distance %.4f (a constant signal: %.4f)\n", d, d_noise);
  EXPECT_LT(d, 0.5);
  EXPECT_LT(d, 0.2 * d_noise);
  // Same seed, same output.
  EXPECT_TRUE(torch::equal(yhat, griffin_lim(mag, y.size(0), o)));
}

}  // namespace
}  // namespace songlines::generate
