// A trained vocoder (models/vocoder.h) with what synthesis needs, saved in and loaded from a run directory alone:
// checkpoints/vocoder.json (model options, the mel analysis it was trained on) and checkpoints/vocoder.pt
// (weights and the per-band input normalisation). A VAE bundle may carry one (VaeBundle::vocoder): its audio
// then comes from the vocoder instead of NNLS + Griffin-Lim (generate/vae_generator.h mel_db_to_audio).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "generate/mel_spectrogram.h"
#include "models/vocoder.h"

namespace songlines::generate {

struct VaeBundle;

struct VocoderBundle {
  models::VocoderOptions model_options;
  MelAnalysisOptions audio;  ///< the mel the vocoder reads (must equal the VAE's)
  models::Vocoder net{nullptr};
  torch::Device device = torch::kCPU;
  std::filesystem::path run_dir;  ///< where it was loaded from (empty for one made in memory)

  /// mel_db [frames, n_mels] -> waveform [length] float32 on the CPU (no gradient); length in
  /// [(frames-1)*hop, frames*hop).
  torch::Tensor synthesize(const torch::Tensor& mel_db, int64_t length) const;
};

inline constexpr const char* kVocoderConfigFile = "checkpoints/vocoder.json";
inline constexpr const char* kVocoderWeightsFile = "checkpoints/vocoder.pt";
/// The value of --vocoder (and of a VAE config's "vocoder") that asks for NNLS + Griffin-Lim.
inline constexpr const char* kGriffinLimVocoder = "griffin-lim";

/// Model options of a vocoder for a mel analysis (n_mels, n_fft, hop_length taken from it; the rest from arch).
models::VocoderOptions vocoder_options_for(const MelAnalysisOptions& audio, models::VocoderOptions arch = {});

/// Writes both checkpoint files under dir (atomically: temporary names, then rename).
void save_vocoder_bundle(const VocoderBundle& bundle, const std::filesystem::path& dir);
/// Loads a directory written by save_vocoder_bundle; InputError naming the file when it is missing or bad.
std::shared_ptr<VocoderBundle> load_vocoder_bundle(const std::filesystem::path& dir, const torch::Device& device);

/// Sets the VAE bundle's audio path: "griffin-lim" (NNLS + Griffin-Lim) or a vocoder run directory, whose mel
/// analysis must equal the VAE's (InputError naming both otherwise).
void select_vocoder(VaeBundle& vae, const std::string& choice);

}  // namespace songlines::generate
