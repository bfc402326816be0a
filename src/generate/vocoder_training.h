// Training of the neural vocoder (models/vocoder.h) on waveforms: random crops of `segment_frames` frames, their
// log-mel by generate/mel_spectrogram.h mel_db of the whole clip (the same log-mel the VAE decodes, top_db relative
// to the clip's maximum as in the shards), and the losses
//   multi-resolution STFT: per FFT size n (hop n/4, Hann), spectral convergence ||X - Y||_F / ||X||_F plus
//   mean |log X - log Y| (magnitudes floored at 1e-5), averaged over the sizes; plus
//   mel_weight * mean |ln max(W |Y|^2, 1e-5) - ln max(W |X|^2, 1e-5)| (W: the mel basis, at the mel's n_fft/hop).
// Adam, seeded, with an optional warm-up and cosine decay of the learning rate; no adversarial losses. The trainer's whole state (weights, Adam, crop generator, step) is saved
// and restored so that a resumed run continues exactly where a checkpoint left it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "generate/vocoder_bundle.h"

namespace songlines::generate {

struct VocoderTrainOptions {
  int64_t steps = 3000;              ///< optimiser steps
  int batch_size = 8;                ///< crops per step
  int segment_frames = 32;           ///< frames per crop (32 x 512 samples = 0.74 s at 22050 Hz)
  double learning_rate = 5e-4;       ///< Adam
  double grad_clip = 10.0;           ///< global gradient-norm clip (0: off)
  double mel_weight = 1.0;           ///< weight of the mel L1 term beside the MR-STFT terms
  std::vector<int> fft_sizes = {512, 1024, 2048};  ///< MR-STFT resolutions (hop n/4)
  std::string lr_schedule = "constant";  ///< "constant", or "cosine": learning_rate decayed to 0 at `steps`
  int64_t warmup_steps = 0;          ///< linear ramp of the learning rate over the first steps (both schedules)
  int64_t log_every = 100;           ///< steps between metrics records
  uint64_t seed = 0;                 ///< weights and crops
  std::string device = "auto";       ///< cpu, cuda or auto

  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("steps", s.steps);
    v("batch_size", s.batch_size);
    v("segment_frames", s.segment_frames);
    v("learning_rate", s.learning_rate);
    v("grad_clip", s.grad_clip);
    v("mel_weight", s.mel_weight);
    v("fft_sizes", s.fft_sizes);
    v("log_every", s.log_every);
    // The schedule keys only when set: a run directory made before they existed keeps its config's identity.
    v("lr_schedule", s.lr_schedule, kOmitDefault);
    v("warmup_steps", s.warmup_steps, kOmitDefault);
    v("seed", s.seed);
    v("device", s.device);
  }
  Json to_json() const;
  static VocoderTrainOptions from_json(const Json& j, const std::string& path = "train");
  /// ConfigError naming path when a value is out of range.
  void validate(const std::string& path) const;
};

/// One training waveform (mono, at the mel's sample rate).
struct AudioClip {
  std::string id;
  torch::Tensor samples;  ///< [n] float32 (CPU)
};

/// The learning rate of the optimiser step that takes the trainer from `step` to step + 1 (0-based): a linear
/// warm-up over warmup_steps, then learning_rate ("constant") or learning_rate * (1 + cos(pi t)) / 2 with t the
/// fraction of the steps after the warm-up already taken ("cosine").
double vocoder_learning_rate(const VocoderTrainOptions& o, int64_t step);

struct VocoderLoss {
  torch::Tensor total;       ///< mr_stft + mel_weight * mel
  torch::Tensor mr_stft;     ///< mean over resolutions of spectral convergence + log magnitude
  torch::Tensor mel;         ///< mel L1 (natural log units)
};

/// The loss of estimate against reference, both [B, n] (see the header comment).
VocoderLoss vocoder_loss(const torch::Tensor& reference, const torch::Tensor& estimate, const MelAnalysisOptions& audio,
                         const VocoderTrainOptions& o);

/// A metrics record every log_every steps (and at the end): step, loss, mr_stft, mel, learning_rate (of the last
/// step), crops_per_s.
using VocoderMetricsCallback = std::function<void(const Json& record)>;

class VocoderTrainer {
 public:
  /// Computes each clip's mel_db once, fits the per-band normalisation on the training frames and builds the
  /// model (weights seeded by o.seed). InputError when no clip has segment_frames frames.
  VocoderTrainer(const std::vector<AudioClip>& train, const models::VocoderOptions& arch, const MelAnalysisOptions& audio,
                 const VocoderTrainOptions& o);
  /// Trains until step `until` (<= o.steps), calling on_metrics every log_every steps.
  void train_until(int64_t until, const VocoderMetricsCallback& on_metrics = {});
  int64_t step() const { return step_; }
  /// The model as it stands (eval mode is set by the caller when it synthesises).
  VocoderBundle& bundle() { return bundle_; }
  /// Writes the weights, Adam's state and trainer.json (step, crop generator) under dir/checkpoints; trainer.json
  /// is written last, so its presence marks a complete checkpoint.
  void save_checkpoint(const std::filesystem::path& dir) const;
  /// Restores a checkpoint written by save_checkpoint for the same config; false when dir has none (no
  /// trainer.json). InputError naming the file when it is unreadable.
  bool restore_checkpoint(const std::filesystem::path& dir);

 private:
  struct Clip {
    torch::Tensor samples;  // [n]
    torch::Tensor mel_db;   // [frames, n_mels]
  };
  std::vector<Clip> clips_;
  std::vector<size_t> usable_;  // clips with at least segment_frames frames
  VocoderTrainOptions options_;
  VocoderBundle bundle_;
  std::unique_ptr<torch::optim::Adam> opt_;
  std::mt19937_64 rng_;
  int64_t step_ = 0;
};

inline constexpr const char* kVocoderTrainerStateFile = "checkpoints/trainer.json";
inline constexpr const char* kVocoderOptimizerFile = "checkpoints/vocoder_adam.pt";

/// Trains from scratch to o.steps and returns the model (eval mode): the in-memory form of the vocoder task.
VocoderBundle train_vocoder(const std::vector<AudioClip>& train, const models::VocoderOptions& arch,
                            const MelAnalysisOptions& audio, const VocoderTrainOptions& o,
                            const VocoderMetricsCallback& on_metrics = {});

}  // namespace songlines::generate
