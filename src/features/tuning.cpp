// librosa 0.11 core/pitch.py: estimate_tuning, piptrack, _parabolic_interpolation, pitch_tuning.
// Every step reproduces librosa's dtypes (float32 spectrogram arithmetic, float64 histogram edges), because the
// result is the argmax of a 0.01-wide histogram and a rounding difference can move a value across an edge.
#include "features/tuning.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace songlines::features {

namespace {
constexpr double kPiptrackFmin = 150.0;     // piptrack default fmin, Hz
constexpr double kPiptrackFmax = 4000.0;    // piptrack default fmax, Hz

/// Floats handled together (one SSE register of the baseline x86-64 build; GCC vector extensions, so the same
/// IEEE operation per lane on any target). Written out because GCC left both loops below scalar.
constexpr int kLanes = 4;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int LaneMask __attribute__((vector_size(kLanes * sizeof(int))));

Lanes load_lanes(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// max(x[0..n)), n >= 1, x finite. Eight running maxima in two registers; the maximum does not depend on order.
float row_max(const float* x, int64_t n) {
  Lanes m0 = {x[0], x[0], x[0], x[0]}, m1 = m0;
  int64_t k = 0;
  for (; k + 2 * kLanes <= n; k += 2 * kLanes) {
    const Lanes a = load_lanes(x + k), b = load_lanes(x + k + kLanes);
    m0 = m0 > a ? m0 : a;
    m1 = m1 > b ? m1 : b;
  }
  m0 = m0 > m1 ? m0 : m1;
  float mx = m0[0];
  for (int l = 1; l < kLanes; ++l) mx = mx > m0[l] ? mx : m0[l];
  for (; k < n; ++k) mx = mx > x[k] ? mx : x[k];
  return mx;
}

/// x[k] = s[k] * float(s[k] > ref) for k in [lo, hi): the values above the threshold, 0 elsewhere.
void above_threshold(const float* s, float ref, int64_t lo, int64_t hi, float* x) {
  const Lanes r = {ref, ref, ref, ref};
  int64_t k = lo;
  for (; k + kLanes <= hi; k += kLanes) {
    const Lanes v = load_lanes(s + k);
    const LaneMask above = v > r;  // -1 where true, 0 where false
    const Lanes y = v * __builtin_convertvector(-above, Lanes);
    std::memcpy(x + k, &y, sizeof y);
  }
  for (; k < hi; ++k) x[k] = s[k] * static_cast<float>(s[k] > ref);
}
}  // namespace

PiptrackBand piptrack_band(int sample_rate, int n_fft) {
  // fft_frequencies = rfftfreq(n_fft, 1/sr); freq_mask = fmin <= f < min(fmax, sr/2).
  const int64_t K = n_fft / 2 + 1;
  const double val = 1.0 / (n_fft * (1.0 / sample_rate));
  const double fmax = std::min(kPiptrackFmax, sample_rate / 2.0);
  PiptrackBand band{K, 0};
  for (int64_t k = 0; k < K; ++k) {
    const double f = k * val;
    if (kPiptrackFmin <= f && f < fmax) {
      band.k_lo = std::min(band.k_lo, k);
      band.k_hi = k + 1;
    }
  }
  return band;
}

std::vector<double> tuning_histogram_edges(double resolution) {
  if (!(resolution > 0.0 && resolution < 1.0))
    throw UsageError("tuning_resolution: must be in (0, 1), got " + std::to_string(resolution));
  const int n_edges = static_cast<int>(std::ceil(1.0 / resolution)) + 1;
  const int n_hist = n_edges - 1;
  // bins = np.linspace(-0.5, 0.5, n_edges): k * step + start, last = 0.5.
  std::vector<double> edges(static_cast<size_t>(n_edges));
  const double step = (0.5 - (-0.5)) / n_hist;
  for (int i = 0; i < n_edges; ++i) edges[i] = (i == n_hist) ? 0.5 : i * step + (-0.5);
  return edges;
}

double estimate_tuning(const FeatureMatrix& S, int sample_rate, int n_fft, int bins_per_octave, double resolution) {
  if (S.dim != n_fft / 2 + 1)
    throw Error("estimate_tuning: spectrogram has " + std::to_string(S.dim) + " bins, n_fft " + std::to_string(n_fft) +
                " needs " + std::to_string(n_fft / 2 + 1));
  if (!(resolution > 0.0 && resolution < 1.0))
    throw UsageError("tuning_resolution: must be in (0, 1), got " + std::to_string(resolution));
  PitchPeaks peaks;
  piptrack_peaks(S.data.data(), S.frames, sample_rate, n_fft, peaks);
  return tuning_from_peaks(peaks, bins_per_octave, resolution);
}

void piptrack_peaks(const float* S, int64_t rows, int sample_rate, int n_fft, PitchPeaks& peaks) {
  const int64_t K = n_fft / 2 + 1;
  const PiptrackBand band = piptrack_band(sample_rate, n_fft);
  const int64_t k_lo = band.k_lo, k_hi = band.k_hi;  // mask = [k_lo, k_hi)
  // Local maxima are tested on x[k-1], x[k], x[k+1]; a masked bin at the top edge of the spectrum is only
  // compared with its left neighbour (util.localmax).
  std::vector<float> x(static_cast<size_t>(K));
  const int64_t x_lo = std::max<int64_t>(std::max<int64_t>(k_lo, 1) - 1, 0);
  const int64_t x_hi = std::min<int64_t>(k_hi + 1, K);
  // Masked bins with a right neighbour are [k_first, k_inner); the spectrum's top bin, when masked, is last.
  const int64_t k_first = std::max<int64_t>(k_lo, 1);
  const int64_t k_inner = std::min<int64_t>(k_hi, K - 1);
  const bool top_masked = k_hi == K && K - 1 >= k_first;
  std::vector<int64_t> found(static_cast<size_t>(K));  // the frame's peak bins, ascending
  for (int64_t t = 0; t < rows; ++t) {
    const float* s = S + t * K;
    const float mx = row_max(s, K);
    const float ref = kPiptrackThreshold * mx;  // threshold * np.max(S, axis=-2), float32
    // The peak test reads x[k-1..k+1] for masked k only, so x is needed on [x_lo, x_hi) alone.
    above_threshold(s, ref, x_lo, x_hi, x.data());
    // The peaks, listed without a branch per bin (whether a bin is a peak is data-dependent and mispredicts);
    // they are then taken in ascending order, as the bin-by-bin scan took them.
    size_t n_found = 0;
    for (int64_t k = k_first; k < k_inner; ++k) {
      found[n_found] = k;
      n_found += static_cast<size_t>((x[k] > x[k - 1]) & (x[k] >= x[k + 1]));
    }
    if (top_masked && x[K - 1] > x[K - 2]) found[n_found++] = K - 1;
    for (size_t j = 0; j < n_found; ++j) {
      const int64_t k = found[j];
      // _parabolic_interpolation (numba stencil; int literal * float32 promotes to float64):
      // a = x[1] + x[-1] - 2 x[0], b = (x[1] - x[-1]) / 2, shift = -b / a unless |b| >= |a|; 0 at both ends.
      float shift = 0.0f;
      if (k > 0 && k < K - 1) {
        const double a = static_cast<double>(s[k + 1] + s[k - 1]) - 2.0 * static_cast<double>(s[k]);
        const double b = static_cast<double>(s[k + 1] - s[k - 1]) / 2.0;
        shift = std::abs(b) >= std::abs(a) ? 0.0f : static_cast<float>(-b / a);
      }
      // np.gradient (float32): central difference / 2, one-sided at the edges.
      float avg;
      if (k == 0) avg = s[1] - s[0];
      else if (k == K - 1) avg = s[K - 1] - s[K - 2];
      else avg = (s[k + 1] - s[k - 1]) / 2.0f;
      const float dskew = (0.5f * avg) * shift;
      // pitch = (idx + shift) * float(sr) / n_fft in float64, stored in the float32 pitches array.
      const float pitch = static_cast<float>((static_cast<double>(k) + shift) * static_cast<double>(sample_rate) / n_fft);
      if (!(pitch > 0.0f)) continue;  // estimate_tuning uses only pitch > 0 (median and histogram alike)
      peaks.pitch.push_back(pitch);
      peaks.mag.push_back(s[k] + dskew);
    }
  }
}

double tuning_from_peaks(const PitchPeaks& peaks, int bins_per_octave, double resolution) {
  const std::vector<double> edges = tuning_histogram_edges(resolution);
  // estimate_tuning: threshold = median(mag[pitch > 0]) (GLOBAL); keep pitch > 0 & mag >= threshold.
  std::vector<float> pos_mags(peaks.mag);
  float threshold = 0.0f;
  if (!pos_mags.empty()) {
    // np.median of float32: the middle value, or the float32 mean of the two middle values. Selected, not sorted:
    // after nth_element the lower middle value is the largest of the elements before the upper one.
    const size_t m = pos_mags.size();
    const auto mid = pos_mags.begin() + static_cast<std::ptrdiff_t>(m / 2);
    std::nth_element(pos_mags.begin(), mid, pos_mags.end());
    threshold = (m % 2 == 1) ? *mid : (*std::max_element(pos_mags.begin(), mid) + *mid) / 2.0f;
  }

  // pitch_tuning: residual = mod(bins_per_octave * log2(f / (440 / 16)), 1.0) in float32; >= 0.5 -> -1.
  const int n_hist = static_cast<int>(edges.size()) - 1;
  std::vector<int64_t> counts(static_cast<size_t>(n_hist), 0);
  bool any = false;
  const float a440_16 = static_cast<float>(440.0 / 16.0);
  const float bpo = static_cast<float>(bins_per_octave);
  for (size_t i = 0; i < peaks.pitch.size(); ++i) {
    const float f = peaks.pitch[i];
    if (!(f > 0.0f && peaks.mag[i] >= threshold)) continue;
    any = true;
    const float octs = std::log2(f / a440_16);
    float r = std::fmod(bpo * octs, 1.0f);
    if (r < 0.0f) r += 1.0f;  // numpy mod takes the divisor's sign
    if (r >= 0.5f) r -= 1.0f;
    const double rd = r;
    if (rd < edges.front() || rd > edges.back()) continue;
    // np.histogram with explicit edges: bin i holds edges[i] <= r < edges[i+1]; the last bin includes 0.5.
    int64_t bin = std::upper_bound(edges.begin(), edges.end(), rd) - edges.begin() - 1;
    bin = std::min<int64_t>(bin, n_hist - 1);
    ++counts[static_cast<size_t>(bin)];
  }
  if (!any) return 0.0;  // librosa warns and returns 0.0
  const size_t best = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  return edges[best];
}

}  // namespace songlines::features
