// Host-side constant matrices of the CUDA engine (see engine_filterbanks.h). All math in float64 as librosa 0.11.
#include "cuda/engine_filterbanks.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/error.h"

namespace songlines::cuda {

namespace {

constexpr double kPi = 3.14159265358979323846;

// np.linspace(start, stop, num, endpoint=True): i * step + start, last element exactly stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  double step = num > 1 ? (stop - start) / (num - 1) : 0.0;
  for (int i = 0; i < num; ++i) y[i] = i * step + start;
  if (num > 1) y[num - 1] = stop;
  return y;
}

// librosa.fft_frequencies(sr, n_fft) = linspace(0, sr/2, 1 + n_fft//2).
std::vector<double> fft_frequencies(int sample_rate, int n_fft) {
  return linspace(0.0, sample_rate / 2.0, 1 + n_fft / 2);
}

// core/convert.py: hz_to_mel / mel_to_hz, Slaney (htk=False).
constexpr double kFSp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
double hz_to_mel(double f) {
  const double min_log_mel = kMinLogHz / kFSp, logstep = std::log(6.4) / 27.0;
  return f >= kMinLogHz ? min_log_mel + std::log(f / kMinLogHz) / logstep : f / kFSp;
}
double mel_to_hz(double m) {
  const double min_log_mel = kMinLogHz / kFSp, logstep = std::log(6.4) / 27.0;
  return m >= min_log_mel ? kMinLogHz * std::exp(logstep * (m - min_log_mel)) : kFSp * m;
}

}  // namespace

std::vector<float> periodic_hann_f32(int n) {
  std::vector<float> w(n);
  for (int i = 0; i < n; ++i) w[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * kPi * i / n));
  return w;
}

std::vector<float> mel_filterbank(int sample_rate, int n_fft, const features::MelOptions& opt) {
  const int n_bins = 1 + n_fft / 2, n_mels = opt.n_mels;
  const double fmax = opt.fmax > 0 ? opt.fmax : sample_rate / 2.0;
  std::vector<double> fftfreqs = fft_frequencies(sample_rate, n_fft);
  std::vector<double> mels = linspace(hz_to_mel(opt.fmin), hz_to_mel(fmax), n_mels + 2);
  std::vector<double> mel_f(n_mels + 2);
  for (int i = 0; i < n_mels + 2; ++i) mel_f[i] = mel_to_hz(mels[i]);
  std::vector<float> W(static_cast<size_t>(n_mels) * n_bins);
  for (int i = 0; i < n_mels; ++i) {
    double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
    double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
    for (int k = 0; k < n_bins; ++k) {
      double lower = -(mel_f[i] - fftfreqs[k]) / fd0;
      double upper = (mel_f[i + 2] - fftfreqs[k]) / fd1;
      float w = static_cast<float>(std::max(0.0, std::min(lower, upper)));  // stored float32, then *= enorm
      W[static_cast<size_t>(i) * n_bins + k] = static_cast<float>(static_cast<double>(w) * enorm);
    }
  }
  return W;
}

std::vector<float> dct_ortho_basis(int n_mels, const features::MfccOptions& opt) {
  std::vector<float> D(static_cast<size_t>(opt.n_mfcc) * n_mels);
  for (int k = 0; k < opt.n_mfcc; ++k) {
    double scale = std::sqrt(2.0 / n_mels) * (k == 0 ? 1.0 / std::sqrt(2.0) : 1.0);
    double lift = opt.lifter > 0 ? 1.0 + (opt.lifter / 2.0) * std::sin(kPi * (k + 1) / opt.lifter) : 1.0;
    for (int n = 0; n < n_mels; ++n)
      D[static_cast<size_t>(k) * n_mels + n] =
          static_cast<float>(lift * scale * std::cos(kPi * k * (2.0 * n + 1.0) / (2.0 * n_mels)));
  }
  return D;
}

