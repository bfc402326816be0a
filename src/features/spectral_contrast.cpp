// librosa 0.11 feature/spectral.py: spectral_contrast.
#include "features/spectral_contrast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "features/mel.h"

namespace songlines::features {

namespace {
/// Values tested together by the selection scans (one SSE register of floats).
constexpr int kLanes = 4;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int LaneMask __attribute__((vector_size(kLanes * sizeof(int))));

static_assert(kLanes == 4, "any_lane tests four lanes");
bool any_lane(LaneMask m) { return (m[0] | m[1] | m[2] | m[3]) != 0; }
/// Whether one of x[0..kLanes) is < threshold (> threshold).
bool any_below(const float* x, float threshold) {
  Lanes v;
  std::memcpy(&v, x, sizeof v);
  return any_lane(v < threshold);
}
bool any_above(const float* x, float threshold) {
  Lanes v;
  std::memcpy(&v, x, sizeof v);
  return any_lane(v > threshold);
}
/// The q smallest of x[lo..hi) (q < hi - lo), ascending, in `low`. Spectra mostly fall with frequency, so the
/// q smallest start as the band's last q values, and a pass over the rest inserts the few that displace them;
/// kLanes values are tested against the current threshold at once and looked at one by one only when one
/// passes, in order. Ties need no care: the q smallest form the same multiset whichever copy is kept.
void smallest_by_scan(const float* s, int lo, int hi, int q, std::vector<float>& low) {
  low.assign(s + hi - q, s + hi);
  std::sort(low.begin(), low.end());
  float low_max = low[q - 1];
  auto keep = [&](float v) {
    if (!(v < low_max)) return;
    int j = q - 1;  // insert into the ascending q smallest, dropping the largest of them
    for (; j > 0 && low[j - 1] > v; --j) low[j] = low[j - 1];
    low[j] = v;
    low_max = low[q - 1];
  };
  int i = lo;
  for (; i + kLanes <= hi - q; i += kLanes)
    if (any_below(s + i, low_max))
      for (int l = 0; l < kLanes; ++l) keep(s[i + l]);
  for (; i < hi - q; ++i) keep(s[i]);
}

/// The q largest of x[lo..hi), ascending, in `high`: as smallest_by_scan, starting from the band's first q.
void largest_by_scan(const float* s, int lo, int hi, int q, std::vector<float>& high) {
  high.assign(s + lo, s + lo + q);
  std::sort(high.begin(), high.end());
  float high_min = high[0];
  auto keep = [&](float v) {
    if (!(v > high_min)) return;
    int j = 0;  // insert into the ascending q largest, dropping the smallest of them
    for (; j + 1 < q && high[j + 1] < v; ++j) high[j] = high[j + 1];
    high[j] = v;
    high_min = high[0];
  };
  int i = lo + q;
  for (; i + kLanes <= hi; i += kLanes)
    if (any_above(s + i, high_min))
      for (int l = 0; l < kLanes; ++l) keep(s[i + l]);
  for (; i < hi; ++i) keep(s[i]);
}

}  // namespace

ContrastBands spectral_contrast_bands(int sample_rate, int n_fft, const SpectralContrastOptions& opt) {
  const int K = n_fft / 2 + 1;
  if (opt.n_bands < 1) throw UsageError("spectral_contrast.n_bands: must be >= 1, got " + std::to_string(opt.n_bands));
  if (!(opt.fmin > 0.0)) throw UsageError("spectral_contrast.fmin: must be > 0, got " + std::to_string(opt.fmin));
  if (!(opt.quantile > 0.0 && opt.quantile < 1.0))
    throw UsageError("spectral_contrast.quantile: must be in (0, 1), got " + std::to_string(opt.quantile));
  // librosa raises when any band's lower edge octa[:-1] reaches Nyquist.
  const double top = opt.fmin * std::pow(2.0, opt.n_bands - 1);
  if (top >= sample_rate / 2.0)
    throw UsageError("spectral_contrast: fmin * 2^(n_bands-1) = " + std::to_string(top) +
                     " Hz must be below the Nyquist frequency " + std::to_string(sample_rate / 2.0));
  // octa = [0, fmin * 2^0, ..., fmin * 2^n_bands]; freq = rfftfreq(n_fft, 1/sr).
  std::vector<double> octa(static_cast<size_t>(opt.n_bands + 2), 0.0);
  for (int i = 1; i < opt.n_bands + 2; ++i) octa[i] = opt.fmin * std::pow(2.0, i - 1);
  const double val = 1.0 / (n_fft * (1.0 / sample_rate));
  ContrastBands bands;
  for (int k = 0; k <= opt.n_bands; ++k) {
    int lo = K, hi = -1;  // bins with octa[k] <= f <= octa[k+1]
    for (int b = 0; b < K; ++b) {
      const double f = b * val;
      if (f >= octa[k] && f <= octa[k + 1]) {
        lo = std::min(lo, b);
        hi = b;
      }
    }
    if (hi < lo) throw UsageError("spectral_contrast: band " + std::to_string(k) + " holds no FFT bin");
    if (k > 0 && lo > 0) --lo;          // also the bin just below
    if (k == opt.n_bands) hi = K - 1;   // the top band takes every bin above
    const int count = hi - lo + 1;      // np.sum(current_band), before the top bin is dropped
    int end = hi + 1;
    if (k < opt.n_bands) --end;         // sub_band[..., :-1, :]
    const int q = std::max(1, static_cast<int>(std::nearbyint(opt.quantile * count)));  // np.rint: half to even
    bands.begin.push_back(lo);
    bands.end.push_back(end);
    bands.q.push_back(std::min(q, end - lo));
  }
  return bands;
}

FeatureMatrix spectral_contrast_from_magnitude(const FeatureMatrix& S, int sample_rate, int n_fft,
                                               const SpectralContrastOptions& opt) {
  const ContrastBands bands = spectral_contrast_bands(sample_rate, n_fft, opt);
  const int nb = static_cast<int>(bands.q.size());
  const int64_t T = S.frames;
  std::vector<double> peak(static_cast<size_t>(T * nb)), valley(static_cast<size_t>(T * nb));
  std::vector<float> buf, low, high;
  for (int64_t t = 0; t < T; ++t) {
    const float* s = S.row(t);
    for (int k = 0; k < nb; ++k) {
      const int lo = bands.begin[k], hi = bands.end[k], q = bands.q[k], n = hi - lo;
      // Only the q smallest and q largest sorted values matter; their sums run in ascending order in float32,
      // as numpy's mean over sortedr[:q] / sortedr[-q:] (row by row), then divided in float32.
      float vs = 0.0f, ps = 0.0f;
      if (2 * q >= n) {
        buf.assign(s + lo, s + hi);
        std::sort(buf.begin(), buf.end());
        for (int i = 0; i < q; ++i) vs += buf[i];
        for (int i = n - q; i < n; ++i) ps += buf[i];
      } else {
        // q is small (max(1, rint(0.02 * band size)): 1..9 at librosa's defaults), so the q smallest and the q
        // largest are selected by scans rather than the band sorted.
        smallest_by_scan(s, lo, hi, q, low);
        largest_by_scan(s, lo, hi, q, high);
        for (int i = 0; i < q; ++i) vs += low[i];
        for (int i = 0; i < q; ++i) ps += high[i];
      }
      valley[static_cast<size_t>(t * nb + k)] = static_cast<double>(vs / static_cast<float>(q));
      peak[static_cast<size_t>(t * nb + k)] = static_cast<double>(ps / static_cast<float>(q));
    }
  }
  // power_to_db on the float64 peak and valley arrays separately (each clipped against its own global max).
  const DbOptions db;  // librosa defaults: ref 1, amin 1e-10, top_db 80
  power_to_db_inplace(peak, db);
  power_to_db_inplace(valley, db);
  FeatureMatrix out(T, nb);
  for (size_t i = 0; i < out.data.size(); ++i) out.data[i] = static_cast<float>(peak[i] - valley[i]);
  return out;
}

}  // namespace songlines::features
