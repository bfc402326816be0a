// The vocoder task (`songlines run` with "task": "vocoder"): trains the neural vocoder (models/vocoder.h,
// generate/vocoder_training.h) on the audio files of folders (decoded by src/audio at the mel's rate), with
// checkpoints and resume, then scores it on held-out files against NNLS + Griffin-Lim on the same true mel
// (and, when evaluation.vae names a VAE run, on that VAE's reconstructions). The run directory holds
// config.json (resolved), env.json, metrics.jsonl, checkpoints/vocoder.{json,pt} (what a VAE config's "vocoder"
// and `--vocoder DIR` load), checkpoints/trainer.json with the step's weights and Adam state (resume),
// samples/ (held-out clips three ways, with spectrograms), report.md, report.html and metrics.json (last: a
// finished run). docs/vae.md "Vocoder" lists every config key.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "generate/vocoder_training.h"
#include "runs/task.h"

namespace songlines::runs {

struct VocoderRunConfig {
  std::string experiment = "vocoder";  ///< runs/<experiment>/
  uint64_t seed = 0;                   ///< split, weights, crops
  std::string device = "auto";         ///< cpu, cuda, auto
  std::vector<std::string> audio;      ///< audio files or folders (walked recursively)
  std::vector<std::string> train_only;  ///< more training files or folders, never held out (not in the split)
  double val_fraction = 0.2;           ///< held-out share of files (seeded shuffle; at least one when >= 2 files)
  int max_tracks = 0;                  ///< 0: all files
  double max_seconds = 30.0;           ///< seconds read from the middle of each training file (0: whole)
  std::string mel_from_vae;            ///< a VAE run directory whose mel analysis is used ("mel" must be absent)
  generate::MelAnalysisOptions mel;    ///< the log-mel the vocoder reads (the VAE's)
  models::VocoderOptions model;        ///< n_mels, n_fft, hop_length come from mel
  generate::VocoderTrainOptions train;  ///< seed and device come from the top level
  int64_t checkpoint_every = 500;      ///< steps between checkpoints (resume points)
  int eval_tracks = 8;                 ///< held-out files scored
  double eval_seconds = 6.0;           ///< seconds of each, from the middle
  int griffin_lim_iterations = 32;     ///< the baseline's iterations
  int eval_samples = 2;                ///< held-out clips written to samples/ (wav + png, three ways)
  std::string eval_vae;                ///< a VAE run directory: also score VAE + vocoder against VAE + Griffin-Lim
  std::vector<std::string> eval_audio;  ///< more held-out files or folders (never trained on), scored after the split's

  /// Its JSON keys but "task" and "mel_from_vae" (read only: the resolved config holds its "mel")
  /// (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("experiment", s.experiment);
    v("seed", s.seed);
    v("device", s.device);
    v.group("data", [&](auto& d) {
      d("audio", s.audio, kRequired);
      d("train_only", s.train_only, kOmitDefault);  // absent when unset: earlier runs keep their identity
      d("val_fraction", s.val_fraction);
      d("max_tracks", s.max_tracks);
      d("max_seconds", s.max_seconds);
    });
    v("mel", s.mel);
    v("model", s.model);  // its n_mels, n_fft and hop_length are the mel's: refused in, left out
    v("train", s.train);  // its seed and device are the top level's: refused in, left out
    v("checkpoint_every", s.checkpoint_every);
    v.group("evaluation", [&](auto& e) {
      e("tracks", s.eval_tracks);
      e("seconds", s.eval_seconds);
      e("griffin_lim_iterations", s.griffin_lim_iterations);
      e("samples", s.eval_samples);
      e("vae", s.eval_vae);
      e("audio", s.eval_audio);
    });
  }

  static VocoderRunConfig from_json(const Json& j, const std::filesystem::path& base_dir);
  Json to_json() const;
};

/// Trains (or resumes from the last checkpoint) and evaluates; returns metrics.json's content. A finished run
/// directory with the same config is not redone; one with a different config is refused (UsageError).
Json run_vocoder_experiment(const VocoderRunConfig& config, const std::filesystem::path& run_dir, std::ostream& log);

/// The vocoder task's entry in the task table (runs/task.h).
PreparedRun prepare_vocoder_run(const Json& j, const std::filesystem::path& base_dir);

}  // namespace songlines::runs
