// Constant-Q transform and chroma_cqt, librosa 0.11-exact (see cqt.h for the references and the algorithm;
// shared/golden/LIBROSA_DEFINITIONS.md "cqt", "chroma_cqt" for the validated definitions).
#include "features/cqt.h"

#include <fftw3.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <numbers>
#include <numeric>
#include <string>
#include <tuple>

#include "audio/resample.h"
#include "core/error.h"
#include "features/fftw_planner.h"
#include "features/stft.h"

namespace songlines::features {

namespace {

/// librosa chroma_cqt / cqt default hop_length; the feature engine's frame grid (T = 1 + n / 512).
constexpr int kCqtHopLength = 512;
/// librosa filters.WINDOW_BANDWIDTHS["hann"]: equivalent noise bandwidth of the Hann window, in FFT bins.
constexpr double kHannBandwidth = 1.50018310546875;
/// Cached plans kept at most (one per distinct sample rate / options / tuning in flight).
constexpr size_t kPlanCacheSize = 16;
/// Frames multiplied by an octave's basis together: 4 floats, one SSE register of the baseline x86-64 build
/// (8 lanes, two registers per operation, were measured slower: ~57 vs ~30 ms of CQT per 60 s track).
constexpr int kFrameBlock = 4;
typedef float FrameLanes __attribute__((vector_size(kFrameBlock * sizeof(float))));
/// Input samples handed to libsoxr per call when decimating (keeps soxr's internal FIFO small).
constexpr size_t kDecimateChunk = 16384;

void validate(const CqtOptions& opt, int sample_rate) {
  auto bad = [](const std::string& what) { throw UsageError("cqt." + what); };
  if (sample_rate <= 0) bad("sample_rate: must be positive, got " + std::to_string(sample_rate));
  if (opt.bins_per_octave < 1) bad("bins_per_octave: must be >= 1, got " + std::to_string(opt.bins_per_octave));
  if (opt.n_bins < 2) bad("n_bins: must be >= 2, got " + std::to_string(opt.n_bins));
  if (!(opt.fmin > 0.0) || !std::isfinite(opt.fmin)) bad("fmin: must be positive, got " + std::to_string(opt.fmin));
  if (!(opt.filter_scale > 0.0)) bad("filter_scale: must be positive, got " + std::to_string(opt.filter_scale));
  if (!(opt.sparsity >= 0.0 && opt.sparsity < 1.0)) bad("sparsity: must be in [0, 1), got " + std::to_string(opt.sparsity));
}

// RAII for fftw_malloc'd buffers (SIMD-aligned, so new-array execution of a plan is valid).
struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};
template <class T>
std::unique_ptr<T[], FftwFree> fftw_array(size_t n) {
  auto* p = static_cast<T*>(fftw_malloc(sizeof(T) * std::max<size_t>(n, 1)));
  if (p == nullptr) throw Error("cqt: fftw_malloc failed for " + std::to_string(n) + " elements");
  return std::unique_ptr<T[], FftwFree>(p);
}

/// The double and float32 real-FFT plans of one size, destroyed under the planner lock.
struct FftwPlan {
  fftw_plan plan = nullptr;
  int input_alignment = 0;  // fftw_alignment_of the planning input: new-array execution needs the same
  fftwf_plan plan_f = nullptr;
  int input_alignment_f = 0;
  FftwPlan() = default;
  FftwPlan(const FftwPlan&) = delete;
  FftwPlan& operator=(const FftwPlan&) = delete;
  ~FftwPlan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    if (plan) fftw_destroy_plan(plan);
    if (plan_f) fftwf_destroy_plan(plan_f);
  }
};

/// scipy.sparse CSR of one octave's basis, values already scaled by sqrt(sr / octave_sr) (complex64).
struct SparseBasis {
  int n_fft = 0;
  int n_filters = 0;
  std::vector<int> row_ptr;  // [n_filters + 1]
  std::vector<int> col;      // rfft bin of each nonzero
  std::vector<float> re, im;
  int min_col = 0, max_col = -1;  // range of bins with a nonzero (empty range when none)
};

struct OctaveStep {
  double sr = 0.0;   // rate of y at this octave
  int hop = 0;       // hop at this rate
  bool decimate_after = false;  // librosa: my_hop % 2 == 0 -> halve hop, sr and the signal for the next octave
  int first_bin = 0;  // output bins [first_bin, first_bin + basis.n_filters)
  SparseBasis basis;
};

/// Everything cqt_magnitude needs that depends only on (sample_rate, options, tuning).
struct CqtPlan {
  int early_downsample_factor = 1;  // 2^count of __early_downsample
  std::vector<OctaveStep> octaves;  // top octave first
  std::vector<double> inv_sqrt_length;  // [n_bins] 1/sqrt(length_j), lengths at the post-early-downsample rate
  int max_n_fft = 0;
  std::vector<std::pair<int, std::shared_ptr<FftwPlan>>> r2c;  // one real-FFT plan per distinct n_fft
  /// Per octave, the float32 FFT's error bound per unit of frame norm, summed over the octave's output bins:
  /// sum_j |response_j error| <= error_weight * ||frame||_2 (see cqt_magnitude).
  std::vector<double> error_weight;

  const FftwPlan& plan_for(int n_fft) const {
    for (const auto& [n, p] : r2c)
      if (n == n_fft) return *p;
    throw Error("cqt: no FFT plan of size " + std::to_string(n_fft));
  }
};

int num_two_factors(int x) {
  // librosa constantq.py: __num_two_factors
  if (x <= 0) return 0;
  int count = 0;
  while (x % 2 == 0) {
    ++count;
    x /= 2;
  }
  return count;
}

double filter_cutoff(const std::vector<double>& freqs, const std::vector<double>& alpha, double filter_scale) {
  // filters.wavelet_lengths: f_cutoff = max(freqs * (1 + 0.5 * window_bandwidth / Q)), gamma 0.
  double cutoff = 0.0;
  for (size_t j = 0; j < freqs.size(); ++j) {
    const double Q = filter_scale / alpha[j];
    cutoff = std::max(cutoff, freqs[j] * (1.0 + 0.5 * kHannBandwidth / Q));
  }
  return cutoff;
}

std::vector<double> lengths_at(const std::vector<double>& freqs, const std::vector<double>& alpha, double sr,
                               double filter_scale) {
  // filters.wavelet_lengths: lengths = Q * sr / (freqs + gamma / alpha), Q = filter_scale / alpha, gamma 0.
  std::vector<double> L(freqs.size());
  for (size_t j = 0; j < freqs.size(); ++j) L[j] = (filter_scale / alpha[j]) * sr / freqs[j];
  return L;
}

