// Launchers of the feature engine's kernels (feature_kernels.cu). Included only by .cu files of cuda/.
// Every kernel works on a ragged batch: the frames of many tracks stored back to back, track i owning global
// frames frame_offsets[i] .. frame_offsets[i+1]-1 (frame_track[f] = i), so one launch covers the whole batch.
// Frame-major layouts throughout: a [F, dim] array holds row f = global frame f.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <cstdint>

namespace songlines::cuda {

/// Device view of a ragged batch of tracks.
struct RaggedBatch {
  const int64_t* sample_offsets = nullptr;  ///< [n_tracks+1] start of each track in the packed signal
  const int64_t* frame_offsets = nullptr;   ///< [n_tracks+1] first global frame of each track
  const int32_t* frame_track = nullptr;     ///< [frames] track of each global frame
  int64_t frames = 0;                       ///< total frames F
  int n_tracks = 0;
};

/// out[f - f0, n] = window[n] * y_pad[l*hop + n] for global frames f0 .. f0+count-1, where l is the frame's index
/// inside its track and y_pad is the track zero-padded by `pad` samples on both sides (librosa stft center=True,
/// pad_mode="constant"). window == nullptr: rectangular ("ones"). out: [count, n_fft].
void launch_frame_signal(const float* signal, RaggedBatch batch, int64_t f0, int64_t count, int n_fft, int hop,
                         int pad, const float* window, float* out, cudaStream_t stream);

/// From an R2C spectrum X [count, bins]: mag = |X| (hypot, as np.abs of complex64), power = mag^2 (librosa
/// _spectrogram: np.abs(S)**2). Either output may be nullptr. Outputs [count, bins] (already offset by the caller).
void launch_spectra(const cufftComplex* X, int64_t count, int bins, float* power, float* mag, cudaStream_t stream);

/// out = 10*log10(max(amin, x)) - ref_db elementwise over n values (librosa power_to_db before the top_db clip).
void launch_power_to_db(const float* x, int64_t n, float amin, float ref_db, float* out, cudaStream_t stream);
void launch_power_to_db(const double* x, int64_t n, double amin, double ref_db, double* out, cudaStream_t stream);

/// track_max[i] = max over track i's rows of x [F, dim] (segmented reduction; rows of a track are contiguous).
void launch_segmented_max(const float* x, RaggedBatch batch, int dim, float* track_max, cudaStream_t stream);
void launch_segmented_max(const double* x, RaggedBatch batch, int dim, double* track_max, cudaStream_t stream);
/// x = max(x, track_max[track] - top_db) (librosa power_to_db's clip against the GLOBAL max of each track).
void launch_clip_below_max(float* x, RaggedBatch batch, int dim, const float* track_max, float top_db,
                           cudaStream_t stream);
void launch_clip_below_max(double* x, RaggedBatch batch, int dim, const double* track_max, double top_db,
                           cudaStream_t stream);

/// librosa piptrack (core/pitch.py) on S [F, bins] restricted to bins k_lo .. k_hi-1 (R = k_hi - k_lo):
/// mag_key[f, r] = S + 0.5*gradient*shift at peaks, +inf elsewhere (so that a sort puts peaks first);
/// shift[f, r] = parabolic shift; peak_count[track] += number of peaks. ref = threshold_rel * max_k S[f, k].
void launch_piptrack(const float* S, RaggedBatch batch, int bins, int k_lo, int k_hi, float threshold_rel,
                     float* mag_key, float* shift, int* peak_count, cudaStream_t stream);
/// threshold[i] = np.median of the first peak_count[i] entries of track i's sorted keys (0 when none).
/// sorted: [F*R] with track i's segment starting at frame_offsets[i]*R.
void launch_track_median(const float* sorted, RaggedBatch batch, int R, const int* peak_count, float* threshold,
                         cudaStream_t stream);
/// librosa pitch_tuning histogram: for each peak with mag >= threshold[track], residual of
/// bins_per_octave*log2(f/27.5) mod 1 in [-0.5, 0.5), counted into hist[track, 100] (np.histogram with
/// edges linspace(-0.5, 0.5, 101)).
void launch_tuning_histogram(const float* mag_key, const float* shift, RaggedBatch batch, int R, int k_lo,
                             double sample_rate, int n_fft, int bins_per_octave, const float* threshold,
                             int* hist, cudaStream_t stream);
constexpr int kTuningBins = 100;

/// out[f, c] = sum_k W[m][c, k] * S[f, k], m = matrix_of_track[track] (nullptr: m = 0), negative values set to 0,
/// then each frame divided by its max over c (util.normalize norm=inf; frames with max < float tiny unchanged).
/// W: [n_matrices, n_out, bins]; out: [F, n_out].
void launch_project_norm_inf(const float* S, RaggedBatch batch, int bins, const float* W,
                             const int32_t* matrix_of_track, int n_out, float* out, cudaStream_t stream);

/// Spectral contrast bands (librosa spectral_contrast): for band b, the magnitudes S[f, band_begin[b] ..
/// band_end[b]-1] sorted ascending; valley = mean of the lowest band_q[b], peak = mean of the highest band_q[b].
/// peak, valley: [F, n_band] float64. max_band: largest band size (sizes the shared-memory sort).
void launch_contrast_bands(const float* S, int64_t frames, int bins, const int* band_begin, const int* band_end,
                           const int* band_q, int n_band, int max_band, double* peak, double* valley,
                           cudaStream_t stream);
/// out[e] = float(a[e] - b[e]) for n values.
void launch_difference(const double* a, const double* b, int64_t n, float* out, cudaStream_t stream);

/// CQT response of one octave: out[f, col0 + j] = |sum_k B[m][j, k] * D[f - f0, k]| for j < n_filters, for
/// global frames f0 .. f0+count-1 whose index inside their track is < frames_limit[track]; m = basis_of_track.
/// B: [n_basis, n_filters, bins] complex (scale and 1/sqrt(length) folded in); out: [F, out_dim].
void launch_cqt_project(const cufftComplex* D, RaggedBatch batch, int64_t f0, int64_t count, int bins,
                        const cufftComplex* B, const int32_t* basis_of_track, int n_filters,
                        const int64_t* frames_limit, float* out, int out_dim, int col0, cudaStream_t stream);

/// librosa tonnetz: chroma [F, 12] L1-normalised per frame (frames with sum < tiny unchanged), then phi @ c.
/// out: [F, 6].
void launch_tonnetz(const float* chroma, int64_t frames, float* out, cudaStream_t stream);

}  // namespace songlines::cuda
