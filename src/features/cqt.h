// Constant-Q transform magnitude and chroma_cqt, librosa 0.11-exact on the CPU (FFTW + libsoxr).
// References: librosa/core/constantq.py (cqt -> vqt with gamma=0, __vqt_filter_fft, __cqt_response,
// __early_downsample, __trim_stack), librosa/filters.py (wavelet, wavelet_lengths, _relative_bandwidth,
// cq_to_chroma), librosa/feature/spectral.py (chroma_cqt); shared/golden/LIBROSA_DEFINITIONS.md "cqt".
//
// Algorithm (scale=True, window "hann", norm 1, pad_mode "constant", res_type "soxr_hq"):
// octaves are processed top-down; octave i sees y_i (y decimated 2:1 i times with libsoxr HQ, scale=True),
// hop 512/2^i, and one sparse FFT basis [bins_per_octave, n_fft/2+1] applied to the rectangular-window,
// centred, zero-padded rfft frames of y_i; bins are divided by sqrt(filter length at the original rate).
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Centre frequencies (Hz) of the n_bins CQT bins: fmin * 2^(tuning/bpo) * 2^(j/bpo), j = 0..n_bins-1
/// (librosa interval_frequencies(intervals="equal")).
std::vector<double> cqt_frequencies(const CqtOptions& opt, double tuning);

/// Filter lengths (samples at sample_rate, fractional) of every bin: filter_scale / alpha_j * sr / f_j
/// (librosa filters.wavelet_lengths with alpha = _relative_bandwidth(freqs), gamma 0).
std::vector<double> cqt_filter_lengths(const CqtOptions& opt, int sample_rate, double tuning);

/// One octave's sparsified FFT filter basis (librosa constantq.py: __vqt_filter_fft), stored densely:
/// basis[r * (n_fft/2+1) + k] for filter r (low to high) and rfft bin k; dropped entries are exactly 0.
struct CqtOctaveBasis {
  int n_fft = 0;                                ///< FFT size of the octave's frames
  int n_filters = 0;                            ///< rows
  std::vector<std::complex<float>> dense;       ///< [n_filters, n_fft/2+1], complex64 as librosa stores it
};

/// The FFT basis of the octave whose centre frequencies are `freqs` (Hz) at rate `octave_sr`, without the
/// sqrt(sr/octave_sr) downsampling compensation. alpha: relative bandwidth per filter (same length as freqs).
CqtOctaveBasis cqt_octave_basis(const std::vector<double>& freqs, const std::vector<double>& alpha,
                                double octave_sr, const CqtOptions& opt);

/// Relative bandwidths alpha_j of librosa filters._relative_bandwidth(freqs) (needs >= 2 freqs).
std::vector<double> cqt_relative_bandwidth(const std::vector<double>& freqs);

/// One octave step of the CQT: librosa resample(x, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True),
/// i.e. libsoxr HQ 2:1 decimation to ceil(n/2) samples divided by float32(sqrt(0.5)); the same samples as
/// audio::resample(x, n, 2, 1, ResampleScale::kEnergy), computed in chunks with one reused soxr instance.
std::vector<float> cqt_decimate_octave(const float* x, int64_t n);

/// |cqt(y, sr, hop_length=512, fmin, n_bins, bins_per_octave, tuning)|: [T, n_bins] float32,
/// T = 1 + n / 512 (the minimum over octaves of their frame counts). `tuning` is in fractions of a bin
/// (opt.tuning is ignored here; the caller resolves it, e.g. with estimate_tuning on |stft|).
/// Thread-safe; filter bases and FFT plans are cached per (sample_rate, options, tuning).
/// Throws UsageError when the top filter's cutoff exceeds Nyquist or the options are invalid.
///
/// Precision of the frames' FFTs (librosa's is float64, rounded to complex64 before the basis):
/// - kMixed (default): float32 FFTs, and float64 again for every frame whose estimated float32 error is not below
///   1e-4 of the frame's largest output (summed over its bins); on music that is almost no frame, on signals with
///   most of their energy outside the CQT's range it is most. See docs/benchmarks.md for the calibration.
/// - kFloat64: every frame in float64 (the reference kMixed is tested against).
/// exact_frames (optional) receives how many frames were computed in float64.
enum class CqtFftPrecision { kMixed, kFloat64 };
FeatureMatrix cqt_magnitude(const float* y, int64_t n, int sample_rate, const CqtOptions& opt, double tuning,
                            CqtFftPrecision precision = CqtFftPrecision::kMixed, int64_t* exact_frames = nullptr);

