#include "models/location_model.h"

#include "core/error.h"

namespace songlines::models {

void LocationModelOptions::validate(const std::string& path) const {
  if (dropout < 0 || dropout >= 1) throw ConfigError(key_path(path, "dropout") + ": must be in [0, 1)");
  for (auto w : hidden_sizes)
    if (w <= 0) throw ConfigError(key_path(path, "hidden_sizes") + ": widths must be positive");
  if (conv_channels <= 0 || conv_layers <= 0 || kernel_size <= 0)
    throw ConfigError(path + ": conv_channels, conv_layers and kernel_size must be positive");
}

namespace {

// One row per encoder type. build() constructs its layers in layers.body (registered as "body" by the model
// after build returns) and any other module it registers on the model itself, and returns the width of the
// features it hands the head; encode() runs them on a batch.
struct EncoderKind {
  const char* type;
  bool reads_frames;  ///< input [B, T, D] (else [B, D])
  int64_t (*build)(const LocationModelOptions& o, int64_t input_dim, torch::nn::Module& model, EncoderLayers& layers);
  torch::Tensor (*encode)(const LocationModelOptions& o, EncoderLayers& layers, const torch::Tensor& x, bool training);
};

int64_t build_mlp(const LocationModelOptions& o, int64_t input_dim, torch::nn::Module&, EncoderLayers& layers) {
  int64_t width = input_dim;
  for (auto h : o.hidden_sizes) {
    layers.body->push_back(torch::nn::Linear(width, h));
    layers.body->push_back(torch::nn::ReLU());
    if (o.dropout > 0) layers.body->push_back(torch::nn::Dropout(o.dropout));
    width = h;
  }
  return width;
}

torch::Tensor encode_mlp(const LocationModelOptions&, EncoderLayers& layers, const torch::Tensor& x, bool) {
  TORCH_CHECK(x.dim() == 2, "mlp expects [B, D] input, got ", x.sizes());
  // hidden_sizes [] is a linear model: the head sits on the standardised inputs.
  return layers.body->size() == 0 ? x : layers.body->forward(x);
}

int64_t build_temporal(const LocationModelOptions& o, int64_t input_dim, torch::nn::Module& model,
                       EncoderLayers& layers) {
  // Conv1d expects [B, C, T]; "same" padding keeps T so attention pooling sees every frame.
  int64_t width = input_dim;
  for (int64_t i = 0; i < o.conv_layers; ++i) {
    layers.body->push_back(
        torch::nn::Conv1d(torch::nn::Conv1dOptions(width, o.conv_channels, o.kernel_size).padding(o.kernel_size / 2)));
    layers.body->push_back(torch::nn::ReLU());
    width = o.conv_channels;
  }
  layers.attention = model.register_module("attention", torch::nn::Linear(width, 1));
  return width;
}

torch::Tensor encode_temporal(const LocationModelOptions& o, EncoderLayers& layers, const torch::Tensor& x,
                              bool training) {
  TORCH_CHECK(x.dim() == 3, "temporal model expects [B, T, D] input, got ", x.sizes());
  auto h = layers.body->forward(x.transpose(1, 2)).transpose(1, 2);  // [B, T, C]
  auto a = torch::softmax(layers.attention(h), 1);                   // [B, T, 1] weights over frames
  auto pooled = (a * h).sum(1);                                      // [B, C]
  if (o.dropout > 0) pooled = torch::dropout(pooled, o.dropout, training);
  return pooled;
}

// A new encoder: its two functions above and one row here.
constexpr EncoderKind kEncoders[] = {
    {"mlp", false, build_mlp, encode_mlp},
    {"temporal", true, build_temporal, encode_temporal},
};

const EncoderKind& encoder_kind(const std::string& type) {
  for (const auto& e : kEncoders)
    if (type == e.type) return e;
  std::string known;
  for (const auto& e : kEncoders) known += (known.empty() ? "" : ", ") + std::string(e.type);
  throw ConfigError("model.type: unknown model \"" + type + "\" (" + known + ")");
}

}  // namespace

std::vector<std::string> encoder_types() {
  std::vector<std::string> types;
  for (const auto& e : kEncoders) types.emplace_back(e.type);
  return types;
}

bool encoder_reads_frames(const std::string& type) { return encoder_kind(type).reads_frames; }

LocationModelImpl::LocationModelImpl(const LocationModelOptions& options, int64_t input_dim,
                                     const torch::Tensor& centres)
    : options_(options) {
  const EncoderKind& encoder = encoder_kind(options.type);
  layers_.body = torch::nn::Sequential();
  const int64_t width = encoder.build(options, input_dim, *this, layers_);
  register_module("body", layers_.body);
  head_ = make_head(options.head, width, centres);
  register_module("head", head_);
}

torch::Tensor LocationModelImpl::forward(const torch::Tensor& x) {
  return head_->forward(encoder_kind(options_.type).encode(options_, layers_, x, is_training()));
}

}  // namespace songlines::models