std::vector<float> chroma_filterbank(int sample_rate, int n_fft, int n_chroma, double tuning) {
  // filters.py: chroma. Columns over k = 0..n_fft-1 (k=0 extrapolated), kept up to n_fft/2.
  const int n_bins = 1 + n_fft / 2;
  const double a440 = 440.0 * std::pow(2.0, tuning / n_chroma);
  std::vector<double> frqbins(n_fft);
  for (int k = 1; k < n_fft; ++k) {
    double f = static_cast<double>(k) * sample_rate / n_fft;  // linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins[k] = n_chroma * std::log2(f / (a440 / 16.0));
  }
  frqbins[0] = frqbins[1] - 1.5 * n_chroma;
  std::vector<double> binwidth(n_fft, 1.0);
  for (int k = 0; k + 1 < n_fft; ++k) binwidth[k] = std::max(frqbins[k + 1] - frqbins[k], 1.0);
  const double n_chroma2 = std::round(n_chroma / 2.0);
  std::vector<double> wts(static_cast<size_t>(n_chroma) * n_bins);
  for (int k = 0; k < n_bins; ++k) {
    double norm2 = 0.0;
    std::vector<double> col(n_chroma);
    for (int c = 0; c < n_chroma; ++c) {
      double d = frqbins[k] - c + n_chroma2 + 10.0 * n_chroma;
      d = d - std::floor(d / n_chroma) * n_chroma - n_chroma2;  // np.remainder
      col[c] = std::exp(-0.5 * std::pow(2.0 * d / binwidth[k], 2));
      norm2 += col[c] * col[c];
    }
    double len = std::sqrt(norm2);
    if (len < std::numeric_limits<double>::min()) len = 1.0;  // util.normalize threshold=tiny(float64)
    double oct = std::exp(-0.5 * std::pow((frqbins[k] / n_chroma - 5.0) / 2.0, 2));  // ctroct=5, octwidth=2
    for (int c = 0; c < n_chroma; ++c) {
      int row = ((c - 3 * (n_chroma / 12)) % n_chroma + n_chroma) % n_chroma;  // np.roll(wts, -3, axis=0)
      wts[static_cast<size_t>(row) * n_bins + k] = col[c] / len * oct;
    }
  }
  return std::vector<float>(wts.begin(), wts.end());
}

std::vector<float> cq_to_chroma(int n_input, int bins_per_octave, int n_chroma, double fmin) {
  if (bins_per_octave % n_chroma != 0)
    throw UsageError("cq_to_chroma: bins_per_octave " + std::to_string(bins_per_octave) +
                     " is not a multiple of n_chroma " + std::to_string(n_chroma));
  const int n_merge = bins_per_octave / n_chroma;
  double midi0 = std::fmod(12.0 * std::log2(fmin / 440.0) + 69.0, 12.0);
  if (midi0 < 0) midi0 += 12.0;
  const int roll = static_cast<int>(std::nearbyint(midi0 * (n_chroma / 12.0)));
  std::vector<float> M(static_cast<size_t>(n_chroma) * n_input, 0.0f);
  for (int b = 0; b < n_input; ++b) {
    int j = b % bins_per_octave;
    // repeat(eye(n_chroma), n_merge, axis=1), rolled left by n_merge//2 along the bins, then rolled by `roll` rows
    int c = (((j + n_merge / 2) % bins_per_octave) / n_merge + roll) % n_chroma;
    M[static_cast<size_t>(c) * n_input + b] = 1.0f;
  }
  return M;
}