/// cqt_magnitude of one track, row block by row block in bounded memory: the rows equal cqt_magnitude's bit for
/// bit, however the blocks are cut (cqt_magnitude is one block of all rows). The signal goes through the octaves
/// as a stream: each octave keeps a window of its padded signal from the next row to return to the newest sample,
/// the 2:1 decimations (and the early downsampling) are libsoxr streams whose output does not depend on how the
/// input is cut, and the float32 error bound of a frame uses the octave's running prefix energy, as cqt_magnitude
/// computes it. Memory: O(rows per block + the octaves' filter and resampler delays), not O(n).
/// y must stay valid and unchanged while the stream is used. Not thread-safe (one stream per thread).
class CqtStream {
 public:
  /// Same arguments and errors as cqt_magnitude.
  CqtStream(const float* y, int64_t n, int sample_rate, const CqtOptions& opt, double tuning,
            CqtFftPrecision precision = CqtFftPrecision::kMixed);
  ~CqtStream();
  CqtStream(const CqtStream&) = delete;
  CqtStream& operator=(const CqtStream&) = delete;

  /// T = 1 + n / 512: rows of the whole track.
  int64_t frames() const;
  /// Rows returned so far.
  int64_t next_row() const;
  /// The next `rows` rows (1 <= rows <= frames() - next_row()) into out, resized to [rows, n_bins].
  void next(int64_t rows, FeatureMatrix& out);
  /// Rows computed in float64 so far (cqt_magnitude's exact_frames).
  int64_t exact_frames() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// librosa filters.cq_to_chroma(n_bins, bins_per_octave, n_chroma, fmin): [n_chroma, n_bins] row-major, 0/1.
std::vector<float> cq_to_chroma(const CqtOptions& cqt, int n_chroma);

/// chroma_cqt from a CQT magnitude (librosa feature/spectral.py: chroma_cqt with C given, norm=inf):
/// chroma = cq_to_chroma @ C, values < threshold zeroed, each frame divided by its max (frames whose max is
/// below float32 tiny are left as they are). cqt_mag: [T, n_bins]; result [T, n_chroma].
FeatureMatrix chroma_cqt_from_cqt(const FeatureMatrix& cqt_mag, const CqtOptions& cqt, const ChromaCqtOptions& opt);

/// The octave plan cqt_magnitude and CqtStream run for (sample_rate, opt, tuning), for engines that compute the same
/// transform elsewhere (the device engine, src/features/device_engine.cpp): the reference's own plan (cached_plan),
/// read back, not rebuilt. Its octave signals are the reference's: y_{i+1} = cqt_decimate_octave(y_i), the same
/// libsoxr stream (SoxrDecimator) CqtStream feeds block by block, run over the whole of y_i.
struct CqtOctavePlan {
  struct Octave {
    double sr = 0.0;              ///< rate of the octave's signal y_i (Hz)
    int hop = 0;                  ///< hop at that rate (samples)
    bool decimate_after = false;  ///< y_{i+1} = cqt_decimate_octave(y_i); else y_{i+1} = y_i
    int first_bin = 0;            ///< output bins [first_bin, first_bin + n_filters)
    int n_fft = 0;                ///< FFT size of the octave's rectangular, centred frames
    int n_filters = 0;
    /// [n_filters, n_fft/2+1] complex64, dense (dropped entries exactly 0), already scaled by sqrt(sr / sr_i)
    /// as cqt_magnitude applies it.
    std::vector<std::complex<float>> basis;
  };
  int early_downsample_factor = 1;      ///< 2^count of librosa's __early_downsample (1: none)
  std::vector<Octave> octaves;          ///< top octave first
  std::vector<double> inv_sqrt_length;  ///< [n_bins] 1 / sqrt(filter length), the final scale of every bin
};
CqtOctavePlan cqt_octave_plan(int sample_rate, const CqtOptions& opt, double tuning);

}  // namespace songlines::features
