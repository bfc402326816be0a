// librosa 0.11 filters.py: mel; core/convert.py: hz_to_mel/mel_to_hz (htk=False); core/spectrum.py: power_to_db;
// feature/spectral.py: mfcc.
#include "features/mel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "core/error.h"

namespace songlines::features {

namespace {
// Slaney scale constants (librosa core/convert.py).
constexpr double kFSp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kFSp;  // 15
const double kLogStep = std::log(6.4) / 27.0;

// numpy.linspace(start, stop, num) element k (endpoint=True): k * step + start, last element = stop.
double linspace_at(double start, double stop, int num, int k) {
  if (num == 1) return start;
  if (k == num - 1) return stop;
  const double step = (stop - start) / (num - 1);
  return k * step + start;
}
}  // namespace

double hz_to_mel_slaney(double hz) {
  if (hz >= kMinLogHz) return kMinLogMel + std::log(hz / kMinLogHz) / kLogStep;
  return (hz - 0.0) / kFSp;
}

double mel_to_hz_slaney(double mel) {
  if (mel >= kMinLogMel) return kMinLogHz * std::exp(kLogStep * (mel - kMinLogMel));
  return 0.0 + kFSp * mel;
}

std::vector<double> mel_frequencies(int n, double fmin, double fmax) {
  const double lo = hz_to_mel_slaney(fmin), hi = hz_to_mel_slaney(fmax);
  std::vector<double> f(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) f[static_cast<size_t>(k)] = mel_to_hz_slaney(linspace_at(lo, hi, n, k));
  return f;
}

MelFilterbank::MelFilterbank(int sample_rate, int n_fft, const MelOptions& opt)
    : n_mels_(opt.n_mels), n_bins_(n_fft / 2 + 1) {
  const double fmax = opt.fmax > 0.0 ? opt.fmax : sample_rate / 2.0;
  if (opt.n_mels < 1) throw UsageError("mel.n_mels: must be >= 1, got " + std::to_string(opt.n_mels));
  if (!(opt.fmin >= 0.0 && opt.fmin < fmax))
    throw UsageError("mel.fmin: must be in [0, fmax), got " + std::to_string(opt.fmin));
  const std::vector<double> mel_f = mel_frequencies(n_mels_ + 2, opt.fmin, fmax);
  // fft_frequencies = np.fft.rfftfreq(n_fft, 1/sr): k * (1 / (n_fft * (1/sr))).
  const double val = 1.0 / (n_fft * (1.0 / sample_rate));
  weights_.assign(static_cast<size_t>(n_mels_) * n_bins_, 0.0f);
  begin_.assign(static_cast<size_t>(n_mels_), 0);
  end_.assign(static_cast<size_t>(n_mels_), 0);
  for (int i = 0; i < n_mels_; ++i) {
    const double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
    // Slaney area normalisation, applied to the float32 weights in float64 (weights *= enorm).
    const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
    int b = n_bins_, e = 0;
    for (int k = 0; k < n_bins_; ++k) {
      const double fk = k * val;
      const double lower = -(mel_f[i] - fk) / fd0;
      const double upper = (mel_f[i + 2] - fk) / fd1;
      const float w = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      const float wn = static_cast<float>(static_cast<double>(w) * enorm);
      weights_[static_cast<size_t>(i) * n_bins_ + k] = wn;
      if (wn != 0.0f) {
        b = std::min(b, k);
        e = k + 1;
      }
    }
    begin_[i] = std::min(b, e);
    end_[i] = e;
  }
}

FeatureMatrix MelFilterbank::apply(const FeatureMatrix& S) const {
  if (S.dim != n_bins_)
    throw Error("MelFilterbank::apply: spectrum has " + std::to_string(S.dim) + " bins, filterbank " +
                std::to_string(n_bins_));
  FeatureMatrix out(S.frames, n_mels_);
  apply_rows(S.data.data(), S.frames, out.data.data());
  return out;
}

void MelFilterbank::apply_rows(const float* S, int64_t rows, float* out) const {
  // Four frames at a time: each output is still one float32 sum over its band in ascending k (the same value as
  // the one-frame loop below), but the four sums are independent chains, so the adds overlap instead of waiting
  // on each other's latency.
  constexpr int64_t kFrames = 4;
  int64_t t = 0;
  for (; t + kFrames <= rows; t += kFrames) {
    const float* s0 = S + t * n_bins_;
    const float* s1 = s0 + n_bins_;
    const float* s2 = s1 + n_bins_;
    const float* s3 = s2 + n_bins_;
    float* o = out + t * n_mels_;
    for (int i = 0; i < n_mels_; ++i) {
      const float* w = weights_.data() + static_cast<size_t>(i) * n_bins_;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
      for (int k = begin_[i]; k < end_[i]; ++k) {
        const float wk = w[k];
        a0 += wk * s0[k];
        a1 += wk * s1[k];
        a2 += wk * s2[k];
        a3 += wk * s3[k];
      }
      o[i] = a0;
      o[n_mels_ + i] = a1;
      o[2 * n_mels_ + i] = a2;
      o[3 * n_mels_ + i] = a3;
    }
  }
  for (; t < rows; ++t) {
    const float* s = S + t * n_bins_;
    float* o = out + t * n_mels_;
    for (int i = 0; i < n_mels_; ++i) {
      const float* w = weights_.data() + static_cast<size_t>(i) * n_bins_;
      float acc = 0.0f;  // float32 accumulation, as librosa's einsum (sgemm)
      for (int k = begin_[i]; k < end_[i]; ++k) acc += w[k] * s[k];
      o[i] = acc;
    }
  }
}

FeatureMatrix power_to_db(const FeatureMatrix& S, const DbOptions& opt) {
  FeatureMatrix out(S.frames, S.dim);
  const auto count = static_cast<int64_t>(S.data.size());
  const float mx = db_unclipped(S.data.data(), count, opt, out.data.data());
  clip_db(out.data.data(), count, mx, opt);
  return out;
}

float db_unclipped(const float* S, int64_t count, const DbOptions& opt, float* out) {
  const float amin = static_cast<float>(opt.amin);
  // log_spec = 10 log10(max(amin, S)) - 10 log10(max(amin, |ref|)), float32 array arithmetic.
  const double ref_db = 10.0 * std::log10(std::max(opt.amin, std::abs(opt.ref)));
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < count; ++i) {
    float v = 10.0f * std::log10(std::max(amin, S[i]));
    v = static_cast<float>(v - ref_db);
    out[i] = v;
    mx = std::max(mx, v);
  }
  return mx;
}

