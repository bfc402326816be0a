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

/// A libsoxr HQ 2:1 resampler (float32 in and out), reused for every octave of one cqt_magnitude call.
class OctaveDecimator {
 public:
  OctaveDecimator() {
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t err = nullptr;
    soxr_ = soxr_create(2.0, 1.0, 1, &err, &io, &quality, nullptr);
    if (err || soxr_ == nullptr) throw Error(std::string("cqt: libsoxr soxr_create failed: ") + (err ? err : "null"));
  }
  ~OctaveDecimator() { soxr_delete(soxr_); }
  OctaveDecimator(const OctaveDecimator&) = delete;
  OctaveDecimator& operator=(const OctaveDecimator&) = delete;

  /// librosa resample(x, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True): the first ceil(n/2) samples
  /// soxr produces (zero-padded if fewer), divided by float32(sqrt(0.5)). Fed in chunks: soxr's output does not
  /// depend on the chunking, and soxr_oneshot on a whole track spends more time growing its FIFO than filtering.
  std::vector<float> decimate(const float* x, int64_t n) {
    std::vector<float> out;
    decimate_into(x, n, out);
    return out;
  }
  /// decimate() into `out` (resized; its allocation is reused, x must not alias it).
  void decimate_into(const float* x, int64_t n, std::vector<float>& out) {
    if (soxr_error_t err = soxr_clear(soxr_)) throw Error(std::string("cqt: libsoxr soxr_clear failed: ") + err);
    const size_t n_out = static_cast<size_t>(audio::resampled_length(n, 2.0, 1.0));
    out.resize(n_out);
    size_t produced = 0, consumed = 0;
    const auto total = static_cast<size_t>(n);
    while (consumed < total && produced < n_out) {
      const size_t ilen = std::min(kDecimateChunk, total - consumed);
      size_t idone = 0, odone = 0;
      if (soxr_error_t err = soxr_process(soxr_, x + consumed, ilen, &idone, out.data() + produced, n_out - produced, &odone))
        throw Error(std::string("cqt: libsoxr soxr_process failed: ") + err);
      consumed += idone;
      produced += odone;
      if (idone == 0 && odone == 0) break;
    }
    while (produced < n_out) {  // end of input: flush the filter's tail
      size_t odone = 0;
      if (soxr_error_t err = soxr_process(soxr_, nullptr, 0, nullptr, out.data() + produced, n_out - produced, &odone))
        throw Error(std::string("cqt: libsoxr soxr_process failed: ") + err);
      if (odone == 0) break;
      produced += odone;
    }
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(produced), out.end(), 0.0f);  // librosa fix_length pad
    // scale=True: y /= sqrt(target/orig) with NumPy casting the float64 divisor to float32.
    const auto divisor = static_cast<float>(std::sqrt(0.5));
    for (float& v : out) v /= divisor;
  }

 private:
  soxr_t soxr_ = nullptr;
};

}  // namespace

