// Host-side constant matrices the CUDA engine uploads: window, mel and chroma filterbanks, DCT basis, spectral
// contrast bands, cq_to_chroma, and the CQT's FFT-domain filter basis. Built in float64 following librosa 0.11
// (cited per function), stored as librosa stores them. An independent implementation from the CPU engine's, so
// the CUDA-vs-CPU tests also cross-check the filterbanks.
#pragma once

#include <complex>
#include <vector>

#include "features/feature_options.h"

namespace songlines::cuda {

/// scipy.signal.get_window("hann", n, fftbins=True): periodic Hann, [n].
std::vector<float> periodic_hann_f32(int n);

/// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney"): [n_mels, n_fft/2+1] row-major.
std::vector<float> mel_filterbank(int sample_rate, int n_fft, const features::MelOptions& opt);

/// scipy.fft.dct(type=2, norm="ortho") rows 0..n_mfcc-1 as a [n_mfcc, n_mels] matrix, liftering folded in
/// (librosa.feature.mfcc: M *= 1 + (L/2) sin(pi (k+1) / L) when lifter > 0).
std::vector<float> dct_ortho_basis(int n_mels, const features::MfccOptions& opt);

/// librosa.filters.chroma(sr, n_fft, n_chroma, tuning, ctroct=5, octwidth=2, norm=2, base_c=True):
/// [n_chroma, n_fft/2+1].
std::vector<float> chroma_filterbank(int sample_rate, int n_fft, int n_chroma, double tuning);

/// librosa.filters.cq_to_chroma(n_input, bins_per_octave, n_chroma, fmin): [n_chroma, n_input].
std::vector<float> cq_to_chroma(int n_input, int bins_per_octave, int n_chroma, double fmin);

/// Bands of librosa.feature.spectral_contrast: band b uses bins [begin[b], end[b]) (the top bin of bands below the
/// last already dropped) and averages the q[b] lowest / highest values.
struct ContrastBands {
  std::vector<int> begin, end, q;
  int max_size = 0;
};
ContrastBands contrast_bands(int sample_rate, int n_fft, const features::SpectralContrastOptions& opt);

/// The CQT geometry at librosa's defaults as used by chroma_cqt (no early downsampling, full octaves).
struct CqtGeometry {
  int n_octaves = 0;     ///< n_bins / bins_per_octave
  int n_fft = 0;         ///< FFT size of every octave's response (2^ceil(log2(longest filter)))
  int hop = 0;           ///< hop of the top octave (= stft hop); octave i uses hop >> i
};
/// Throws UsageError for options whose librosa code path the engine does not implement (early downsampling,
/// partial octaves, a hop not divisible by 2^(n_octaves-1)).
CqtGeometry cqt_geometry(int sample_rate, int hop, const features::CqtOptions& opt);

/// FFT-domain basis of one octave (librosa constantq.py: __vqt_filter_fft with filters.wavelet, sparsify_rows),
/// for tuning `tuning` (fraction of a CQT bin): [bins_per_octave, n_fft/2+1] complex, already multiplied by
/// 1/sqrt(length_j) (cqt scale=True; the sqrt(sr/sr_i) of lower octaves cancels against their longer lengths,
/// so every octave uses this same matrix).
std::vector<std::complex<float>> cqt_octave_basis(int sample_rate, const features::CqtOptions& opt, int n_fft,
                                                  double tuning);

}  // namespace songlines::cuda