SparseBasis sparsify(const CqtOctaveBasis& b, float scale) {
  SparseBasis s;
  s.n_fft = b.n_fft;
  s.n_filters = b.n_filters;
  const int n_bins = b.n_fft / 2 + 1;
  s.row_ptr.push_back(0);
  for (int r = 0; r < b.n_filters; ++r) {
    for (int k = 0; k < n_bins; ++k) {
      const std::complex<float> v = b.dense[static_cast<size_t>(r * n_bins + k)];
      if (v == std::complex<float>(0.0f, 0.0f)) continue;
      s.col.push_back(k);
      // csr.data *= np.sqrt(sr / my_sr): NumPy 1.24 casts the float64 scalar to float32 (value-based casting).
      s.re.push_back(v.real() * scale);
      s.im.push_back(v.imag() * scale);
    }
    s.row_ptr.push_back(static_cast<int>(s.col.size()));
  }
  if (!s.col.empty()) {
    s.min_col = *std::min_element(s.col.begin(), s.col.end());
    s.max_col = *std::max_element(s.col.begin(), s.col.end());
  }
  return s;
}

std::shared_ptr<const CqtPlan> build_plan(int sample_rate, const CqtOptions& opt, double tuning) {
  validate(opt, sample_rate);
  auto plan = std::make_shared<CqtPlan>();
  const int bpo = opt.bins_per_octave;
  const int n_bins = opt.n_bins;
  const std::vector<double> freqs = cqt_frequencies(opt, tuning);
  const std::vector<double> alpha = cqt_relative_bandwidth(freqs);
  const int n_octaves = (n_bins + bpo - 1) / bpo;
  const int n_filters = std::min(bpo, n_bins);

  double sr = sample_rate;
  int hop = kCqtHopLength;
  const double nyquist = sr / 2.0;
  const double cutoff = filter_cutoff(freqs, alpha, opt.filter_scale);
  if (cutoff > nyquist)
    throw UsageError("cqt: the top filter's cutoff " + std::to_string(cutoff) + " Hz exceeds Nyquist " +
                     std::to_string(nyquist) + " Hz (reduce n_bins or fmin)");

  // __early_downsample_count: decimate by 2^count before the octave loop when the top octave is far below Nyquist.
  const int count1 = std::max(0, static_cast<int>(std::ceil(std::log2(nyquist / cutoff))) - 1 - 1);
  const int count2 = std::max(0, num_two_factors(hop) - n_octaves + 1);
  const int count = std::min(count1, count2);
  if (count > 0) {
    plan->early_downsample_factor = 1 << count;
    hop /= plan->early_downsample_factor;
    sr = sr / static_cast<double>(plan->early_downsample_factor);
  }

  double my_sr = sr;
  int my_hop = hop;
  for (int i = 0; i < n_octaves; ++i) {
    // Python slice freqs[-n_filters*(i+1) : -n_filters*i] (i = 0: the last n_filters), clamped at 0.
    const int hi = n_bins - n_filters * i;
    const int lo = std::max(0, n_bins - n_filters * (i + 1));
    const std::vector<double> f_oct(freqs.begin() + lo, freqs.begin() + hi);
    const std::vector<double> a_oct(alpha.begin() + lo, alpha.begin() + hi);
    OctaveStep step;
    step.sr = my_sr;
    step.hop = my_hop;
    step.first_bin = lo;
    const CqtOctaveBasis dense = cqt_octave_basis(f_oct, a_oct, my_sr, opt);
    step.basis = sparsify(dense, static_cast<float>(std::sqrt(sr / my_sr)));
    plan->max_n_fft = std::max(plan->max_n_fft, dense.n_fft);
    step.decimate_after = (my_hop % 2 == 0);
    if (step.decimate_after) {
      my_hop /= 2;
      my_sr /= 2.0;
    }
    plan->octaves.push_back(std::move(step));
  }

  const std::vector<double> L = lengths_at(freqs, alpha, sr, opt.filter_scale);
  plan->inv_sqrt_length.resize(L.size());
  for (size_t j = 0; j < L.size(); ++j) plan->inv_sqrt_length[j] = 1.0 / std::sqrt(L[j]);

  // Real-FFT plans for the rectangular-window frames (once per cached plan; kFftwPlannerFlags): float32 for every
  // frame, double (as librosa: scipy rfft in float64, rounded to complex64) for the frames whose float32 error
  // bound is not negligible (see cqt_magnitude).
  for (const OctaveStep& s : plan->octaves) {
    const int n_fft = s.basis.n_fft;
    bool have = false;
    for (const auto& p : plan->r2c) have = have || p.first == n_fft;
    if (have) continue;
    auto in = fftw_array<double>(static_cast<size_t>(n_fft));
    auto out = fftw_array<fftw_complex>(static_cast<size_t>(n_fft / 2 + 1));
    auto in_f = fftw_array<float>(static_cast<size_t>(n_fft));
    auto out_f = fftw_array<fftwf_complex>(static_cast<size_t>(n_fft / 2 + 1));
    auto holder = std::make_shared<FftwPlan>();
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    holder->plan = fftw_plan_dft_r2c_1d(n_fft, in.get(), out.get(), kFftwPlannerFlags);
    holder->plan_f = fftwf_plan_dft_r2c_1d(n_fft, in_f.get(), out_f.get(), kFftwPlannerFlags);
    if (holder->plan == nullptr || holder->plan_f == nullptr)
      throw Error("cqt: FFTW could not plan a real FFT of size " + std::to_string(n_fft));
    holder->input_alignment = fftw_alignment_of(in.get());
    holder->input_alignment_f = fftwf_alignment_of(in_f.get());
    plan->r2c.emplace_back(n_fft, std::move(holder));
  }

  // A float32 FFT of an n-point frame x has |error| <= c eps log2(n) ||X||_2 in every bin (Cooley-Tukey with
  // accurate twiddles), and ||X||_2 = sqrt(n) ||x||_2. A filter j with basis row B_j then moves by at most
  // ||B_j||_2 times that (Cauchy-Schwarz), scaled by 1/sqrt(length_j) like its response. c = 2 for margin.
  constexpr double kFftErrorConstant = 2.0;
  const double eps32 = std::numeric_limits<float>::epsilon();
  for (const OctaveStep& s : plan->octaves) {
    const SparseBasis& B = s.basis;
    double sum = 0.0;
    for (int r = 0; r < B.n_filters; ++r) {
      double norm2 = 0.0;
      for (int z = B.row_ptr[static_cast<size_t>(r)]; z < B.row_ptr[static_cast<size_t>(r) + 1]; ++z)
        norm2 += static_cast<double>(B.re[static_cast<size_t>(z)]) * B.re[static_cast<size_t>(z)] +
                 static_cast<double>(B.im[static_cast<size_t>(z)]) * B.im[static_cast<size_t>(z)];
      sum += std::sqrt(norm2) * plan->inv_sqrt_length[static_cast<size_t>(s.first_bin + r)];
    }
    plan->error_weight.push_back(kFftErrorConstant * eps32 * std::log2(static_cast<double>(B.n_fft)) *
                                 std::sqrt(static_cast<double>(B.n_fft)) * sum);
  }
  return plan;
}

