// Training of the libtorch location model (models/location_model.h) on summary vectors: standardisation fitted
// on the training rows, Adam with weight decay, full-batch or minibatches, an ensemble of independently seeded
// members whose outputs the head combines, and epoch checkpoints that a restarted fit resumes from.
#pragma once

#include <filesystem>
#include <optional>

#include "models/location_model.h"
#include "train/estimator.h"

namespace songlines::train {

struct TrainOptions {
  int epochs = 300;            ///< passes over the training rows
  int64_t batch_size = 0;      ///< rows per step; 0 = full batch
  double learning_rate = 3e-3; ///< Adam step size
  double weight_decay = 1e-4;  ///< L2 penalty (Adam's weight_decay)
  int ensemble = 1;            ///< independently seeded members, outputs combined by the head
  uint64_t seed = 0;           ///< member m uses seed + m
  std::string device = "auto"; ///< "cpu", "cuda" or "auto"
  int checkpoint_every = 0;    ///< epochs between checkpoints (0: none); needs a checkpoint dir
  int64_t crop_frames = 256;   ///< temporal: frames per training crop (a random window of each track per epoch)
  int eval_crops = 8;          ///< temporal: evenly spaced crops per track at prediction, combined by the head

  /// Its JSON keys (core/json_fields.h); seed and device come from the run config's top level.
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("epochs", s.epochs);
    v("batch_size", s.batch_size);
    v("learning_rate", s.learning_rate);
    v("weight_decay", s.weight_decay);
    v("ensemble", s.ensemble);
    v("checkpoint_every", s.checkpoint_every);
    v("crop_frames", s.crop_frames);
    v("eval_crops", s.eval_crops);
  }
  /// ConfigError naming path.key when a value is out of range.
  void validate(const std::string& path) const;
};

class NeuralLocationEstimator : public LocationEstimator {
 public:
  NeuralLocationEstimator(models::LocationModelOptions model, TrainOptions train);
  /// Epoch checkpoints go to dir/member-<m>.{pt,optim.pt,json}; fit() resumes from them when present.
  void set_checkpoint_dir(std::filesystem::path dir) { checkpoint_dir_ = std::move(dir); }

  void fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback& on_epoch) override;
  LocationPrediction predict(const Dataset& data, const std::vector<int64_t>& rows) override;
  LocationPrediction predict_raw(const std::vector<float>& x, int64_t n) override;
  /// Temporal models: predicts the given tracks of `seq` (frame blocks as at training).
  LocationPrediction predict_sequences(const FrameSequences& seq, const std::vector<int64_t>& tracks);
  /// The model reads frame sequences (its encoder's, e.g. temporal).
  bool temporal() const { return models::encoder_reads_frames(model_options_.type); }
  const std::vector<std::string>& frame_blocks() const { return frame_blocks_; }
  void save(const std::filesystem::path& dir) const override;
  std::string type() const override { return model_options_.type; }

  /// The "type" save() writes into model.json, whatever the encoder.
  static constexpr const char* kSavedType = "neural";
  static std::unique_ptr<NeuralLocationEstimator> load(const std::filesystem::path& dir, const std::string& device);
  std::vector<models::LocationModel>& members() { return members_; }
  /// Unique training locations as unit vectors [K, 3] (vmf_mixture component means).
  static torch::Tensor training_centres(const Dataset& data, const std::vector<int64_t>& rows);

 private:
  models::LocationModelOptions model_options_;
  TrainOptions train_options_;
  torch::Device device_{torch::kCPU};
  Standardizer standardizer_;
  int64_t input_dim_ = 0;
  torch::Tensor centres_;
  std::vector<models::LocationModel> members_;
  std::optional<std::filesystem::path> checkpoint_dir_;
  std::vector<std::string> frame_blocks_;  ///< temporal: the frame arrays the model reads

  /// Temporal: standardised crops [tracks, crop_frames, D]; starts[i] is the first frame (shorter tracks are
  /// zero-padded after standardisation, i.e. padded with the training mean).
  torch::Tensor crops(const FrameSequences& seq, const std::vector<int64_t>& tracks,
                      const std::vector<int64_t>& starts) const;
  LocationPrediction combine(std::vector<torch::Tensor>& raws, int64_t n);
};

}  // namespace songlines::train