ContrastBands contrast_bands(int sample_rate, int n_fft, const features::SpectralContrastOptions& opt) {
  std::vector<double> freq = fft_frequencies(sample_rate, n_fft);
  const int n = static_cast<int>(freq.size());
  std::vector<double> octa(opt.n_bands + 2, 0.0);
  for (int i = 1; i < opt.n_bands + 2; ++i) octa[i] = opt.fmin * std::pow(2.0, i - 1);
  ContrastBands bands;
  for (int k = 0; k <= opt.n_bands; ++k) {
    int lo = -1, hi = -1;  // first and last bin with f_low <= f <= f_high
    for (int i = 0; i < n; ++i)
      if (freq[i] >= octa[k] && freq[i] <= octa[k + 1]) {
        if (lo < 0) lo = i;
        hi = i;
      }
    if (lo < 0)
      throw UsageError("spectral_contrast: band " + std::to_string(k) + " holds no frequency bin (fmin " +
                       std::to_string(opt.fmin) + ", n_bands " + std::to_string(opt.n_bands) + ")");
    int begin = k > 0 ? std::max(lo - 1, 0) : lo;
    int end = k == opt.n_bands ? n : hi + 1;
    int count = end - begin;
    int q = std::max(1, static_cast<int>(std::nearbyint(opt.quantile * count)));  // np.rint: half to even
    if (k < opt.n_bands) end -= 1;  // the top bin of the selection is dropped
    bands.begin.push_back(begin);
    bands.end.push_back(end);
    bands.q.push_back(std::min(q, end - begin));
    bands.max_size = std::max(bands.max_size, end - begin);
  }
  return bands;
}

namespace {
constexpr double kHannBandwidth = 1.50018310546875;  // filters.py: WINDOW_BANDWIDTHS["hann"]
double cqt_alpha(int bins_per_octave) {
  double r = std::pow(2.0, 2.0 / bins_per_octave);
  return (r - 1.0) / (r + 1.0);
}
int two_factors(int x) {
  int n = 0;
  while (x > 0 && x % 2 == 0) {
    x /= 2;
    ++n;
  }
  return n;
}
}  // namespace

CqtGeometry cqt_geometry(int sample_rate, int hop, const features::CqtOptions& opt) {
  if (opt.n_bins % opt.bins_per_octave != 0)
    throw UsageError("CUDA engine: cqt.n_bins " + std::to_string(opt.n_bins) + " must be a multiple of bins_per_octave");
  CqtGeometry g;
  g.n_octaves = opt.n_bins / opt.bins_per_octave;
  g.hop = hop;
  if (two_factors(hop) < g.n_octaves - 1)
    throw UsageError("CUDA engine: hop_length " + std::to_string(hop) + " cannot support " +
                     std::to_string(g.n_octaves) + " CQT octaves");
  const double alpha = cqt_alpha(opt.bins_per_octave), Q = opt.filter_scale / alpha;
  // Highest frequency at the largest tuning (+0.5 bin) bounds the cutoff; the count must be 0 for every tuning.
  double fmax = opt.fmin * std::pow(2.0, (opt.n_bins - 1 + 0.5) / opt.bins_per_octave);
  double cutoff = fmax * (1.0 + 0.5 * kHannBandwidth / Q);
  double nyquist = sample_rate / 2.0;
  int count1 = std::max(0, static_cast<int>(std::ceil(std::log2(nyquist / cutoff)) - 1) - 1);
  int count2 = std::max(0, two_factors(hop) - g.n_octaves + 1);
  if (std::min(count1, count2) > 0 || cutoff > nyquist)
    throw UsageError("CUDA engine: these CQT options need librosa's early downsampling, which is not implemented");
  // Longest filter of an octave: its lowest bin (at tuning -0.5 it is longest).
  double fmin_oct = opt.fmin * std::pow(2.0, (opt.n_bins - opt.bins_per_octave - 0.5) / opt.bins_per_octave);
  double max_len = Q * sample_rate / fmin_oct;
  g.n_fft = 1 << static_cast<int>(std::ceil(std::log2(max_len)));
  return g;
}