struct PlanKey {
  int sample_rate;
  CqtOptions opt;
  double tuning;
  bool operator==(const PlanKey&) const = default;
};

std::shared_ptr<const CqtPlan> cached_plan(int sample_rate, const CqtOptions& opt, double tuning) {
  static std::mutex mutex;
  static std::vector<std::pair<PlanKey, std::shared_ptr<const CqtPlan>>> cache;  // most recent last
  PlanKey key{sample_rate, opt, tuning};
  key.opt.tuning.reset();  // the resolved tuning is the key; the option only says where it came from
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->first == key) {
        auto p = it->second;
        std::rotate(it, it + 1, cache.end());
        return p;
      }
    }
  }
  // Built outside the cache lock (planning takes the FFTW lock); two threads may build the same plan once.
  auto plan = build_plan(sample_rate, opt, tuning);
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= kPlanCacheSize) cache.erase(cache.begin());
  cache.emplace_back(key, plan);
  return plan;
}

/// A libsoxr HQ factor:1 resampler as a stream (float32 in and out): the samples it outputs do not depend on how
/// the input is cut into feed() calls, and equal soxr_oneshot's on the whole input (as audio::resample calls it).
class SoxrDecimator {
 public:
  explicit SoxrDecimator(double factor) {
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t err = nullptr;
    soxr_ = soxr_create(factor, 1.0, 1, &err, &io, &quality, nullptr);
    if (err || soxr_ == nullptr) throw Error(std::string("cqt: libsoxr soxr_create failed: ") + (err ? err : "null"));
  }
  ~SoxrDecimator() { soxr_delete(soxr_); }
  SoxrDecimator(const SoxrDecimator&) = delete;
  SoxrDecimator& operator=(const SoxrDecimator&) = delete;

  /// Forgets all input (a new signal starts).
  void clear() {
    if (soxr_error_t err = soxr_clear(soxr_)) throw Error(std::string("cqt: libsoxr soxr_clear failed: ") + err);
  }
  /// Feeds x[0..n) and appends the samples soxr outputs to out. Fed in pieces of at most kDecimateChunk: soxr's
  /// output does not depend on the cut, and soxr_oneshot on a whole track spends more time growing its FIFO than
  /// filtering.
  void feed(const float* x, int64_t n, std::vector<float>& out) {
    size_t consumed = 0;
    const auto total = static_cast<size_t>(n);
    while (consumed < total) {
      const size_t ilen = std::min(kDecimateChunk, total - consumed);
      const size_t at = out.size();
      out.resize(at + ilen);  // a 2:1 (or stronger) decimation outputs at most ~ilen/2 plus its buffered samples
      size_t idone = 0, odone = 0;
      if (soxr_error_t err = soxr_process(soxr_, x + consumed, ilen, &idone, out.data() + at, ilen, &odone))
        throw Error(std::string("cqt: libsoxr soxr_process failed: ") + err);
      out.resize(at + odone);
      if (idone == 0 && odone == 0) throw Error("cqt: libsoxr soxr_process made no progress");
      consumed += idone;
    }
  }
  /// End of input: appends the filter's remaining output to out until it has `until` samples or soxr has no more.
  void flush(std::vector<float>& out, size_t until) {
    while (out.size() < until) {
      const size_t at = out.size();
      out.resize(until);
      size_t odone = 0;
      if (soxr_error_t err = soxr_process(soxr_, nullptr, 0, nullptr, out.data() + at, until - at, &odone))
        throw Error(std::string("cqt: libsoxr soxr_process failed: ") + err);
      out.resize(at + odone);
      if (odone == 0) break;
    }
  }

 private:
  soxr_t soxr_ = nullptr;
};

/// librosa resample(scale=True): y /= sqrt(target / orig) with NumPy casting the float64 divisor to float32.
float energy_scale_divisor(double factor) { return static_cast<float>(std::sqrt(1.0 / factor)); }

}  // namespace

std::vector<float> cqt_decimate_octave(const float* x, int64_t n) {
  if (n < 0) throw UsageError("cqt: negative signal length " + std::to_string(n));
  // librosa resample(x, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True): the first ceil(n/2) samples soxr
  // produces (zero-padded if fewer, librosa's fix_length), divided by float32(sqrt(0.5)).
  SoxrDecimator d(2.0);
  const auto n_out = static_cast<size_t>(audio::resampled_length(n, 2.0, 1.0));
  std::vector<float> out;
  d.feed(x, n, out);
  d.flush(out, n_out);
  out.resize(n_out, 0.0f);
  const float divisor = energy_scale_divisor(2.0);
  for (float& v : out) v /= divisor;
  return out;
}

std::vector<double> cqt_frequencies(const CqtOptions& opt, double tuning) {
  // vqt: fmin = fmin * 2^(tuning / bpo); interval_frequencies(intervals="equal"):
  // ratios = 2^(arange(bpo) / bpo); all = outer(2^arange(n_oct), ratios).flatten()[:n_bins] * fmin.
  const int bpo = opt.bins_per_octave;
  const double fmin = opt.fmin * std::pow(2.0, tuning / bpo);
  std::vector<double> f(static_cast<size_t>(std::max(opt.n_bins, 0)));
  for (int j = 0; j < opt.n_bins; ++j) {
    const double ratio = std::pow(2.0, static_cast<double>(j % bpo) / bpo);
    const double octave = std::pow(2.0, static_cast<double>(j / bpo));
    f[static_cast<size_t>(j)] = (octave * ratio) * fmin;
  }
  return f;
}

std::vector<double> cqt_relative_bandwidth(const std::vector<double>& freqs) {
  // filters._relative_bandwidth: local bins-per-octave from log2 differences, alpha = (2^(2/bpo)-1)/(2^(2/bpo)+1).
  const size_t n = freqs.size();
  if (n < 2) throw UsageError("cqt: relative bandwidth needs at least 2 frequencies, got " + std::to_string(n));
  std::vector<double> logf(n), alpha(n);
  for (size_t j = 0; j < n; ++j) logf[j] = std::log2(freqs[j]);
  for (size_t j = 0; j < n; ++j) {
    double bpo;
    if (j == 0) bpo = 1.0 / (logf[1] - logf[0]);
    else if (j == n - 1) bpo = 1.0 / (logf[n - 1] - logf[n - 2]);
    else bpo = 2.0 / (logf[j + 1] - logf[j - 1]);
    const double r = std::pow(2.0, 2.0 / bpo);
    alpha[j] = (r - 1.0) / (r + 1.0);
  }
  return alpha;
}

