// The device engine's backend interface (docs/cuda.md, "Two backends"): what the front end
// (src/features/device_engine.cpp) asks of one backend, in plain C++ types. The computation behind it is written
// once in mel_chain.inl and compiled twice: by the host compiler on Thrust's OpenMP backend
// (host_backend.cpp, always built) and by nvcc on Thrust's CUDA backend (cuda/device_engine_backend.cu).
// No CUDA or Thrust header here: the front end and the CPU-only build include this file.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "features/device_engine/copy_bandwidth.h"
#include "features/device_engine/staging.h"

namespace songlines::features::device_engine {

/// Constants of one engine configuration, built in src/features from the reference's own definitions
/// (periodic_hann, MelFilterbank, MfccTransform) and uploaded once.
struct ChainConstants {
  int64_t n_fft = 0;
  int64_t hop_length = 0;
  int64_t pad = 0;              ///< n_fft / 2 when centred, else 0 (librosa stft pad_mode "constant")
  int64_t n_mels = 0;
  int64_t n_mfcc = 0;
  float amin = 0.0f;            ///< power_to_db floor
  double ref_db = 0.0;          ///< 10 log10(max(amin, |ref|))
  double top_db = 0.0;          ///< clip below max - top_db; <= 0: no clip
  std::vector<double> window;   ///< [n_fft] periodic Hann (float64; rounded to float32 for a float32 FFT)
  /// Frames and FFT in float64, as the reference (then rounded to complex64 as librosa): needed by
  /// spectral_contrast, whose valleys in quiet bands sit at the float32 FFT's rounding floor (~1e-7 of the
  /// frame's peak), where a float32 FFT moves them by several dB. false: float32 frames and FFT.
  bool fft_float64 = false;
  std::vector<float> mel;       ///< [n_mels, n_fft/2+1] Slaney mel filterbank
  std::vector<float> dct;       ///< [n_mfcc, n_mels] DCT-II ortho basis, liftering folded in
  int64_t n_chroma = 0;         ///< 0: chroma_stft not requested (filterbanks come with each batch: BatchPiece)
  // librosa estimate_tuning (src/features/tuning.cpp) for chroma_stft's estimated tuning: piptrack's band, the
  // pitch_tuning histogram edges (float64) and the octave's division. Empty edges: no tuning estimated.
  int64_t sample_rate = 0;
  int64_t tuning_k_lo = 0;           ///< piptrack band [tuning_k_lo, tuning_k_hi) of the n_bins spectrum
  int64_t tuning_k_hi = 0;
  int64_t bins_per_octave = 12;      ///< chroma_stft.n_chroma
  float tuning_threshold = 0.0f;     ///< piptrack threshold, relative to the frame max (kPiptrackThreshold)
  std::vector<double> tuning_edges;  ///< [n_hist + 1] np.linspace(-0.5, 0.5, ceil(1/resolution) + 1)
  // spectral_contrast (src/features/spectral_contrast.cpp): the octave bands of spectral_contrast_bands() (bins
  // [begin, end) of band k, q lowest / highest averaged) and power_to_db's options for the peak and valley arrays
  // (kSpectralContrastDb). Empty bands: spectral_contrast not requested.
  std::vector<int64_t> contrast_begin, contrast_end, contrast_q;  ///< [n_bands + 1] each
  double contrast_amin = 0.0;    ///< power_to_db floor (float64: the reference's peak and valley are float64)
  double contrast_ref_db = 0.0;  ///< 10 log10(max(amin, |ref|))
  double contrast_top_db = 0.0;  ///< clip below each array's own per-track max - top_db; <= 0: no clip
  int64_t cqt_bins_per_octave = 36;  ///< the CQT's estimate_tuning (on the MAGNITUDE): cqt.bins_per_octave
  // The CQT family (cqt_n_bins 0: not requested). The per-tuning constants (octave bases, lengths) come with each
  // batch (CqtBank); these do not depend on the tuning.
  int64_t cqt_n_bins = 0;
  int64_t cqt_n_chroma = 0;             ///< chroma_cqt.n_chroma (0: no chroma_cqt or tonnetz wanted)
  std::vector<float> cq_to_chroma;      ///< [cqt_n_chroma, cqt_n_bins] 0/1 (filters.cq_to_chroma)
  float chroma_cqt_threshold = 0.0f;    ///< chroma_cqt values below are zeroed
  std::vector<double> tonnetz_phi;      ///< [6, n_chroma of tonnetz's chroma] tonnetz_phi (empty: no tonnetz)
  int64_t n_bins() const { return n_fft / 2 + 1; }
  int64_t n_contrast() const { return static_cast<int64_t>(contrast_q.size()); }
};

/// One CQT octave's geometry (cqt_octave_plan): frames of n_fft samples of the octave's signal y_i, centred, hop
/// `hop`, projected on n_filters filters that fill output bins [first_bin, first_bin + n_filters).
struct CqtOctaveGeometry {
  int64_t n_fft = 0;
  int64_t hop = 0;
  int64_t first_bin = 0;
  int64_t n_filters = 0;
  bool decimate_after = false;  ///< y_{i+1} = decimation of y_i (else y_{i+1} = y_i)
  bool operator==(const CqtOctaveGeometry&) const = default;
};

/// The CQT's constants at one tuning, built on the host from cqt_octave_plan (src/features/cqt.h).
struct CqtBank {
  /// librosa's __early_downsample: y_0 is the track resampled by 1/early_downsample_factor on the host (the
  /// reference's libsoxr resampler, scale=True) before the octaves; 1: y_0 is the track.
  int64_t early_downsample_factor = 1;
  std::vector<CqtOctaveGeometry> octaves;  ///< top octave first (hops at y_0's rate)
  /// Per octave [2 n_filters, 2 (n_fft/2+1)] float32, the complex64 basis B in real form for a spectrum stored
  /// (re, im) interleaved: row 2r = (Re B_r, -Im B_r) interleaved, row 2r+1 = (Im B_r, Re B_r), so that
  /// response [rows, 2 n_filters] = spectrum [rows, 2 (n_fft/2+1)] @ basis^T is (re, im) of basis_r . D.
  std::vector<std::vector<float>> basis;
  /// Per octave, the FFT bins [band_begin, band_end) holding every nonzero of the basis (the GEMM reads only these).
  std::vector<int64_t> band_begin, band_end;
  std::vector<double> inv_sqrt_length;  ///< [cqt_n_bins] 1 / sqrt(filter length)
};

/// The part of one octave's signal a CQT piece's frames read: y_i has `length` samples (y_0's, halved at each
/// decimation); the piece's frames read [begin, end) of it (the rest is their zero padding).
struct CqtOctaveSpan {
  int64_t length = 0;
  int64_t begin = 0;
  int64_t end = 0;
};

/// A run of CQT frames [frame_begin, frame_begin + n_frames) of one track (hop 512 at the track's rate).
struct CqtPiece {
  const CqtBank* bank = nullptr;     ///< constants at the track's CQT tuning (host)
  std::vector<CqtOctaveSpan> spans;  ///< per octave
  /// per octave, host: y_i[spans[i].begin, spans[i].end) (y_0 the track, or its early downsampling; y_{i+1} =
  /// cqt_decimate_octave(y_i), the reference's libsoxr decimator run on the host over the whole track, or y_i
  /// when octave i does not decimate)
  std::vector<const float*> signals;
  int64_t frame_begin = 0;
  int64_t n_frames = 0;              ///< >= 1
  // Host destinations at row frame_begin of the track's matrices; nullptr: not wanted.
  float* cqt_mag = nullptr;          ///< [n_frames, cqt_n_bins]
  float* chroma = nullptr;           ///< [n_frames, cqt_n_chroma] chroma_cqt
  float* tonnetz = nullptr;          ///< [n_frames, 6] tonnetz of chroma_cqt
};

/// One batch of CQT pieces; every piece's bank has the same octave geometry.
struct CqtBatchRequest {
  std::vector<CqtPiece> pieces;
  bool poison = false;
};

/// One track's piptrack peaks (estimate_tuning's candidates: pitch > 0), gathered over its pieces: the peak
/// magnitude (float32, as piptrack's mags) and its pitch_tuning histogram bin (n_hist: outside the edges).
/// The order does not matter (median and histogram).
struct TuningCandidates {
  std::vector<float> mag;
  std::vector<int32_t> bin;
};

/// Whether a piece holds a whole track (its power_to_db max is known inside the batch) or one chunk of a track
/// longer than the batch budget (the max is known only after its last chunk: see MelChain::finish_track).
enum class PieceKind { kWholeTrack, kChunk };

/// One contiguous run of frames of one track inside a batch, with the host rows its outputs go to.
struct BatchPiece {
  PieceKind kind = PieceKind::kWholeTrack;
  const float* samples = nullptr;  ///< host: the track's samples [sample_begin, sample_begin + n_samples)
  int64_t track_samples = 0;       ///< length of the whole track (samples)
  int64_t sample_begin = 0;        ///< first sample the piece's frames read (track index)
  int64_t n_samples = 0;           ///< samples the piece's frames read
  int64_t frame_begin = 0;         ///< first frame (track index)
  int64_t n_frames = 0;            ///< >= 1
  // Host destinations, each pointing at row frame_begin of the track's [frames, dim] matrix; nullptr: not wanted.
  float* magnitude = nullptr;      ///< [n_frames, n_bins] |X|
  float* melspectrogram = nullptr; ///< [n_frames, n_mels] S_pow @ W^T
  float* mel_db = nullptr;         ///< [n_frames, n_mels] power_to_db (kChunk: NOT yet clipped)
  float* mfcc = nullptr;           ///< [n_frames, n_mfcc] (ignored for kChunk: finish_track writes it)
  float* chroma = nullptr;         ///< [n_frames, n_chroma] chroma_stft (row-local: written for chunks too)
  float* tonnetz = nullptr;        ///< [n_frames, 6] tonnetz of this chroma_stft (tonnetz_chroma = stft)
  const float* chroma_bank = nullptr;  ///< host [n_chroma, n_bins] filterbank at the track's tuning (with chroma)
  TuningCandidates* tuning = nullptr;  ///< append the piece's piptrack peaks here; nullptr: not wanted
  float* contrast = nullptr;           ///< [n_frames, n_contrast] spectral_contrast (kWholeTrack only)
  /// kChunk with spectral_contrast: [n_frames, n_contrast] power_to_db of the peak and of the valley, NOT yet
  /// clipped (float64, as the reference); finish_contrast turns them into the contrast after the last chunk.
  double* contrast_peak_db = nullptr;
  double* contrast_valley_db = nullptr;
  /// append the piece's piptrack peaks of the MAGNITUDE at cqt_bins_per_octave (the CQT's tuning) here
  TuningCandidates* cqt_tuning = nullptr;
};

/// Per piece, the maxima of the unclipped power_to_db arrays that are clipped per track (NaN where the piece
/// computes no such array): a chunked track's clip floor is the max over its chunks.
struct PieceMaxima {
  std::vector<float> mel_db;            ///< power_to_db(mel)
  std::vector<double> contrast_peak;    ///< spectral_contrast's power_to_db(peak)
  std::vector<double> contrast_valley;  ///< spectral_contrast's power_to_db(valley)
};

/// What one batch computes (which intermediate stages run depends on which destinations are set).
struct BatchRequest {
  std::vector<BatchPiece> pieces;
  bool poison = false;  ///< fill every device output with NaN first (tests: an unwritten element then fails)
};

/// One backend's implementation of the STFT -> mel -> mel_db -> MFCC chain.
class Chain {
 public:
  virtual ~Chain() = default;
  /// Runs one ragged batch; returns the maxima of each piece's unclipped dB arrays, in piece order.
  virtual PieceMaxima run_batch(const BatchRequest& request) = 0;
  /// A chunked track's last step: mel_db rows (host, unclipped, [rows, n_mels]) are clipped in place at
  /// track_max_db - top_db and, when mfcc is set, mfcc [rows, n_mfcc] = mel_db @ dct^T; at most max_rows rows on
  /// the device at a time.
  virtual void finish_track(float* mel_db, float* mfcc, int64_t rows, float track_max_db, int64_t max_rows,
                            bool poison) = 0;
  /// A chunked track's spectral_contrast: contrast [rows, n_contrast] = max(peak_db, peak_max - top_db) -
  /// max(valley_db, valley_max - top_db) from the host arrays of its chunks; at most max_rows rows at a time.
  virtual void finish_contrast(const double* peak_db, const double* valley_db, float* contrast, int64_t rows,
                               double peak_max, double valley_max, int64_t max_rows, bool poison) = 0;
  /// estimate_tuning's reduction of each track's candidates (constants' tuning edges; the median of all the
  /// track's magnitudes, then the argmax of the histogram of the bins of those at or above it), exact whatever
  /// the number of candidates: they are streamed through the device at most max_elements at a time.
  virtual std::vector<double> estimate_tunings(const std::vector<const TuningCandidates*>& tracks,
                                               int64_t max_elements) = 0;
  /// The CQT family of one batch of CQT pieces: octave by octave, the pieces' spans of y_i uploaded, framing,
  /// float64 FFT rounded to complex64, basis GEMM, scale and |.|; then chroma_cqt and tonnetz.
  virtual void run_cqt_batch(const CqtBatchRequest& request) = 0;
  /// Delivers every batch's results still in the staging to their host rows (staging.h); the front end calls it
  /// before it reads rows that run_batch or run_cqt_batch wrote (and after each pass). Until then the results of
  /// the last batch or two may not be there yet.
  virtual void drain() = 0;
  /// Forgets the results not delivered yet (waits for their copies): after an error, when their host rows may be
  /// gone. Never throws.
  virtual void discard() noexcept = 0;
  /// Best of a few copies of `bytes` bytes: host -> device, device -> device (Thrust copies of device vectors,
  /// synchronous), device -> host (copy_bandwidth.h).
  virtual CopyBandwidth measure_copy_bandwidth(int64_t bytes) = 0;
};

/// Host backend (Thrust OpenMP, FFTW float32 and float64, cblas); always built. copies: the result staging's
/// CopyQueue (staging.h); nullptr: HostCopyQueue (the tests pass a DeferredCopyQueue).
std::unique_ptr<Chain> make_host_chain(const ChainConstants& constants, std::unique_ptr<CopyQueue> copies = nullptr);
/// CUDA backend (Thrust CUDA, cuFFT, cuBLAS) on device `ordinal`. Throws Error in a build without CUDA and
/// DeviceError when the device cannot be used.
std::unique_ptr<Chain> make_cuda_chain(const ChainConstants& constants, int ordinal);
/// True when this binary holds the CUDA backend.
bool cuda_chain_built();

}  // namespace songlines::features::device_engine
