// librosa 0.11 filters.py: chroma; feature/spectral.py: chroma_stft; util/utils.py: normalize.
#include "features/chroma_stft.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "features/tuning.h"

namespace songlines::features {

namespace {
constexpr double kCtrOct = 5.0;    // filters.chroma ctroct: centre of the octave weighting, octaves above A0/16
constexpr double kOctWidth = 2.0;  // filters.chroma octwidth: Gaussian sd in octaves

// numpy.remainder (npy_divmod): result takes the divisor's sign.
double py_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0.0 && ((b < 0.0) != (m < 0.0))) m += b;
  return m;
}
}  // namespace

ChromaFilterbank::ChromaFilterbank(int sample_rate, int n_fft, int n_chroma, double tuning)
    : n_chroma_(n_chroma), n_bins_(n_fft / 2 + 1) {
  if (n_chroma < 1) throw UsageError("chroma_stft.n_chroma: must be >= 1, got " + std::to_string(n_chroma));
  const int N = n_fft;
  // frequencies = linspace(0, sr, n_fft, endpoint=False)[1:] -> k * (sr / n_fft), k = 1..n_fft-1.
  const double step = static_cast<double>(sample_rate) / N;
  const double a440 = 440.0 * std::pow(2.0, tuning / n_chroma);
  std::vector<double> fb(static_cast<size_t>(N));  // frqbins, with the DC entry prepended
  for (int k = 1; k < N; ++k) fb[k] = n_chroma * std::log2((k * step) / (a440 / 16.0));
  fb[0] = fb[1] - 1.5 * n_chroma;
  std::vector<double> bw(static_cast<size_t>(N));  // binwidthbins
  for (int k = 0; k + 1 < N; ++k) bw[k] = std::max(fb[k + 1] - fb[k], 1.0);
  bw[N - 1] = 1.0;
  const double half = std::nearbyint(n_chroma / 2.0);
  std::vector<double> W(static_cast<size_t>(n_chroma) * N);  // [n_chroma, N] float64
  for (int c = 0; c < n_chroma; ++c)
    for (int k = 0; k < N; ++k) {
      double D = fb[k] - c;
      D = py_mod(D + half + 10.0 * n_chroma, n_chroma) - half;
      const double z = 2.0 * D / bw[k];
      W[static_cast<size_t>(c) * N + k] = std::exp(-0.5 * z * z);
    }
  // util.normalize(norm=2, axis=0): each column over chroma, float64 tiny threshold.
  for (int k = 0; k < N; ++k) {
    double ss = 0.0;
    for (int c = 0; c < n_chroma; ++c) ss += W[static_cast<size_t>(c) * N + k] * W[static_cast<size_t>(c) * N + k];
    double len = std::sqrt(ss);
    if (len < std::numeric_limits<double>::min()) len = 1.0;
    const double octw = std::exp(-0.5 * std::pow((fb[k] / n_chroma - kCtrOct) / kOctWidth, 2.0));
    for (int c = 0; c < n_chroma; ++c) {
      double& w = W[static_cast<size_t>(c) * N + k];
      w = (w / len) * octw;
    }
  }
  // base_c: roll by -3 * (n_chroma // 12) along chroma so that row 0 is C; keep bins 0..n_fft/2; float32.
  const int shift = 3 * (n_chroma / 12);
  weights_.assign(static_cast<size_t>(n_chroma) * n_bins_, 0.0f);
  for (int c = 0; c < n_chroma; ++c) {
    const int src = (c + shift) % n_chroma;
    for (int k = 0; k < n_bins_; ++k)
      weights_[static_cast<size_t>(c) * n_bins_ + k] = static_cast<float>(W[static_cast<size_t>(src) * N + k]);
  }
  weights_by_bin_.resize(weights_.size());
  for (int c = 0; c < n_chroma; ++c)
    for (int k = 0; k < n_bins_; ++k)
      weights_by_bin_[static_cast<size_t>(k) * n_chroma + c] = weights_[static_cast<size_t>(c) * n_bins_ + k];
}

namespace {
// raw[c] = sum_k W[k, c] s[k] for one frame, bin-major weights [n_bins, C]. Bin-outer, chroma-inner: every
// chroma's float32 sum still runs over k in ascending order (the same result as a row-by-row dot product),
// but the C independent sums of one bin form a vectorisable inner loop instead of C serial dependency chains.
// kC > 0 fixes the chroma count at compile time (librosa's 12), so the accumulators live in SIMD registers.
template <int kC>
void chroma_frame(const float* w_by_bin, const float* s, int n_bins, int n_chroma, float* raw) {
  const int C = kC > 0 ? kC : n_chroma;
  float acc[kC > 0 ? kC : 1];
  float* a = kC > 0 ? acc : raw;
  for (int c = 0; c < C; ++c) a[c] = 0.0f;
  for (int k = 0; k < n_bins; ++k) {
    const float sk = s[k];
    const float* w = w_by_bin + static_cast<size_t>(k) * C;
    for (int c = 0; c < C; ++c) a[c] += w[c] * sk;
  }
  if (kC > 0)
    for (int c = 0; c < C; ++c) raw[c] = a[c];
}
}  // namespace

FeatureMatrix ChromaFilterbank::apply(const FeatureMatrix& S) const {
  if (S.dim != n_bins_)
    throw Error("ChromaFilterbank::apply: spectrum has " + std::to_string(S.dim) + " bins, filterbank " +
                std::to_string(n_bins_));
  FeatureMatrix out(S.frames, n_chroma_);  // [T, n_chroma]
  apply_rows(S.data.data(), S.frames, out.data.data());
  return out;
}

void ChromaFilterbank::apply_rows(const float* S, int64_t rows, float* out) const {
  const float tiny = std::numeric_limits<float>::min();
  const int C = n_chroma_;
  constexpr int kLibrosaChroma = 12;
  for (int64_t t = 0; t < rows; ++t) {
    float* o = out + t * C;
    const float* s = S + t * n_bins_;
    // float32 accumulation, as librosa's einsum/sgemm
    if (C == kLibrosaChroma) chroma_frame<kLibrosaChroma>(weights_by_bin_.data(), s, n_bins_, C, o);
    else chroma_frame<0>(weights_by_bin_.data(), s, n_bins_, C, o);
    float mx = 0.0f;
    for (int c = 0; c < C; ++c) mx = std::max(mx, std::abs(o[c]));
    if (mx < tiny) continue;  // util.normalize: small columns keep their values
    for (int c = 0; c < C; ++c) o[c] /= mx;
  }
}

FeatureMatrix chroma_stft_from_power(const FeatureMatrix& S, int sample_rate, int n_fft,
                                     const ChromaStftOptions& opt, double* tuning_out) {
  const double tuning = opt.tuning.has_value()
                            ? *opt.tuning
                            : estimate_tuning(S, sample_rate, n_fft, opt.n_chroma, opt.tuning_resolution);
  if (tuning_out) *tuning_out = tuning;
  return ChromaFilterbank(sample_rate, n_fft, opt.n_chroma, tuning).apply(S);
}

}  // namespace songlines::features