std::vector<double> cqt_filter_lengths(const CqtOptions& opt, int sample_rate, double tuning) {
  validate(opt, sample_rate);
  const std::vector<double> freqs = cqt_frequencies(opt, tuning);
  return lengths_at(freqs, cqt_relative_bandwidth(freqs), sample_rate, opt.filter_scale);
}

CqtOctaveBasis cqt_octave_basis(const std::vector<double>& freqs, const std::vector<double>& alpha, double octave_sr,
                                const CqtOptions& opt) {
  if (freqs.empty() || freqs.size() != alpha.size())
    throw UsageError("cqt: octave basis needs equally many freqs and alphas, got " + std::to_string(freqs.size()) +
                     " and " + std::to_string(alpha.size()));
  const std::vector<double> L = lengths_at(freqs, alpha, octave_sr, opt.filter_scale);
  // filters.wavelet(pad_fft=True): pad to the next power of two of the longest filter.
  const double max_len = *std::max_element(L.begin(), L.end());
  const int n_fft = static_cast<int>(std::pow(2.0, std::ceil(std::log2(max_len))));
  const int n_keep = n_fft / 2 + 1;
  CqtOctaveBasis out;
  out.n_fft = n_fft;
  out.n_filters = static_cast<int>(freqs.size());
  out.dense.assign(static_cast<size_t>(out.n_filters * n_keep), {0.0f, 0.0f});

  auto buf = fftw_array<fftw_complex>(static_cast<size_t>(n_fft));
  FftwPlan fft;
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fft.plan = fftw_plan_dft_1d(n_fft, buf.get(), buf.get(), FFTW_FORWARD, kFftwPlannerFlags);
  }
  if (fft.plan == nullptr) throw Error("cqt: FFTW could not plan a complex FFT of size " + std::to_string(n_fft));

  std::vector<double> mags(static_cast<size_t>(n_keep)), sorted(static_cast<size_t>(n_keep));
  for (int r = 0; r < out.n_filters; ++r) {
    const double ilen = L[static_cast<size_t>(r)];
    const double freq = freqs[static_cast<size_t>(r)];
    // sig[n] = exp(i 2 pi freq n / sr), n = arange(-ilen // 2, ilen // 2) (Python floor division on floats).
    const double first = std::floor(-ilen / 2.0);
    const int len = static_cast<int>(std::floor(ilen / 2.0) - first);
    const std::vector<double> w = periodic_hann(len);  // __float_window("hann")(len) for an integer len
    std::vector<std::complex<double>> sig(static_cast<size_t>(len));
    double l1 = 0.0;
    for (int m = 0; m < len; ++m) {
      const double angle = (first + m) * 2.0 * std::numbers::pi * freq / octave_sr;
      sig[static_cast<size_t>(m)] = std::complex<double>(std::cos(angle), std::sin(angle)) * w[static_cast<size_t>(m)];
      l1 += std::abs(sig[static_cast<size_t>(m)]);
    }
    // util.normalize(norm=1); pad_center to n_fft; cast complex64; *= ilen / n_fft (float64 math, complex64 store).
    const int lpad = (n_fft - len) / 2;
    for (int m = 0; m < n_fft; ++m) buf[m][0] = buf[m][1] = 0.0;
    const double rescale = ilen / static_cast<double>(n_fft);
    for (int m = 0; m < len; ++m) {
      const std::complex<double> v = sig[static_cast<size_t>(m)] / l1;
      const std::complex<float> v32(static_cast<float>(v.real()), static_cast<float>(v.imag()));
      buf[lpad + m][0] = static_cast<float>(static_cast<double>(v32.real()) * rescale);
      buf[lpad + m][1] = static_cast<float>(static_cast<double>(v32.imag()) * rescale);
    }
    // np.fft.fft (float64 pocketfft), keep bins 0..n_fft/2.
    fftw_execute_dft(fft.plan, buf.get(), buf.get());
    // util.sparsify_rows(quantile=sparsity): keep |x| >= sorted|x|[argmin(cumsum(sorted|x| / sum|x|) < q)].
    double norm = 0.0;
    for (int k = 0; k < n_keep; ++k) {
      mags[static_cast<size_t>(k)] = std::hypot(buf[k][0], buf[k][1]);
      norm += mags[static_cast<size_t>(k)];
    }
    sorted = mags;
    std::sort(sorted.begin(), sorted.end());
    size_t threshold_idx = 0;
    double cumulative = 0.0;
    for (size_t k = 0; k < sorted.size(); ++k) {
      cumulative += sorted[k] / norm;
      if (!(cumulative < opt.sparsity)) {
        threshold_idx = k;
        break;
      }
    }
    const double threshold = sorted[threshold_idx];
    for (int k = 0; k < n_keep; ++k) {
      if (mags[static_cast<size_t>(k)] >= threshold)
        out.dense[static_cast<size_t>(r * n_keep + k)] = {static_cast<float>(buf[k][0]), static_cast<float>(buf[k][1])};
    }
  }
  return out;
}

namespace {

/// A window [base, end) of a longer float signal in one SIMD-aligned buffer (the alignment of FFTW's plans, so
/// frames need no copy): samples are appended at the end and forgotten at the front, so a stream holds only the
/// part it still reads. Allocated with the aligned operator new (visible to allocation counters, unlike
/// fftw_malloc).
class SignalWindow {
 public:
  int64_t base() const { return base_; }
  int64_t end() const { return base_ + size_; }
  /// Sample i of the signal, base() <= i < end().
  const float* at(int64_t i) const { return data_.get() + (i - base_); }
  void append(const float* x, int64_t count) { std::copy(x, x + count, grow(count)); }
  void append_zeros(int64_t count) { std::fill_n(grow(count), count, 0.0f); }
  /// Makes room for `count` samples past end() without moving the buffer again.
  void reserve(int64_t count) {
    if (size_ + count > capacity_) resize_buffer(size_ + count);
  }
  /// Forgets the samples before i (base() <= i <= end()); the rest moves to the front of the buffer, so the
  /// buffer's alignment is that of sample i.
  void drop_before(int64_t i) {
    const int64_t k = i - base_;
    if (k <= 0) return;
    std::memmove(data_.get(), data_.get() + k, static_cast<size_t>(size_ - k) * sizeof(float));
    size_ -= k;
    base_ = i;
  }

