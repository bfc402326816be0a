// Tonal centroid features (librosa 0.11 feature/spectral.py: tonnetz; Harte, Sandler & Gasser 2006).
#pragma once

#include <vector>

#include "features/feature_matrix.h"

namespace songlines::features {

/// librosa's tonnetz projection phi: [6, n_chroma] row-major, float64: rows
/// sin/cos(7 pi c/6) (fifths), sin/cos(3 pi c/2) (minor thirds), 0.5 sin/cos(2 pi c/3) (major thirds),
/// with c = linspace(0, 12, n_chroma, endpoint=False).
std::vector<double> tonnetz_phi(int n_chroma);

/// tonnetz = phi @ (chroma / L1 norm per frame) (frames whose L1 norm is below float32 tiny are used
/// unnormalised, as librosa's util.normalize leaves them). chroma: [T, n_chroma]; result [T, 6].
FeatureMatrix tonnetz_from_chroma(const FeatureMatrix& chroma);

}  // namespace songlines::features
