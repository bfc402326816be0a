// A trained VAE with everything generation needs, saved in and loaded from a run directory alone:
// checkpoints/vae.json (model options, audio analysis options, per-band normalisation, default place) and
// checkpoints/vae.pt (weights, torch archive).
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "generate/mel_spectrogram.h"
#include "generate/vocoder_bundle.h"
#include "geo/great_circle.h"
#include "models/vae.h"

namespace songlines::generate {

struct VaeBundle {
  models::VaeOptions model_options;
  MelAnalysisOptions audio;
  torch::Tensor band_mean;  ///< [n_mels] mel_db mean per band over the training frames
  torch::Tensor band_std;   ///< [n_mels] std per band (floored)
  geo::LatLon default_place;  ///< spherical centroid of the training places (reconstruct's default condition)
  models::ConditionalVae net{nullptr};
  torch::Device device = torch::kCPU;
  /// The learned vocoder audio comes from (generate/vocoder_bundle.h); null: NNLS + Griffin-Lim. Loaded from
  /// the run directory named by vae.json's "vocoder" (written when the VAE config names one).
  std::shared_ptr<VocoderBundle> vocoder;

  /// mel_db [frames, n_mels] -> normalised [1, 1, n_mels, frames] on the device.
  torch::Tensor normalise(const torch::Tensor& mel_db) const;
  /// [B, 1, n_mels, frames] normalised -> mel_db [B, frames, n_mels].
  torch::Tensor denormalise(const torch::Tensor& x) const;
};

inline constexpr const char* kVaeConfigFile = "checkpoints/vae.json";
inline constexpr const char* kVaeWeightsFile = "checkpoints/vae.pt";

/// Writes both checkpoint files under run_dir (atomically: temporary names, then rename).
void save_vae_bundle(const VaeBundle& bundle, const std::filesystem::path& run_dir);
/// Loads a run directory written by save_vae_bundle; InputError naming the file when it is missing or bad.
/// vocoder: "" loads the vocoder vae.json names (none: Griffin-Lim); otherwise select_vocoder(bundle, vocoder).
VaeBundle load_vae_bundle(const std::filesystem::path& run_dir, const torch::Device& device,
                          const std::string& vocoder = "");

}  // namespace songlines::generate