 private:
  float* grow(int64_t count) {
    if (size_ + count > capacity_) resize_buffer(std::max(size_ + count, 2 * capacity_));
    size_ += count;
    return data_.get() + size_ - count;
  }
  void resize_buffer(int64_t capacity) {
    Buffer bigger(static_cast<float*>(::operator new[](static_cast<size_t>(capacity) * sizeof(float), kAlignment)));
    std::copy(data_.get(), data_.get() + size_, bigger.get());
    data_ = std::move(bigger);
    capacity_ = capacity;
  }
  static constexpr std::align_val_t kAlignment{64};  // >= FFTW's SIMD alignment (16 or 32 bytes)
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete[](p, kAlignment); }
  };
  using Buffer = std::unique_ptr<float[], AlignedDelete>;
  Buffer data_;
  int64_t capacity_ = 0, size_ = 0, base_ = 0;
};

/// Drops the first k rows of width w from a row-major vector (k * w elements).
template <class T>
void drop_rows(std::vector<T>& v, int64_t k, int64_t w) {
  v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k * w));
}

/// Samples of y fed into the stream at a time while rows are missing (about 3 s at 22050 Hz).
constexpr int64_t kFeedSamples = 1 << 16;

}  // namespace

/// The octaves as a pipeline: y (early-downsampled when the plan says so) -> octave 0's padded signal -> its 2:1
/// decimation -> octave 1 -> ... Each octave computes a frame's response as soon as the frame's samples have
/// arrived; a row is assembled when every octave has its frame.
struct CqtStream::Impl {
  struct Octave {
    const OctaveStep* step = nullptr;
    int64_t n_sig = 0;       // n_i: samples of y_i
    int64_t pad = 0;         // n_fft / 2 zeros before y_i (and pad + hop after it)
    int64_t n_frames = 0;    // frames of this octave used: min(T_i, T)
    int g = 1;               // energy chunk: gcd(hop, n_fft), frames start and end on chunk edges
    int64_t n_chunks = 0;    // whole chunks of the padded signal (n_i + 2 pad + hop) / g
    double slack = 0.0;      // (n_chunks + 1) eps64: the prefix sums' rounding, see cqt_magnitude before
    SignalWindow sig;        // padded signal, [n_fft/2 zeros, y_i, n_fft/2 + hop zeros]
    int64_t received = 0;    // samples of y_i received
    std::vector<double> P;   // prefix energies P[m], m in [p_base, p_base + P.size())
    int64_t p_base = 0;
    int64_t frames_done = 0;  // responses computed for frames < frames_done
    std::vector<std::complex<float>> resp;  // [frames r_base.., n_filters] complex64
    std::vector<double> term;               // per frame: error_weight * ||frame||_2 (this octave's bound)
    int64_t r_base = 0;
    std::unique_ptr<SoxrDecimator> decimator;  // into the next octave (when step->decimate_after)
    std::vector<float> decimated;              // its output, before it is scaled and passed on
  };

  std::shared_ptr<const CqtPlan> plan;
  const float* y = nullptr;
  int64_t n = 0;
  int n_bins = 0;
  bool all_exact = false;
  int64_t T = 0;
  int64_t next_row = 0;
  int64_t fed = 0;  // samples of y fed
  int64_t exact_frames = 0;
  std::unique_ptr<SoxrDecimator> early;  // early downsampling by plan->early_downsample_factor
  std::vector<float> early_out;
  std::vector<Octave> oct;
  // FFT scratch (fftw_malloc'd: the plans' alignment) and the band of one frame block, [band bins][kFrameBlock].
  std::unique_ptr<double[], FftwFree> frame;
  std::unique_ptr<float[], FftwFree> frame_f;
  std::unique_ptr<fftw_complex[], FftwFree> spec;
  std::unique_ptr<fftwf_complex[], FftwFree> spec_f;
  std::vector<float> band_re, band_im;

  /// Responses of frames t0 .. t0+nb-1 (nb <= kFrameBlock) of octave i into rows t0 - r_base.. of its resp.
  /// exact: the frames' FFTs in float64 (librosa's precision: scipy rfft in float64, rounded to complex64), else
  /// in float32. The frames go through the basis together: the band of bins the basis touches is stored bin-major
  /// ([bin][frame of the block], complex64 split into re / im), so each nonzero of the basis multiplies a whole
  /// block of frames in one SIMD-friendly loop. Per frame the products and sums are the scalar ones in the same
  /// order, so the result does not depend on the blocking.
  void respond(Octave& o, int64_t t0, int nb, bool exact) {
    const OctaveStep& s = *o.step;
    const SparseBasis& B = s.basis;
    const int n_fft = B.n_fft;
    const int band = B.max_col - B.min_col + 1;
    const FftwPlan& r2c = plan->plan_for(n_fft);
    for (int j = 0; j < nb; ++j) {
      const float* xf = o.sig.at((t0 + j) * s.hop);
      if (exact) {
        std::copy(xf, xf + n_fft, frame.get());  // float32 -> float64, exact
        fftw_execute_dft_r2c(r2c.plan, frame.get(), spec.get());
        for (int k = 0; k < band; ++k) {
          band_re[static_cast<size_t>(k * kFrameBlock + j)] = static_cast<float>(spec[B.min_col + k][0]);
          band_im[static_cast<size_t>(k * kFrameBlock + j)] = static_cast<float>(spec[B.min_col + k][1]);
        }
      } else {
        float* x = const_cast<float*>(xf);  // FFTW's r2c preserves an out-of-place input
        if (fftwf_alignment_of(x) != r2c.input_alignment_f) {
          std::copy(xf, xf + n_fft, frame_f.get());
          x = frame_f.get();
        }
        fftwf_execute_dft_r2c(r2c.plan_f, x, spec_f.get());
        for (int k = 0; k < band; ++k) {
          band_re[static_cast<size_t>(k * kFrameBlock + j)] = spec_f[B.min_col + k][0];
          band_im[static_cast<size_t>(k * kFrameBlock + j)] = spec_f[B.min_col + k][1];
        }
      }
    }
    // C_i[:, t] = basis @ D_i[:, t] (scipy csr complex64 product).
    std::complex<float>* Rc = o.resp.data() + (t0 - o.r_base) * B.n_filters;
    for (int r = 0; r < B.n_filters; ++r) {
      FrameLanes acc_re = {}, acc_im = {};
      for (int z = B.row_ptr[static_cast<size_t>(r)]; z < B.row_ptr[static_cast<size_t>(r) + 1]; ++z) {
        const float br = B.re[static_cast<size_t>(z)], bi = B.im[static_cast<size_t>(z)];
        const auto k = static_cast<size_t>((B.col[static_cast<size_t>(z)] - B.min_col) * kFrameBlock);
        FrameLanes dr, di;
        std::memcpy(&dr, band_re.data() + k, sizeof dr);
        std::memcpy(&di, band_im.data() + k, sizeof di);
        acc_re += br * dr - bi * di;
        acc_im += br * di + bi * dr;
      }
      for (int j = 0; j < nb; ++j) Rc[static_cast<size_t>(j * B.n_filters + r)] = {acc_re[j], acc_im[j]};
    }
  }

