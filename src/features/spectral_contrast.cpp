// librosa 0.11 feature/spectral.py: spectral_contrast.
#include "features/spectral_contrast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "features/mel.h"

namespace songlines::features {

namespace {
/// Values tested together by the selection passes (one SSE register of floats).
constexpr int kLanes = 4;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int LaneMask __attribute__((vector_size(kLanes * sizeof(int))));

static_assert(kLanes == 4, "any_lane tests four lanes");
bool any_lane(LaneMask m) { return (m[0] | m[1] | m[2] | m[3]) != 0; }
/// Rank placement of candidates c[0..m) (q <= m): a value's rank is how many values come before it (ascending for
/// place_by_rank_low, descending for place_by_rank_high; ties broken by position), and ranks below q are slots.
/// out[0..q) receives the q smallest (the q largest), ascending; out[q] takes every other value. No data-dependent
/// branches: m is a few times q, and the m^2 vectorised comparisons cost less than a sort's mispredicted branches.
void place_by_rank_low(const float* c, int m, int q, float* out) {
  for (int i = 0; i < m; ++i) {
    int rank = 0;
    for (int j = 0; j < m; ++j) rank += static_cast<int>(c[j] < c[i]) | (static_cast<int>(c[j] == c[i]) & static_cast<int>(j < i));
    out[std::min(rank, q)] = c[i];
  }
}
void place_by_rank_high(const float* c, int m, int q, float* out) {
  for (int i = 0; i < m; ++i) {
    int rank = 0;
    for (int j = 0; j < m; ++j) rank += static_cast<int>(c[j] > c[i]) | (static_cast<int>(c[j] == c[i]) & static_cast<int>(j < i));
    out[rank < q ? q - 1 - rank : q] = c[i];
  }
}

/// The q smallest and the q largest of s[lo..hi) (1 <= q, 2q < hi - lo), each ascending, in low[0..q) and
/// high[0..q) (both grown as scratch as needed). Instead of a sort per band:
/// 1. The band's first rows * G values form a [rows, G] matrix (G: q rounded up to whole SIMD registers). Its G
///    column minima are G >= q distinct elements of the band, so their maximum (low_cut) is >= the band's q-th
///    smallest value; likewise the minimum of the column maxima (high_cut) is <= the band's q-th largest.
///    For q = 1 the column extremes and the values past the matrix give the answer directly.
/// 2. Every value <= low_cut (>= high_cut) is a candidate, the values past the matrix included: at least q of
///    them, on spectra a few times q. Blocks of kLanes values with no candidate are skipped with one test.
/// 3. The candidates are placed by rank.
/// The q smallest (largest) form the same multiset whichever of tied copies is kept, so the ascending sums built
/// from them are those of a full sort, bit for bit.
void extremes_by_columns(const float* s, int lo, int hi, int q, std::vector<float>& low, std::vector<float>& high) {
  const int n = hi - lo;
  constexpr int kMaxRegisters = 4;  // G <= 16 columns: q <= 9 at librosa's defaults
  const int registers = std::min({(q + kLanes - 1) / kLanes, n / kLanes, kMaxRegisters});
  const int G = registers * kLanes;
  const float* b = s + lo;
  if (registers * kLanes < q) {  // a large quantile: sort the band
    std::vector<float> sorted(b, b + n);
    std::sort(sorted.begin(), sorted.end());
    if (low.size() < static_cast<size_t>(q)) low.resize(static_cast<size_t>(q));
    if (high.size() < static_cast<size_t>(q)) high.resize(static_cast<size_t>(q));
    std::copy(sorted.begin(), sorted.begin() + q, low.begin());
    std::copy(sorted.end() - q, sorted.end(), high.begin());
    return;
  }
  const int rows = n / G;
  if (low.size() < static_cast<size_t>(n + 2 * q + 1)) low.resize(static_cast<size_t>(n + 2 * q + 1));
  if (high.size() < static_cast<size_t>(n + 2 * q + 1)) high.resize(static_cast<size_t>(n + 2 * q + 1));
  Lanes mn[kMaxRegisters] = {}, mx[kMaxRegisters] = {};
  for (int j = 0; j < registers; ++j) {
    std::memcpy(&mn[j], b + j * kLanes, sizeof(Lanes));
    mx[j] = mn[j];
  }
  for (int r = 1; r < rows; ++r)
    for (int j = 0; j < registers; ++j) {
      Lanes v;
      std::memcpy(&v, b + static_cast<size_t>(r) * G + j * kLanes, sizeof v);
      mn[j] = v < mn[j] ? v : mn[j];
      mx[j] = v > mx[j] ? v : mx[j];
    }
  if (q == 1) {  // the minimum and the maximum: the column extremes and the values past the matrix
    float m0 = mn[0][0], m1 = mx[0][0];
    for (int j = 0; j < registers; ++j)
      for (int l = 0; l < kLanes; ++l) {
        m0 = std::min(m0, mn[j][l]);
        m1 = std::max(m1, mx[j][l]);
      }
    for (int i = rows * G; i < n; ++i) {
      m0 = std::min(m0, b[i]);
      m1 = std::max(m1, b[i]);
    }
    low[0] = m0;
    high[0] = m1;
    return;
  }
  Lanes cut_lo = mn[0], cut_hi = mx[0];
  for (int j = 1; j < registers; ++j) {
    cut_lo = mn[j] > cut_lo ? mn[j] : cut_lo;
    cut_hi = mx[j] < cut_hi ? mx[j] : cut_hi;
  }
  float low_cut = cut_lo[0], high_cut = cut_hi[0];
  for (int l = 1; l < kLanes; ++l) {
    low_cut = std::max(low_cut, cut_lo[l]);
    high_cut = std::min(high_cut, cut_hi[l]);
  }
  float* lc = low.data();
  float* hc = high.data();
  int nl = 0, nh = 0;
  auto take = [&](float v) {  // branch-free appends
    lc[nl] = v;
    nl += static_cast<int>(v <= low_cut);
    hc[nh] = v;
    nh += static_cast<int>(v >= high_cut);
  };
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Lanes v;
    std::memcpy(&v, b + i, sizeof v);
    if (any_lane((v <= low_cut) | (v >= high_cut)))
      for (int l = 0; l < kLanes; ++l) take(b[i + l]);
  }
  for (; i < n; ++i) take(b[i]);
  float* lo_out = lc + nl;  // scratch past the candidates: q slots + the spare
  place_by_rank_low(lc, nl, q, lo_out);
  std::copy(lo_out, lo_out + q, lc);
  float* hi_out = hc + nh;
  place_by_rank_high(hc, nh, q, hi_out);
  std::copy(hi_out, hi_out + q, hc);
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
  if (S.dim != n_fft / 2 + 1)
    throw Error("spectral_contrast: spectrum has " + std::to_string(S.dim) + " bins, n_fft " + std::to_string(n_fft) +
                " needs " + std::to_string(n_fft / 2 + 1));
  const auto nb = static_cast<int64_t>(bands.q.size());
  const int64_t T = S.frames;
  std::vector<float> peak(static_cast<size_t>(T * nb)), valley(static_cast<size_t>(T * nb));
  spectral_contrast_peaks_valleys(S.data.data(), T, n_fft, bands, peak.data(), valley.data());
  FeatureMatrix out(T, nb);
  spectral_contrast_from_peaks_valleys(peak.data(), valley.data(), T * nb, out.data.data());
  return out;
}

void spectral_contrast_peaks_valleys(const float* S, int64_t rows, int n_fft, const ContrastBands& bands, float* peak,
                                     float* valley) {
  const int nb = static_cast<int>(bands.q.size());
  const int64_t K = n_fft / 2 + 1;
  thread_local std::vector<float> buf, low, high;
  for (int64_t t = 0; t < rows; ++t) {
    const float* s = S + t * K;
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
        extremes_by_columns(s, lo, hi, q, low, high);
        for (int i = 0; i < q; ++i) vs += low[i];
        for (int i = 0; i < q; ++i) ps += high[i];
      }
      valley[t * nb + k] = vs / static_cast<float>(q);
      peak[t * nb + k] = ps / static_cast<float>(q);
    }
  }
}

void spectral_contrast_from_peaks_valleys(const float* peak, const float* valley, int64_t count, float* out) {
  // power_to_db on the float64 peak and valley arrays separately (each clipped against its own global max).
  std::vector<double> p(peak, peak + count), v(valley, valley + count);
  power_to_db_inplace(p, kSpectralContrastDb);
  power_to_db_inplace(v, kSpectralContrastDb);
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(p[static_cast<size_t>(i)] - v[static_cast<size_t>(i)]);
}

}  // namespace songlines::features
