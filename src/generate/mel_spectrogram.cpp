#include "generate/mel_spectrogram.h"

#include <cmath>
#include <vector>

#include "models/torch_compat.h"

namespace songlines::generate {

Json MelAnalysisOptions::to_json() const { return fields_to_json(*this); }

MelAnalysisOptions MelAnalysisOptions::from_json(const Json& j, const std::string& path) {
  return fields_from_json<MelAnalysisOptions>(j, path);
}

void MelAnalysisOptions::validate(const std::string& path) const {
  if (sample_rate <= 0 || n_fft <= 0 || hop_length <= 0 || n_mels <= 0)
    throw ConfigError(path + ": sample_rate, n_fft, hop_length and n_mels must be positive");
}

namespace {
// Slaney mel scale (librosa/core/convert.py: hz_to_mel / mel_to_hz with htk=False).
constexpr double kFSp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kFSp;
const double kLogStep = std::log(6.4) / 27.0;
double hz_to_mel(double f) { return f < kMinLogHz ? f / kFSp : kMinLogMel + std::log(f / kMinLogHz) / kLogStep; }
double mel_to_hz(double m) { return m < kMinLogMel ? m * kFSp : kMinLogHz * std::exp(kLogStep * (m - kMinLogMel)); }
}  // namespace

torch::Tensor mel_basis(const MelAnalysisOptions& o) {
  const double fmax = o.fmax > 0 ? o.fmax : o.sample_rate / 2.0;
  const int64_t nb = o.n_bins();
  std::vector<double> fft_f(nb), mel_f(o.n_mels + 2);
  for (int64_t k = 0; k < nb; ++k) fft_f[k] = static_cast<double>(k) * o.sample_rate / o.n_fft;
  const double m0 = hz_to_mel(o.fmin), m1 = hz_to_mel(fmax);
  for (int i = 0; i < o.n_mels + 2; ++i) mel_f[i] = mel_to_hz(m0 + (m1 - m0) * i / (o.n_mels + 1));
  auto w = torch::zeros({o.n_mels, nb}, torch::kFloat64);
  auto a = w.accessor<double, 2>();
  for (int i = 0; i < o.n_mels; ++i) {
    const double lo = mel_f[i], mid = mel_f[i + 1], hi = mel_f[i + 2];
    const double enorm = 2.0 / (hi - lo);  // Slaney: constant energy per band
    for (int64_t k = 0; k < nb; ++k) {
      const double lower = (fft_f[k] - lo) / (mid - lo);
      const double upper = (hi - fft_f[k]) / (hi - mid);
      a[i][k] = std::max(0.0, std::min(lower, upper)) * enorm;
    }
  }
  return w.to(torch::kFloat32);
}

torch::Tensor magnitude_stft(const torch::Tensor& y, int64_t n_fft, int64_t hop) {
  auto window = torch::hann_window(n_fft, torch::TensorOptions().dtype(torch::kFloat32).device(y.device()));
  return torch_compat::stft_complex(y.to(torch::kFloat32), n_fft, hop, window, /*center=*/true).abs();
}

torch::Tensor mel_db(const torch::Tensor& y, const MelAnalysisOptions& o) {
  auto power = magnitude_stft(y, o.n_fft, o.hop_length).pow(2);      // [n_bins, frames]
  auto mel = torch::matmul(mel_basis(o).to(y.device()), power);       // [n_mels, frames]
  auto db = 10.0 * torch::log10(torch::clamp_min(mel, o.amin));       // ref = 1
  if (o.top_db > 0) db = torch::clamp_min(db, db.max().item<double>() - o.top_db);
  return db.t().contiguous();                                         // [frames, n_mels]
}

torch::Tensor mel_db_to_magnitude(const torch::Tensor& mel_db_in, const MelAnalysisOptions& o, int nnls_iterations) {
  TORCH_CHECK(mel_db_in.dim() == 2 && mel_db_in.size(1) == o.n_mels, "mel_db_to_magnitude: expected [frames, ",
              o.n_mels, "], got ", mel_db_in.sizes());
  auto w = mel_basis(o).to(mel_db_in.device());                       // [n_mels, n_bins]
  auto m = torch::pow(10.0, mel_db_in.t().to(torch::kFloat32) / 10.0);  // [n_mels, frames] power
  auto pinv = torch::linalg_pinv(w);                                  // [n_bins, n_mels]
  // Bins with no filter weight get a tiny value, not zero, so multiplicative updates can move them.
  auto s = torch::clamp_min(torch::matmul(pinv, m), 1e-12);
  auto wtm = torch::matmul(w.t(), m);
  auto wtw = torch::matmul(w.t(), w);
  for (int it = 0; it < nnls_iterations; ++it) s = s * wtm / (torch::matmul(wtw, s) + 1e-20);
  return torch::sqrt(s);
}

}  // namespace songlines::generate