  /// Extends octave o's prefix energies over the whole g-sample chunks that have arrived: ||frame t||^2 is a
  /// difference of two of them. P runs from the start of the track, in the order the unchunked computation adds.
  void extend_energy(Octave& o) {
    const int g = o.g;
    for (int64_t m = o.p_base + static_cast<int64_t>(o.P.size()) - 1; m < o.n_chunks && (m + 1) * g <= o.sig.end();
         ++m) {
      const float* x = o.sig.at(m * g);
      double e[4] = {0.0, 0.0, 0.0, 0.0};
      int k = 0;
      for (; k + 4 <= g; k += 4)
        for (int l = 0; l < 4; ++l) e[l] += static_cast<double>(x[k + l]) * x[k + l];
      for (; k < g; ++k) e[0] += static_cast<double>(x[k]) * x[k];
      o.P.push_back(o.P.back() + ((e[0] + e[1]) + (e[2] + e[3])));
    }
  }

  /// Computes every frame of octave o whose samples have all arrived.
  void compute_frames(Octave& o) {
    const OctaveStep& s = *o.step;
    const int n_fft = s.basis.n_fft;
    int64_t ready = o.frames_done;
    while (ready < o.n_frames && ready * s.hop + n_fft <= o.sig.end()) ++ready;
    if (ready == o.frames_done) return;
    o.resp.resize(static_cast<size_t>((ready - o.r_base) * s.basis.n_filters));
    o.term.resize(static_cast<size_t>(ready - o.r_base));
    const double weight = plan->error_weight[static_cast<size_t>(&o - oct.data())];
    for (int64_t t = o.frames_done; t < ready; ++t) {
      const auto a = t * s.hop / o.g, b = a + n_fft / o.g;
      const double Pa = o.P[static_cast<size_t>(a - o.p_base)], Pb = o.P[static_cast<size_t>(b - o.p_base)];
      const double e2 = std::max(Pb - Pa, 0.0) + o.slack * Pb;
      o.term[static_cast<size_t>(t - o.r_base)] = weight * std::sqrt(e2);
    }
    for (int64_t t0 = o.frames_done; t0 < ready; t0 += kFrameBlock)
      respond(o, t0, static_cast<int>(std::min<int64_t>(kFrameBlock, ready - t0)), all_exact);
    o.frames_done = ready;
  }

  /// Samples x[0..count) of y_i arrive at octave i: they go into its window and on to the next octave.
  void receive(size_t i, const float* x, int64_t count) {
    Octave& o = oct[i];
    if (count <= 0) return;
    o.sig.append(x, count);
    o.received += count;
    extend_energy(o);
    if (i + 1 == oct.size()) return;
    if (!o.step->decimate_after) {  // librosa keeps y, sr and hop for the next octave when the hop is odd
      receive(i + 1, x, count);
      return;
    }
    o.decimated.clear();
    o.decimator->feed(x, count, o.decimated);
    pass_on(i);
  }

  /// The decimated samples of octave i, scaled (librosa resample scale=True), to octave i + 1: at most its n_sig
  /// (librosa's fix_length trims).
  void pass_on(size_t i) {
    Octave& o = oct[i];
    Octave& next = oct[i + 1];
    const auto take = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(o.decimated.size()),
                                                             next.n_sig - next.received));
    const float divisor = energy_scale_divisor(2.0);
    for (size_t k = 0; k < take; ++k) o.decimated[k] /= divisor;
    receive(i + 1, o.decimated.data(), static_cast<int64_t>(take));
  }

  /// y_i is complete: the padded tail, then the decimator's flush and librosa's zero padding to n_{i+1}.
  void finish(size_t i) {
    Octave& o = oct[i];
    o.sig.append_zeros(o.pad + o.step->hop);
    extend_energy(o);
    if (i + 1 == oct.size()) return;
    Octave& next = oct[i + 1];
    if (o.step->decimate_after) {
      o.decimated.clear();
      o.decimator->flush(o.decimated, static_cast<size_t>(next.n_sig - next.received));
      pass_on(i);
      const std::vector<float> zeros(static_cast<size_t>(next.n_sig - next.received), 0.0f);  // fix_length
      receive(i + 1, zeros.data(), static_cast<int64_t>(zeros.size()));
    }
    finish(i + 1);
  }

  /// Feeds the next samples of y (or, after the last, ends the input); then computes what became computable.
  void feed() {
    const int64_t count = std::min(kFeedSamples, n - fed);
    if (early) {
      early_out.clear();
      early->feed(y + fed, count, early_out);
    }
    fed += count;
    const bool last = fed == n;
    if (early) {
      if (last) early->flush(early_out, static_cast<size_t>(oct[0].n_sig - oct[0].received));
      const auto take = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(early_out.size()),
                                                              oct[0].n_sig - oct[0].received));
      const float divisor = energy_scale_divisor(plan->early_downsample_factor);
      for (size_t k = 0; k < take; ++k) early_out[k] /= divisor;
      receive(0, early_out.data(), static_cast<int64_t>(take));
      if (last) {
        const std::vector<float> zeros(static_cast<size_t>(oct[0].n_sig - oct[0].received), 0.0f);
        receive(0, zeros.data(), static_cast<int64_t>(zeros.size()));
      }
    } else {
      receive(0, y + fed - count, count);
    }
    if (last) finish(0);
    for (Octave& o : oct) compute_frames(o);
  }

  /// Row t of the output (every octave has frame t): stack low to high, divide by sqrt(length) (complex64 /=
  /// float64 array: float64 math, complex64 store), |.|.
  void output_row(int64_t t, float* row) const {
    for (const Octave& o : oct) {
      const OctaveStep& s = *o.step;
      const std::complex<float>* c = o.resp.data() + (t - o.r_base) * s.basis.n_filters;
      float* out = row + s.first_bin;
      for (int r = 0; r < s.basis.n_filters; ++r) {
        const double g = plan->inv_sqrt_length[static_cast<size_t>(s.first_bin + r)];
        const float re = static_cast<float>(c[r].real() * g);
        const float im = static_cast<float>(c[r].imag() * g);
        out[r] = static_cast<float>(std::sqrt(static_cast<double>(re) * re + static_cast<double>(im) * im));  // hypotf
      }
    }
  }
};

