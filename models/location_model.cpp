#include "models/location_model.h"

#include "core/error.h"

namespace songlines::models {

void LocationModelOptions::read(ConfigReader& r) {
  r.read("hidden_sizes", hidden_sizes);
  r.read("dropout", dropout);
  r.read("conv_channels", conv_channels);
  r.read("conv_layers", conv_layers);
  r.read("kernel_size", kernel_size);
  auto h = r.child("head");
  head = HeadOptions::from_config(h);
  h.finish();
  if (dropout < 0 || dropout >= 1) throw ConfigError(r.join("dropout") + ": must be in [0, 1)");
  for (auto w : hidden_sizes)
    if (w <= 0) throw ConfigError(r.join("hidden_sizes") + ": widths must be positive");
  if (conv_channels <= 0 || conv_layers <= 0 || kernel_size <= 0)
    throw ConfigError(r.path() + ": conv_channels, conv_layers and kernel_size must be positive");
}

Json LocationModelOptions::to_json() const {
  return {{"type", type},           {"hidden_sizes", hidden_sizes}, {"dropout", dropout},
          {"conv_channels", conv_channels}, {"conv_layers", conv_layers}, {"kernel_size", kernel_size},
          {"head", head.to_json()}};
}

LocationModelImpl::LocationModelImpl(const LocationModelOptions& options, int64_t input_dim,
                                     const torch::Tensor& centres)
    : options_(options) {
  body_ = torch::nn::Sequential();
  int64_t width = input_dim;
  if (options.type == "mlp") {
    for (auto h : options.hidden_sizes) {
      body_->push_back(torch::nn::Linear(width, h));
      body_->push_back(torch::nn::ReLU());
      if (options.dropout > 0) body_->push_back(torch::nn::Dropout(options.dropout));
      width = h;
    }
  } else if (options.type == "temporal") {
    // Conv1d expects [B, C, T]; "same" padding keeps T so attention pooling sees every frame.
    for (int64_t i = 0; i < options.conv_layers; ++i) {
      body_->push_back(torch::nn::Conv1d(
          torch::nn::Conv1dOptions(width, options.conv_channels, options.kernel_size).padding(options.kernel_size / 2)));
      body_->push_back(torch::nn::ReLU());
      width = options.conv_channels;
    }
    attention_ = register_module("attention", torch::nn::Linear(width, 1));
  } else {
    throw ConfigError("model.type: unknown model \"" + options.type + "\" (mlp, temporal)");
  }
  register_module("body", body_);
  head_ = make_head(options.head, width, centres);
  register_module("head", head_);
}

torch::Tensor LocationModelImpl::forward(const torch::Tensor& x) {
  if (options_.type == "mlp") {
    TORCH_CHECK(x.dim() == 2, "mlp expects [B, D] input, got ", x.sizes());
    // hidden_sizes [] is a linear model: the head sits on the standardised inputs.
    return head_->forward(body_->size() == 0 ? x : body_->forward(x));
  }
  TORCH_CHECK(x.dim() == 3, "temporal model expects [B, T, D] input, got ", x.sizes());
  auto h = body_->forward(x.transpose(1, 2)).transpose(1, 2);  // [B, T, C]
  auto a = torch::softmax(attention_(h), 1);                   // [B, T, 1] weights over frames
  auto pooled = (a * h).sum(1);                                // [B, C]
  if (options_.dropout > 0) pooled = torch::dropout(pooled, options_.dropout, is_training());
  return head_->forward(pooled);
}

}  // namespace songlines::models
