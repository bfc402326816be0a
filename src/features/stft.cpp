// STFT magnitude / power (librosa 0.11 core/spectrum.py: stft; feature/spectral.py: _spectrogram).
#include "features/stft.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "core/error.h"
#include "features/fftw_planner.h"

namespace songlines::features {

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

int64_t stft_num_frames(int64_t n, const StftOptions& opt) {
  if (opt.center) return 1 + n / opt.hop_length;
  return n < opt.n_fft ? 0 : 1 + (n - opt.n_fft) / opt.hop_length;
}

std::vector<double> periodic_hann(int n) {
  // scipy.signal.get_window("hann", n, fftbins=True) = general_cosine(n + 1, [0.5, 0.5]) without its last point:
  // w[k] = 0.5 + 0.5 cos(fac_k), fac = linspace(-pi, pi, n + 1) (numpy: k * step + start).
  std::vector<double> w(static_cast<size_t>(n));
  const double step = (std::numbers::pi - (-std::numbers::pi)) / n;
  for (int k = 0; k < n; ++k) w[static_cast<size_t>(k)] = 0.5 + 0.5 * std::cos(k * step + (-std::numbers::pi));
  return w;
}

namespace {

struct FftwDeleter {
  void operator()(void* p) const { fftw_free(p); }
};
template <class T>
using FftwBuffer = std::unique_ptr<T[], FftwDeleter>;

template <class T>
FftwBuffer<T> fftw_buffer(size_t n) {
  auto* p = static_cast<T*>(fftw_malloc(sizeof(T) * n));
  if (p == nullptr) throw Error("fftw_malloc failed for " + std::to_string(n) + " elements");
  return FftwBuffer<T>(p);
}

}  // namespace

struct StftPlan::Impl {
  fftw_plan plan = nullptr;
  std::vector<double> window;  // [n_fft] periodic Hann, float64 as librosa keeps it
};

StftPlan::StftPlan(const StftOptions& opt) : opt_(opt), impl_(std::make_unique<Impl>()) {
  if (opt.n_fft < 2) throw UsageError("stft.n_fft: must be >= 2, got " + std::to_string(opt.n_fft));
  if (opt.hop_length < 1) throw UsageError("stft.hop_length: must be >= 1, got " + std::to_string(opt.hop_length));
  impl_->window = periodic_hann(opt.n_fft);
  const size_t n = static_cast<size_t>(opt.n_fft);
  auto in = fftw_buffer<double>(n);
  auto out = fftw_buffer<fftw_complex>(n / 2 + 1);
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  // Planned once per extractor (kFftwPlannerFlags: reproducible); the per-call buffers are fftw_malloc'd, so
  // their alignment matches.
  impl_->plan = fftw_plan_dft_r2c_1d(opt.n_fft, in.get(), out.get(), kFftwPlannerFlags);
  if (impl_->plan == nullptr) throw Error("FFTW could not plan a real FFT of size " + std::to_string(opt.n_fft));
}

StftPlan::~StftPlan() {
  if (impl_ && impl_->plan) {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftw_destroy_plan(impl_->plan);
  }
}

void StftPlan::compute(const float* y, int64_t n, FeatureMatrix* magnitude, FeatureMatrix* power) const {
  const int64_t n_bins = opt_.n_fft / 2 + 1;
  const int64_t T = stft_num_frames(n, opt_);
  // Every element is written below, so the outputs' allocations are reused without zero-filling (a caller's
  // per-thread scratch matrices then cost no page faults or memset per track).
  auto reshape = [](FeatureMatrix& m, int64_t frames, int64_t dim) {
    m.frames = frames;
    m.dim = dim;
    m.data.resize(static_cast<size_t>(frames * dim));
  };
  if (magnitude) reshape(*magnitude, T, n_bins);
  if (power) reshape(*power, T, n_bins);
  if (T <= 0) return;
  compute_frames(y, n, 0, T, magnitude ? magnitude->data.data() : nullptr, power ? power->data.data() : nullptr);
}

void StftPlan::compute_frames(const float* y, int64_t n, int64_t t0, int64_t t1, float* magnitude,
                              float* power) const {
  const int n_fft = opt_.n_fft;
  const int64_t n_bins = n_fft / 2 + 1;
  if (t0 < 0 || t1 < t0 || t1 > stft_num_frames(n, opt_))
    throw Error("stft: frames [" + std::to_string(t0) + ", " + std::to_string(t1) + ") outside the " +
                std::to_string(stft_num_frames(n, opt_)) + " frames of " + std::to_string(n) + " samples");
  if (t1 == t0) return;
  const int64_t pad = opt_.center ? n_fft / 2 : 0;
  auto in = fftw_buffer<double>(static_cast<size_t>(n_fft));
  auto out = fftw_buffer<fftw_complex>(static_cast<size_t>(n_bins));
  const double* w = impl_->window.data();
  std::vector<float> mag_row(magnitude ? 0 : static_cast<size_t>(n_bins));  // |X| of one frame when not kept
  for (int64_t t = t0; t < t1; ++t) {
    // frame t covers y_padded[t*hop, t*hop + n_fft) = y[t*hop - pad, ...), zeros outside y (pad_mode "constant").
    const int64_t start = t * opt_.hop_length - pad;
    const int64_t lo = std::max<int64_t>(0, -start);
    const int64_t hi = std::min<int64_t>(n_fft, n - start);
    double* x = in.get();
    for (int64_t i = 0; i < lo; ++i) x[i] = 0.0;
    for (int64_t i = lo; i < hi; ++i) x[i] = w[i] * static_cast<double>(y[start + i]);
    for (int64_t i = std::max(lo, hi); i < n_fft; ++i) x[i] = 0.0;
    fftw_execute_dft_r2c(impl_->plan, x, out.get());
    // Two branch-free loops (magnitude, then power from it) so that both vectorise.
    float* mrow = magnitude ? magnitude + (t - t0) * n_bins : mag_row.data();
    const fftw_complex* X = out.get();
    for (int64_t k = 0; k < n_bins; ++k) {
      // librosa stores the float64 FFT as complex64, then np.abs (hypotf) in float32; power = |X|_f32 ** 2 in f32.
      const double re = static_cast<float>(X[k][0]);
      const double im = static_cast<float>(X[k][1]);
      mrow[k] = static_cast<float>(std::sqrt(re * re + im * im));
    }
    if (power) {
      float* prow = power + (t - t0) * n_bins;
      for (int64_t k = 0; k < n_bins; ++k) prow[k] = mrow[k] * mrow[k];
    }
  }
}

FeatureMatrix stft_magnitude(const float* y, int64_t n, const StftOptions& opt) {
  StftPlan plan(opt);
  FeatureMatrix m;
  plan.compute(y, n, &m, nullptr);
  return m;
}

FeatureMatrix stft_power(const float* y, int64_t n, const StftOptions& opt) {
  StftPlan plan(opt);
  FeatureMatrix p;
  plan.compute(y, n, nullptr, &p);
  return p;
}

}  // namespace songlines::features