CqtStream::CqtStream(const float* y, int64_t n, int sample_rate, const CqtOptions& opt, double tuning,
                     CqtFftPrecision precision)
    : impl_(std::make_unique<Impl>()) {
  if (n < 0) throw UsageError("cqt: negative signal length " + std::to_string(n));
  if (!std::isfinite(tuning)) throw UsageError("cqt: tuning must be finite, got " + std::to_string(tuning));
  Impl& m = *impl_;
  m.plan = cached_plan(sample_rate, opt, tuning);
  m.y = y;
  m.n = n;
  m.n_bins = opt.n_bins;
  m.all_exact = precision == CqtFftPrecision::kFloat64;
  const CqtPlan& plan = *m.plan;
  // y_i: the signal each octave sees (octave 0: y, or y early-downsampled by 2^count).
  int64_t n_i = n;
  if (plan.early_downsample_factor > 1) {
    if (n < plan.early_downsample_factor)
      throw UsageError("cqt: signal of " + std::to_string(n) + " samples is too short for early downsampling by " +
                       std::to_string(plan.early_downsample_factor));
    m.early = std::make_unique<SoxrDecimator>(plan.early_downsample_factor);
    n_i = audio::resampled_length(n, plan.early_downsample_factor, 1.0);
  }
  // stft(y_i, n_fft, hop_i, window="ones", center=True, pad_mode="constant"): T_i = 1 + n_i // hop_i, frame t
  // = y_padded[t*hop_i : t*hop_i + n_fft] (the rectangular window multiplies by 1); T = min_i T_i (__trim_stack).
  m.T = std::numeric_limits<int64_t>::max();
  m.oct.resize(plan.octaves.size());
  for (size_t i = 0; i < plan.octaves.size(); ++i) {
    Impl::Octave& o = m.oct[i];
    const OctaveStep& s = plan.octaves[i];
    o.step = &s;
    o.n_sig = n_i;
    o.pad = s.basis.n_fft / 2;
    m.T = std::min(m.T, 1 + n_i / s.hop);
    o.g = std::gcd(s.hop, s.basis.n_fft);
    o.n_chunks = (n_i + 2 * o.pad + s.hop) / o.g;
    // A difference of prefix sums loses up to (chunks * eps64) of the larger sum: that much is added to the
    // frame's energy, so the bound stays an upper bound.
    o.slack = static_cast<double>(o.n_chunks + 1) * std::numeric_limits<double>::epsilon();
    o.P.assign(1, 0.0);
    o.sig.append_zeros(o.pad);
    if (s.decimate_after && i + 1 < plan.octaves.size()) {
      o.decimator = std::make_unique<SoxrDecimator>(2.0);
      n_i = audio::resampled_length(n_i, 2.0, 1.0);
    }
  }
  for (Impl::Octave& o : m.oct) o.n_frames = m.T;
  m.frame = fftw_array<double>(static_cast<size_t>(plan.max_n_fft));  // float64 copy of a frame
  m.frame_f = fftw_array<float>(static_cast<size_t>(plan.max_n_fft));  // aligned copy when needed
  m.spec = fftw_array<fftw_complex>(static_cast<size_t>(plan.max_n_fft / 2 + 1));
  m.spec_f = fftw_array<fftwf_complex>(static_cast<size_t>(plan.max_n_fft / 2 + 1));
  int max_band = 0;
  for (const OctaveStep& s : plan.octaves) max_band = std::max(max_band, s.basis.max_col - s.basis.min_col + 1);
  m.band_re.assign(static_cast<size_t>(max_band * kFrameBlock), 0.0f);
  m.band_im.assign(m.band_re.size(), 0.0f);
}

CqtStream::~CqtStream() = default;

int64_t CqtStream::frames() const { return impl_->T; }
int64_t CqtStream::next_row() const { return impl_->next_row; }
int64_t CqtStream::exact_frames() const { return impl_->exact_frames; }

void CqtStream::next(int64_t rows, FeatureMatrix& out) {
  Impl& m = *impl_;
  if (rows < 1 || rows > m.T - m.next_row)
    throw UsageError("cqt: " + std::to_string(rows) + " rows asked at row " + std::to_string(m.next_row) + " of " +
                     std::to_string(m.T));
  const int64_t end = m.next_row + rows;
  // Room for the rows' samples and one feed beyond them in every octave (the resampler delays may need more).
  for (Impl::Octave& o : m.oct) {
    const OctaveStep& s = *o.step;
    const int64_t needed = end * s.hop + s.basis.n_fft + (kFeedSamples >> (&o - m.oct.data()));
    o.sig.reserve(std::min(needed, o.n_sig + 2 * o.pad + s.hop) - o.sig.end());
    o.resp.reserve(static_cast<size_t>((end - o.r_base) * s.basis.n_filters));
    o.term.reserve(static_cast<size_t>(end - o.r_base));
  }
  auto ready = [&] {
    for (const Impl::Octave& o : m.oct)
      if (o.frames_done < end) return false;
    return true;
  };
  while (!ready()) {
    if (m.fed == m.n && m.oct[0].sig.end() > m.oct[0].n_sig + m.oct[0].pad)  // input ended, tails appended
      throw Error("cqt: internal error: rows missing after the end of the signal");
    m.feed();
  }
  out.frames = rows;
  out.dim = m.n_bins;
  out.data.resize(static_cast<size_t>(rows * m.n_bins));
  // A frame whose estimated float32 error is not below kFloatFftTolerance of its largest output is computed again
  // with float64 FFTs, as librosa computes it. The estimate is the worst-case bound of build_plan divided by
  // kBoundOverestimate: measured on music, white noise, a pure tone, a 20 Hz - 11 kHz chirp and loud tones outside
  // the CQT's range (5 kHz, 9 kHz, 15 Hz) beside quiet in-band ones, the bound exceeded the actual summed error
  // of a frame by 850x to 1850x, so the estimate stays >= 8x above it. Below the tolerance a frame's summed
  // output error is then under 1e-4 of its peak, and so is the error of its chroma (normalised by a maximum >=
  // that peak). Music passes (estimates 1e-5 .. 4e-5 of the peak); frames dominated by energy outside the CQT's
  // range do not, and get librosa's precision. The bound of frame t sums the octaves' terms in octave order.
  constexpr double kBoundOverestimate = 100.0;
  constexpr double kFloatFftTolerance = 1e-4;
  for (int64_t t = m.next_row; t < end; ++t) {
    float* row = out.row(t - m.next_row);
    m.output_row(t, row);
    if (m.all_exact) {
      ++m.exact_frames;
      continue;
    }
    double bound = 0.0;
    for (const Impl::Octave& o : m.oct) bound += o.term[static_cast<size_t>(t - o.r_base)];
    const float peak = *std::max_element(row, row + m.n_bins);
    if (!(bound / kBoundOverestimate > kFloatFftTolerance * peak)) continue;
    ++m.exact_frames;
    for (Impl::Octave& o : m.oct) m.respond(o, t, 1, true);
    m.output_row(t, row);
  }
  m.next_row = end;
  // Forget what no later row reads: samples before the next frame, its responses and energies.
  for (Impl::Octave& o : m.oct) {
    const OctaveStep& s = *o.step;
    // Kept from the next frame's first sample, or from the first sample of the energy chunk not yet complete.
    const int64_t next_chunk = o.p_base + static_cast<int64_t>(o.P.size()) - 1;
    o.sig.drop_before(std::min({end * s.hop, next_chunk * o.g, o.sig.end()}));
    drop_rows(o.resp, end - o.r_base, s.basis.n_filters);
    drop_rows(o.term, end - o.r_base, 1);
    o.r_base = end;
    const int64_t a = end * s.hop / o.g;
    const int64_t keep_from = std::min(a, o.p_base + static_cast<int64_t>(o.P.size()) - 1);
    drop_rows(o.P, keep_from - o.p_base, 1);
    o.p_base = keep_from;
  }
}

