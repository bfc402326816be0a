// The location model: an encoder chosen by "type" (mlp on summary vectors [B, D]; temporal on frame crops
// [B, T, D]: 1-D convolutions then attention pooling over frames) followed by a head (models/location_heads.h).
// Encoders are a registry (the table in location_model.cpp): a new encoder is one row there, and every run
// config, sweep and saved model then knows its type (train/estimator_registry.h makes it a location estimator).
#pragma once

#include <vector>

#include "models/location_heads.h"

namespace songlines::models {

struct LocationModelOptions {
  std::string type = "mlp";                ///< the encoder: encoder_types() ("mlp" | "temporal")
  std::vector<int64_t> hidden_sizes{256};  ///< mlp: widths of the hidden layers
  double dropout = 0.2;                    ///< dropout after each hidden layer (probability)
  int64_t conv_channels = 64;              ///< temporal: channels of each 1-D convolution
  int64_t conv_layers = 2;                 ///< temporal: number of convolutions
  int64_t kernel_size = 5;                 ///< temporal: frames per convolution kernel
  HeadOptions head;

  /// Its JSON keys (core/json_fields.h): the keys of a model section, which a run config's models[] entry
  /// holds at its top level beside "name" and "train" (train/estimator_registry.cpp).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("type", s.type);
    v("hidden_sizes", s.hidden_sizes);
    v("dropout", s.dropout);
    v("conv_channels", s.conv_channels);
    v("conv_layers", s.conv_layers);
    v("kernel_size", s.kernel_size);
    v("head", s.head);
  }
  /// ConfigError naming path.key when a value is out of range.
  void validate(const std::string& path) const;
};

/// The registered encoder types, in the order error messages list them.
std::vector<std::string> encoder_types();
/// Whether an encoder reads frame sequences [B, T, D] (else summary vectors [B, D]). ConfigError for an
/// unknown type, naming model.type and the known types.
bool encoder_reads_frames(const std::string& type);

/// The modules an encoder builds, kept under the names saved checkpoints use ("body", "attention").
struct EncoderLayers {
  torch::nn::Sequential body{nullptr};   ///< mlp layers, or the convolutions for temporal
  torch::nn::Linear attention{nullptr};  ///< temporal: frame scores for attention pooling
};

class LocationModelImpl : public torch::nn::Module {
 public:
  /// input_dim: D; centres: [K, 3] training locations (vmf_mixture only; may be empty otherwise).
  LocationModelImpl(const LocationModelOptions& options, int64_t input_dim, const torch::Tensor& centres);
  /// x: [B, D] (mlp) or [B, T, D] (temporal) -> the head's raw output.
  torch::Tensor forward(const torch::Tensor& x);
  LocationHeadImpl& head() { return *head_; }
  const LocationModelOptions& options() const { return options_; }

 private:
  LocationModelOptions options_;
  EncoderLayers layers_;
  std::shared_ptr<LocationHeadImpl> head_;
};
TORCH_MODULE(LocationModel);

}  // namespace songlines::models