std::vector<std::complex<float>> cqt_octave_basis(int sample_rate, const features::CqtOptions& opt, int n_fft,
                                                  double tuning) {
  const int bpo = opt.bins_per_octave, bins = n_fft / 2 + 1;
  const double alpha = cqt_alpha(bpo), Q = opt.filter_scale / alpha;
  const double fmin = opt.fmin * std::pow(2.0, tuning / bpo);
  std::vector<double> lengths(bpo), freqs(bpo);
  for (int j = 0; j < bpo; ++j) {
    freqs[j] = fmin * std::pow(2.0, static_cast<double>(opt.n_bins - bpo + j) / bpo);  // top octave
    lengths[j] = Q * sample_rate / freqs[j];
  }
  // filters.wavelet pads to 2^ceil(log2(max length)) of this octave; must agree with the geometry's n_fft.
  int pad_len = 1 << static_cast<int>(std::ceil(std::log2(*std::max_element(lengths.begin(), lengths.end()))));
  if (pad_len != n_fft)
    throw UsageError("CUDA engine: CQT filter length " + std::to_string(pad_len) + " differs from the FFT size " +
                     std::to_string(n_fft) + " at tuning " + std::to_string(tuning));
  std::vector<std::complex<float>> basis(static_cast<size_t>(bpo) * bins);
  for (int j = 0; j < bpo; ++j) {
    const double L = lengths[j];
    const long start = static_cast<long>(std::floor(-L / 2.0)), stop = static_cast<long>(std::floor(L / 2.0));
    const int m = static_cast<int>(stop - start);
    // sig = exp(2 pi i n f / sr) * hann_periodic(m), L1-normalised, rounded to complex64, centred in n_fft.
    std::vector<std::complex<double>> sig(m);
    double l1 = 0.0;
    for (int i = 0; i < m; ++i) {
      double n = static_cast<double>(start + i);
      double w = 0.5 - 0.5 * std::cos(2.0 * kPi * i / m);
      sig[i] = std::polar(w, 2.0 * kPi * n * freqs[j] / sample_rate);
      l1 += std::abs(sig[i]);
    }
    const int lpad = (n_fft - m) / 2;
    const double renorm = L / n_fft;  // basis *= lengths / n_fft
    std::vector<std::complex<double>> padded(n_fft, 0.0);
    for (int i = 0; i < m; ++i) {
      std::complex<float> v(static_cast<float>(sig[i].real() / l1), static_cast<float>(sig[i].imag() / l1));
      padded[lpad + i] = std::complex<double>(v.real(), v.imag()) * renorm;
    }
    // FFT (direct DFT over the nonzero support), bins 0..n_fft/2.
    std::vector<std::complex<double>> row(bins);
    for (int k = 0; k < bins; ++k) {
      std::complex<double> acc = 0.0;
      for (int i = lpad; i < lpad + m; ++i) acc += padded[i] * std::polar(1.0, -2.0 * kPi * k * i / n_fft);
      row[k] = acc;
    }
    // util.sparsify_rows(quantile=sparsity): keep |x| >= the magnitude where the sorted cumulative share reaches it.
    std::vector<double> mags(bins);
    for (int k = 0; k < bins; ++k) mags[k] = std::abs(std::complex<float>(row[k]));
    std::vector<double> sorted = mags;
    std::sort(sorted.begin(), sorted.end());
    double total = std::accumulate(mags.begin(), mags.end(), 0.0), cum = 0.0;
    int idx = 0;
    for (int k = 0; k < bins; ++k) {
      cum += sorted[k] / total;
      if (!(cum < opt.sparsity)) {
        idx = k;
        break;
      }
    }
    const double scale = 1.0 / std::sqrt(L);  // cqt scale=True: C /= sqrt(lengths)
    for (int k = 0; k < bins; ++k) {
      std::complex<float> v = mags[k] >= sorted[idx] ? std::complex<float>(row[k]) : std::complex<float>(0.0f);
      basis[static_cast<size_t>(j) * bins + k] =
          std::complex<float>(static_cast<float>(v.real() * scale), static_cast<float>(v.imag() * scale));
    }
  }
  return basis;
}

}  // namespace songlines::cuda