FeatureMatrix cqt_magnitude(const float* y, int64_t n, int sample_rate, const CqtOptions& opt, double tuning,
                            CqtFftPrecision precision, int64_t* exact_frames) {
  CqtStream stream(y, n, sample_rate, opt, tuning, precision);
  FeatureMatrix out;
  stream.next(stream.frames(), out);  // [T, n_bins]
  if (exact_frames) *exact_frames = stream.exact_frames();
  return out;
}

std::vector<float> cq_to_chroma(const CqtOptions& cqt, int n_chroma) {
  const int bpo = cqt.bins_per_octave;
  if (n_chroma < 1 || bpo < 1 || bpo % n_chroma != 0)
    throw UsageError("chroma_cqt: bins_per_octave (" + std::to_string(bpo) + ") must be an integer multiple of n_chroma (" +
                     std::to_string(n_chroma) + ")");
  // filters.cq_to_chroma: repeat(eye(n_chroma), n_merge, axis=1), roll columns left by n_merge // 2, tile over
  // octaves, then roll rows so that row 0 is C: roll = round(mod(hz_to_midi(fmin), 12) * n_chroma / 12).
  const int n_merge = bpo / n_chroma;
  const int shift = n_merge / 2;
  const double midi = 12.0 * (std::log2(cqt.fmin) - std::log2(440.0)) + 69.0;
  const double midi_0 = midi - 12.0 * std::floor(midi / 12.0);  // np.mod (sign of the divisor)
  const int roll = static_cast<int>(std::nearbyint(midi_0 * (n_chroma / 12.0)));  // np.round: half to even
  std::vector<float> M(static_cast<size_t>(n_chroma * cqt.n_bins), 0.0f);
  for (int b = 0; b < cqt.n_bins; ++b) {
    const int src_col = ((b % bpo) + shift) % bpo;
    const int c0 = src_col / n_merge;               // row before the row roll
    const int c = ((c0 + roll) % n_chroma + n_chroma) % n_chroma;  // np.roll(M, roll, axis=0)
    M[static_cast<size_t>(c * cqt.n_bins + b)] = 1.0f;
  }
  return M;
}

FeatureMatrix chroma_cqt_from_cqt(const FeatureMatrix& cqt_mag, const CqtOptions& cqt, const ChromaCqtOptions& opt) {
  if (cqt_mag.dim != cqt.n_bins)
    throw UsageError("chroma_cqt: cqt_mag has " + std::to_string(cqt_mag.dim) + " bins, options say n_bins = " +
                     std::to_string(cqt.n_bins));
  const int n_chroma = opt.n_chroma;
  const std::vector<float> M = cq_to_chroma(cqt, n_chroma);  // [n_chroma, n_bins]
  // Each CQT bin feeds exactly one chroma row: precompute that row.
  std::vector<int> row_of(static_cast<size_t>(cqt.n_bins), -1);
  for (int c = 0; c < n_chroma; ++c)
    for (int b = 0; b < cqt.n_bins; ++b)
      if (M[static_cast<size_t>(c * cqt.n_bins + b)] != 0.0f) row_of[static_cast<size_t>(b)] = c;
  const float tiny = std::numeric_limits<float>::min();
  const float threshold = static_cast<float>(opt.threshold);
  FeatureMatrix out(cqt_mag.frames, n_chroma);  // [T, n_chroma]
  std::vector<double> acc(static_cast<size_t>(n_chroma));
  for (int64_t t = 0; t < cqt_mag.frames; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const float* C = cqt_mag.row(t);
    for (int b = 0; b < cqt.n_bins; ++b) acc[static_cast<size_t>(row_of[static_cast<size_t>(b)])] += C[b];
    float* o = out.row(t);
    float peak = 0.0f;
    for (int c = 0; c < n_chroma; ++c) {
      float v = static_cast<float>(acc[static_cast<size_t>(c)]);
      if (v < threshold) v = 0.0f;  // chroma[chroma < threshold] = 0
      o[c] = v;
      peak = std::max(peak, std::fabs(v));
    }
    // util.normalize(norm=inf, axis=-2): frames whose max is below float32 tiny stay as they are.
    if (peak >= tiny)
      for (int c = 0; c < n_chroma; ++c) o[c] /= peak;
  }
  return out;
}

CqtOctavePlan cqt_octave_plan(int sample_rate, const CqtOptions& opt, double tuning) {
  if (!std::isfinite(tuning)) throw UsageError("cqt: tuning must be finite, got " + std::to_string(tuning));
  const std::shared_ptr<const CqtPlan> plan = cached_plan(sample_rate, opt, tuning);
  CqtOctavePlan out;
  out.early_downsample_factor = plan->early_downsample_factor;
  out.inv_sqrt_length = plan->inv_sqrt_length;
  for (const OctaveStep& s : plan->octaves) {
    CqtOctavePlan::Octave o;
    o.sr = s.sr;
    o.hop = s.hop;
    o.decimate_after = s.decimate_after;
    o.first_bin = s.first_bin;
    o.n_fft = s.basis.n_fft;
    o.n_filters = s.basis.n_filters;
    const int n_keep = o.n_fft / 2 + 1;
    o.basis.assign(static_cast<size_t>(o.n_filters) * static_cast<size_t>(n_keep), {0.0f, 0.0f});
    for (int r = 0; r < o.n_filters; ++r)
      for (int z = s.basis.row_ptr[static_cast<size_t>(r)]; z < s.basis.row_ptr[static_cast<size_t>(r) + 1]; ++z)
        o.basis[static_cast<size_t>(r) * static_cast<size_t>(n_keep) + static_cast<size_t>(s.basis.col[static_cast<size_t>(z)])] =
            {s.basis.re[static_cast<size_t>(z)], s.basis.im[static_cast<size_t>(z)]};
    out.octaves.push_back(std::move(o));
  }
  return out;
}

}  // namespace songlines::features