std::vector<float> cqt_decimate_octave(const float* x, int64_t n) {
  if (n < 0) throw UsageError("cqt: negative signal length " + std::to_string(n));
  OctaveDecimator d;
  return d.decimate(x, n);
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

FeatureMatrix cqt_magnitude(const float* y, int64_t n, int sample_rate, const CqtOptions& opt, double tuning,
                            CqtFftPrecision precision, int64_t* exact_frames) {
  if (n < 0) throw UsageError("cqt: negative signal length " + std::to_string(n));
  if (!std::isfinite(tuning)) throw UsageError("cqt: tuning must be finite, got " + std::to_string(tuning));
  const std::shared_ptr<const CqtPlan> plan = cached_plan(sample_rate, opt, tuning);

  // Per-thread scratch reused across calls: the octave signals, their padded copies and the responses are several
  // MB per 60 s track, and fresh allocations of that size cost page faults and zero-fill on every call.
  struct Scratch {
    std::vector<float> y_a, y_b;                        // y_i ping-pong buffers (decimation reads one, writes the other)
    std::vector<std::unique_ptr<float[], FftwFree>> padded;  // per octave: [n_fft/2 zeros, y_i, n_fft/2 + hop zeros]
    std::vector<size_t> padded_capacity;
    std::vector<double> chunk_energy;                   // prefix sums of one octave's squared samples, per chunk
    std::vector<double> error_bound;                    // per frame: sum over all bins of the float32 error bounds
    std::vector<std::vector<std::complex<float>>> c;    // per octave: [T_i, n_filters] complex64
  };
  thread_local Scratch scratch;
  const size_t n_oct = plan->octaves.size();
  if (scratch.c.size() < n_oct) scratch.c.resize(n_oct);
  if (scratch.padded.size() < n_oct) {
    scratch.padded.resize(n_oct);
    scratch.padded_capacity.resize(n_oct, 0);
  }

  // y_i: the signal each octave sees, [n_i] float32 (octave 0 reads y in place unless early-downsampled).
  const float* my_y = y;
  int64_t my_n = n;
  if (plan->early_downsample_factor > 1) {
    if (n < plan->early_downsample_factor)
      throw UsageError("cqt: signal of " + std::to_string(n) + " samples is too short for early downsampling by " +
                       std::to_string(plan->early_downsample_factor));
    scratch.y_a = audio::resample(y, n, plan->early_downsample_factor, 1, audio::ResampleScale::kEnergy);
    my_y = scratch.y_a.data();
    my_n = static_cast<int64_t>(scratch.y_a.size());
  }

  OctaveDecimator decimator;
  auto frame = fftw_array<double>(static_cast<size_t>(plan->max_n_fft));  // float64 copy of a frame
  auto frame_f = fftw_array<float>(static_cast<size_t>(plan->max_n_fft));  // aligned copy when needed
  auto spec = fftw_array<fftw_complex>(static_cast<size_t>(plan->max_n_fft / 2 + 1));
  auto spec_f = fftw_array<fftwf_complex>(static_cast<size_t>(plan->max_n_fft / 2 + 1));
  int max_band = 0;
  for (const OctaveStep& s : plan->octaves) max_band = std::max(max_band, s.basis.max_col - s.basis.min_col + 1);
  std::vector<float> band_re(static_cast<size_t>(max_band * kFrameBlock), 0.0f);  // [band bins][kFrameBlock]
  std::vector<float> band_im(band_re.size(), 0.0f);

  // Responses of frames t0 .. t0+nb-1 (nb <= kFrameBlock) of one octave into its rows of Rc. exact: the frames'
  // FFTs in float64 (librosa's precision: scipy rfft in float64, rounded to complex64), else in float32.
  // The frames go through the basis together: the band of bins the basis touches is stored bin-major ([bin][frame
  // of the block], complex64 split into re / im), so each nonzero of the basis multiplies a whole block of frames
  // in one SIMD-friendly loop. Per frame the products and sums are the scalar ones in the same order, so the
  // result does not depend on the blocking.
  auto respond = [&](const OctaveStep& s, const float* padded, int64_t t0, int nb, bool exact,
                     std::complex<float>* Rc) {
    const SparseBasis& B = s.basis;
    const int n_fft = B.n_fft;
    const int band = B.max_col - B.min_col + 1;
    const FftwPlan& r2c = plan->plan_for(n_fft);
    for (int j = 0; j < nb; ++j) {
      const float* xf = padded + (t0 + j) * s.hop;
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
      for (int j = 0; j < nb; ++j) Rc[static_cast<size_t>((t0 + j) * B.n_filters + r)] = {acc_re[j], acc_im[j]};
    }
  };

  // Octave responses, complex64 [T_i, n_filters] each; T = min_i T_i (__trim_stack). Every frame first goes through
  // a float32 FFT, and error_bound[t] collects, over the octaves, error_weight_i * ||frame_i,t||_2: a bound on the
  // summed float32 error of frame t's outputs (see build_plan).
  const bool all_exact = precision == CqtFftPrecision::kFloat64;
  int64_t T = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < n_oct; ++i) {
    const OctaveStep& s = plan->octaves[i];
    const int n_fft = s.basis.n_fft;
    const int64_t n_i = my_n;
    // stft(y_i, n_fft, hop_i, window="ones", center=True, pad_mode="constant"): T_i = 1 + n_i // hop_i, frame t
    // = y_padded[t*hop_i : t*hop_i + n_fft] (the rectangular window multiplies by 1).
    const int64_t Ti = 1 + n_i / s.hop;
    const int64_t pad = n_fft / 2;
    const auto padded_len = static_cast<size_t>(n_i + 2 * pad + s.hop);
    if (scratch.padded_capacity[i] < padded_len) {
      scratch.padded[i] = fftw_array<float>(padded_len);
      scratch.padded_capacity[i] = padded_len;
    }
    float* padded = scratch.padded[i].get();
    std::fill(padded, padded + pad, 0.0f);
    std::copy(my_y, my_y + n_i, padded + pad);
    std::fill(padded + pad + n_i, padded + padded_len, 0.0f);

    // ||frame t||^2 from prefix sums over chunks of g = gcd(hop, n_fft) samples (frames start and end on chunk
    // edges). A difference of prefix sums loses up to (chunks * eps64) of the larger sum: that much is added, so
    // the bound stays an upper bound.
    const int g = std::gcd(s.hop, n_fft);
    const int64_t n_chunks = static_cast<int64_t>(padded_len) / g;
    std::vector<double>& P = scratch.chunk_energy;
    P.resize(static_cast<size_t>(n_chunks + 1));
    P[0] = 0.0;
    for (int64_t m = 0; m < n_chunks; ++m) {
      const float* x = padded + m * g;
      double e[4] = {0.0, 0.0, 0.0, 0.0};
      int k = 0;
      for (; k + 4 <= g; k += 4)
        for (int l = 0; l < 4; ++l) e[l] += static_cast<double>(x[k + l]) * x[k + l];
      for (; k < g; ++k) e[0] += static_cast<double>(x[k]) * x[k];
      P[static_cast<size_t>(m + 1)] = P[static_cast<size_t>(m)] + ((e[0] + e[1]) + (e[2] + e[3]));
    }
    const double slack = static_cast<double>(n_chunks + 1) * std::numeric_limits<double>::epsilon();
    if (i == 0) scratch.error_bound.assign(static_cast<size_t>(Ti), 0.0);
    const int64_t bounded = std::min<int64_t>(Ti, static_cast<int64_t>(scratch.error_bound.size()));
    for (int64_t t = 0; t < bounded; ++t) {
      const auto a = static_cast<size_t>(t * s.hop / g), b = a + static_cast<size_t>(n_fft / g);
      const double e2 = std::max(P[b] - P[a], 0.0) + slack * P[b];
      scratch.error_bound[static_cast<size_t>(t)] += plan->error_weight[i] * std::sqrt(e2);
    }

    std::vector<std::complex<float>>& Rc = scratch.c[i];
    Rc.resize(static_cast<size_t>(Ti * s.basis.n_filters));
    for (int64_t t0 = 0; t0 < Ti; t0 += kFrameBlock)
      respond(s, padded, t0, static_cast<int>(std::min<int64_t>(kFrameBlock, Ti - t0)), all_exact, Rc.data());
    T = std::min(T, Ti);
    if (s.decimate_after && i + 1 < n_oct) {
      // audio.resample(my_y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
      std::vector<float>& dst = (my_y == scratch.y_a.data()) ? scratch.y_b : scratch.y_a;
      decimator.decimate_into(my_y, n_i, dst);
      my_y = dst.data();
      my_n = static_cast<int64_t>(dst.size());
    }
  }

  // Stack low to high, divide by sqrt(length) (complex64 /= float64 array: float64 math, complex64 store), |.|.
  FeatureMatrix out(T, opt.n_bins);  // [T, n_bins]
  auto output_row = [&](int64_t t) {
    for (size_t i = 0; i < n_oct; ++i) {
      const OctaveStep& s = plan->octaves[i];
      const std::complex<float>* c = scratch.c[i].data() + t * s.basis.n_filters;
      float* o = out.row(t) + s.first_bin;
      for (int r = 0; r < s.basis.n_filters; ++r) {
        const double g = plan->inv_sqrt_length[static_cast<size_t>(s.first_bin + r)];
        const float re = static_cast<float>(c[r].real() * g);
        const float im = static_cast<float>(c[r].imag() * g);
        o[r] = static_cast<float>(std::sqrt(static_cast<double>(re) * re + static_cast<double>(im) * im));  // hypotf
      }
    }
  };
  // A frame whose estimated float32 error is not below kFloatFftTolerance of its largest output is computed again
  // with float64 FFTs, as librosa computes it. The estimate is the worst-case bound of build_plan divided by
  // kBoundOverestimate: measured on music, white noise, a pure tone, a 20 Hz - 11 kHz chirp and loud tones outside
  // the CQT's range (5 kHz, 9 kHz, 15 Hz) beside quiet in-band ones, the bound exceeded the actual summed error
  // of a frame by 850x to 1850x, so the estimate stays >= 8x above it. Below the tolerance a frame's summed
  // output error is then under 1e-4 of its peak, and so is the error of its chroma (normalised by a maximum >=
  // that peak). Music passes (estimates 1e-5 .. 4e-5 of the peak); frames dominated by energy outside the CQT's
  // range do not, and get librosa's precision.
  constexpr double kBoundOverestimate = 100.0;
  constexpr double kFloatFftTolerance = 1e-4;
  int64_t recomputed = all_exact ? T : 0;
  for (int64_t t = 0; t < T; ++t) {
    output_row(t);
    if (all_exact) continue;
    const float* o = out.row(t);
    const float peak = *std::max_element(o, o + opt.n_bins);
    if (!(scratch.error_bound[static_cast<size_t>(t)] / kBoundOverestimate > kFloatFftTolerance * peak)) continue;
    ++recomputed;
    for (size_t i = 0; i < n_oct; ++i)
      respond(plan->octaves[i], scratch.padded[i].get(), t, 1, true, scratch.c[i].data());
    output_row(t);
  }
  if (exact_frames) *exact_frames = recomputed;
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
