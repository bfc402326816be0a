// Tuning estimation (librosa 0.11 core/pitch.py: estimate_tuning -> piptrack -> pitch_tuning).
#pragma once

#include "features/feature_matrix.h"

namespace songlines::features {

/// librosa.estimate_tuning(S=S^T, sr, n_fft, bins_per_octave, resolution) with piptrack's defaults
/// (fmin 150 Hz, fmax 4000 Hz, threshold 0.1, ref = per-frame max), a GLOBAL median magnitude threshold
/// over all frames, and the left edge of the first maximal bin of a `resolution`-step histogram on [-0.5, 0.5).
/// S: [frames, n_fft/2+1]; power for chroma_stft, magnitude for the CQT's tuning (the caller decides).
/// Returns the tuning as a fraction of a bin (1/bins_per_octave octave); 0.0 when no pitch survives.
double estimate_tuning(const FeatureMatrix& S, int sample_rate, int n_fft, int bins_per_octave,
                       double resolution = 0.01);

}  // namespace songlines::features
