// Training of the coordinate-conditioned VAE (models/vae.h) on mel_db crops with their tracks' places, on the
// CPU or CUDA (torch_compat::resolve_device). Used by `songlines train-vae` (src/runs/vae_run.h) and by
// tests on in-memory synthetic sets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "generate/mel_crop_source.h"
#include "generate/vae_bundle.h"
#include "models/torch_compat.h"

namespace songlines::generate {

struct VaeTrainOptions {
  int64_t steps = 2000;          ///< optimiser steps
  int batch_size = 16;           ///< crops per step
  double learning_rate = 1e-3;   ///< Adam
  double grad_clip = 5.0;        ///< global gradient-norm clip (0: off)
  int64_t log_every = 100;       ///< steps between metrics records
  uint64_t seed = 0;             ///< weights, crops and noise
  std::string device = "auto";   ///< cpu, cuda or auto
  /// Arithmetic of the training steps (torch_compat::Precision): fp32, tf32 (CUDA tensor cores; same as fp32
  /// on a CPU) or bf16 (autocast). Validation and everything after training run in float32.
  torch_compat::Precision precision = torch_compat::Precision::kFp32;
  /// Steps between training checkpoints in checkpoint_dir (0: none; absent from the JSON when 0, so configs
  /// written before it keep their identity). A rerun resumes from the last one (docs/vae.md).
  int64_t checkpoint_every = 0;
  /// Where train_vae writes its checkpoints and resumes from (empty: nowhere). Not part of the config: the
  /// caller's run directory (runs/vae_run.cpp passes RUN_DIR/checkpoints).
  std::filesystem::path checkpoint_dir;

  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("steps", s.steps);
    v("batch_size", s.batch_size);
    v("learning_rate", s.learning_rate);
    v("grad_clip", s.grad_clip);
    v("log_every", s.log_every);
    v("seed", s.seed);
    v("device", s.device);
    v("checkpoint_every", s.checkpoint_every, kOmitDefault);
    v.text("precision", s.precision, &torch_compat::to_string, &torch_compat::parse_precision);
  }
  Json to_json() const;
  static VaeTrainOptions from_json(const Json& j, const std::string& path = "train");
  /// ConfigError naming path when a value is out of range.
  void validate(const std::string& path) const;
};

/// The marker of the last training checkpoint in checkpoint_dir: written last, it names that step's files. train_vae
/// resumes from it whenever it is there (and checkpoint_every > 0).
inline constexpr const char* kVaeTrainCheckpointFile = "train.json";
/// The step of the last training checkpoint in checkpoint_dir (0: none).
int64_t vae_checkpoint_step(const std::filesystem::path& checkpoint_dir);

/// A metrics record every log_every steps (and at the end): step, loss, reconstruction, kl, beta, adversary,
/// val_reconstruction (when val tracks are given), crops_per_s.
using VaeMetricsCallback = std::function<void(const Json& record)>;

/// Fits the per-band normalisation on train, trains, and returns the bundle (eval mode, on the chosen device).
/// Throws InputError when no track has segment_frames frames.
VaeBundle train_vae(const std::vector<MelTrack>& train, const std::vector<MelTrack>& val,
                    const models::VaeOptions& model, const MelAnalysisOptions& audio, const VaeTrainOptions& o,
                    const VaeMetricsCallback& on_metrics = {});
/// The same from any crop sources (training tracks shorter than segment_frames are skipped; val may be empty).
/// With a streamed training source (ShardMelSource) a thread reads the next batch's crops while one trains; the
/// crops, and so the trained model, equal those of the same tracks in memory.
///
/// Data-parallel when a torch.distributed group is current (train::current_group(), docs/scaling.md): every rank
/// calls it with the same arguments; each step rank r draws and trains its share of batch_size crops from its own
/// sampler (rank 0's is the one-process sampler), the gradients are all-reduced weighted by share / batch_size,
/// and every replica takes the same step. on_metrics is called on rank 0 alone (which also evaluates
/// val_reconstruction); checkpoints are written by rank 0 with every rank's random state, and a resume restores
/// them on every rank. Without a group it is the one-process loop.
VaeBundle train_vae(const MelCropSource& train, const MelCropSource& val, const models::VaeOptions& model,
                    const MelAnalysisOptions& audio, const VaeTrainOptions& o, const VaeMetricsCallback& on_metrics = {});

/// Mean reconstruction MSE (normalised units) of the posterior mean over fixed crops (every segment_frames of
/// each track, up to max_crops per track), decoded under the track's own place.
double evaluate_reconstruction(VaeBundle& bundle, const std::vector<MelTrack>& tracks, int max_crops = 8);
double evaluate_reconstruction(VaeBundle& bundle, const MelCropSource& tracks, int max_crops = 8);

}  // namespace songlines::generate