void clip_db(float* x, int64_t count, float max_db, const DbOptions& opt) {
  if (!(opt.top_db > 0.0) || count == 0) return;
  const float floor_db = static_cast<float>(max_db - opt.top_db);
  for (int64_t i = 0; i < count; ++i) x[i] = std::max(x[i], floor_db);
}

void power_to_db_inplace(std::vector<double>& x, const DbOptions& opt) {
  const double ref_db = 10.0 * std::log10(std::max(opt.amin, std::abs(opt.ref)));
  double mx = -std::numeric_limits<double>::infinity();
  for (double& v : x) {
    v = 10.0 * std::log10(std::max(opt.amin, v)) - ref_db;
    mx = std::max(mx, v);
  }
  if (opt.top_db > 0.0 && !x.empty())
    for (double& v : x) v = std::max(v, mx - opt.top_db);
}

MfccTransform::MfccTransform(int n_mels, const MfccOptions& opt) : n_mels_(n_mels), n_mfcc_(opt.n_mfcc) {
  if (opt.n_mfcc < 1 || opt.n_mfcc > n_mels)
    throw UsageError("mfcc.n_mfcc: must be in [1, n_mels=" + std::to_string(n_mels) + "], got " +
                     std::to_string(opt.n_mfcc));
  if (opt.lifter < 0) throw UsageError("mfcc.lifter: must be >= 0, got " + std::to_string(opt.lifter));
  basis_.assign(static_cast<size_t>(n_mfcc_) * n_mels_, 0.0);
  // scipy.fft.dct(type=2, norm="ortho"): M_k = sqrt(2/N) c_k sum_n x_n cos(pi k (2n+1) / (2N)), c_0 = 1/sqrt(2).
  for (int k = 0; k < n_mfcc_; ++k) {
    double scale = std::sqrt(2.0 / n_mels) * (k == 0 ? 1.0 / std::sqrt(2.0) : 1.0);
    if (opt.lifter > 0) scale *= 1.0 + (opt.lifter / 2.0) * std::sin(std::numbers::pi * (k + 1) / opt.lifter);
    for (int n = 0; n < n_mels; ++n)
      basis_[static_cast<size_t>(k) * n_mels + n] =
          scale * std::cos(std::numbers::pi * k * (2.0 * n + 1.0) / (2.0 * n_mels));
  }
  basis_t_.resize(basis_.size());
  for (int k = 0; k < n_mfcc_; ++k)
    for (int n = 0; n < n_mels; ++n)
      basis_t_[static_cast<size_t>(n) * n_mfcc_ + k] = basis_[static_cast<size_t>(k) * n_mels + n];
}

FeatureMatrix MfccTransform::apply(const FeatureMatrix& mel_db) const {
  if (mel_db.dim != n_mels_)
    throw Error("MfccTransform::apply: input has " + std::to_string(mel_db.dim) + " bands, expected " +
                std::to_string(n_mels_));
  FeatureMatrix out(mel_db.frames, n_mfcc_);
  // Coefficient k = sum over n in ascending order of basis[k][n] * x[n] (float64); the coefficients are
  // accumulated side by side (the inner loop over k vectorises), each in that same order.
  std::vector<double> acc(static_cast<size_t>(n_mfcc_));
  for (int64_t t = 0; t < mel_db.frames; ++t) {
    const float* x = mel_db.row(t);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int n = 0; n < n_mels_; ++n) {
      const double xn = x[n];
      const double* b = basis_t_.data() + static_cast<size_t>(n) * n_mfcc_;
      for (int k = 0; k < n_mfcc_; ++k) acc[static_cast<size_t>(k)] += b[k] * xn;
    }
    float* o = out.row(t);
    for (int k = 0; k < n_mfcc_; ++k) o[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
  }
  return out;
}

}  // namespace songlines::features
