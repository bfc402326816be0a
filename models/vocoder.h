// A Vocos-style neural vocoder (Siuzdenko et al. 2023, "Vocos"): the VAE's log-mel frames -> ConvNeXt blocks
// -> per-frame STFT log-magnitude and phase -> inverse STFT. No upsampling stack: the network runs at the frame
// rate (hop samples per frame) and torch's istft makes the waveform, which is what makes it fast on a CPU.
//
// Shapes: mel_db [B, frames, n_mels] (dB, as generate/mel_spectrogram.h mel_db) -> normalised per band
// (band_mean/band_std buffers, fitted on the training set and saved with the weights) -> [B, n_mels, frames]
// -> Conv1d(k=7) embed to dim -> LayerNorm -> blocks x ConvNeXt -> LayerNorm -> Linear(dim, 2 n_bins):
// log|S| (clamped) and a phase angle p; S = |S| (cos p + i sin p) [B, n_bins, frames] -> istft (centered,
// periodic Hann of n_fft, hop_length): frame k is centred on sample k * hop, as in the mel's own STFT.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "core/json_fields.h"

namespace songlines::models {

struct VocoderOptions {
  int n_mels = 128;            ///< mel bands of the input (set from the mel analysis)
  int n_fft = 2048;            ///< samples; the synthesis STFT (set from the mel analysis)
  int hop_length = 512;        ///< samples per frame (set from the mel analysis)
  int dim = 128;               ///< channels of the ConvNeXt trunk
  int intermediate_dim = 384;  ///< width of each block's pointwise MLP
  int blocks = 4;              ///< ConvNeXt blocks
  int kernel_size = 7;         ///< depthwise conv kernel (frames, odd)

  int64_t n_bins() const { return n_fft / 2 + 1; }
  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("n_mels", s.n_mels);
    v("n_fft", s.n_fft);
    v("hop_length", s.hop_length);
    v("dim", s.dim);
    v("intermediate_dim", s.intermediate_dim);
    v("blocks", s.blocks);
    v("kernel_size", s.kernel_size);
  }
  Json to_json() const;
  /// Strict parse (unknown keys and wrong types throw ConfigError naming the path); validates.
  static VocoderOptions from_json(const Json& j, const std::string& path = "model");
  /// ConfigError naming path when a value is out of range.
  void validate(const std::string& path = "model") const;
  bool operator==(const VocoderOptions&) const = default;
};

/// One ConvNeXt block on [B, dim, T]: depthwise conv -> LayerNorm over channels -> Linear(dim, intermediate) ->
/// GELU -> Linear(intermediate, dim) -> layer scale -> + residual.
class ConvNextBlockImpl : public torch::nn::Module {
 public:
  ConvNextBlockImpl(int64_t dim, int64_t intermediate_dim, int64_t kernel_size, double layer_scale);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv1d dwconv_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear pw1_{nullptr}, pw2_{nullptr};
  torch::Tensor gamma_;  ///< [dim] layer scale
};
TORCH_MODULE(ConvNextBlock);

class VocoderImpl : public torch::nn::Module {
 public:
  explicit VocoderImpl(VocoderOptions o);
  const VocoderOptions& options() const { return options_; }

  /// Sets the per-band input normalisation (mel_db mean and std [n_mels], saved with the weights).
  void set_normalisation(const torch::Tensor& band_mean, const torch::Tensor& band_std);
  /// mel_db [B, frames, n_mels] -> complex STFT [B, n_bins, frames].
  torch::Tensor spectrum(const torch::Tensor& mel_db);
  /// mel_db [B, frames, n_mels] -> waveform [B, length]; length must be in [(frames-1)*hop, frames*hop) (the
  /// lengths whose centered STFT has `frames` frames).
  torch::Tensor forward(const torch::Tensor& mel_db, int64_t length);

 private:
  VocoderOptions options_;
  torch::Tensor band_mean_, band_std_, window_;  ///< buffers
  torch::nn::Conv1d embed_{nullptr};
  torch::nn::LayerNorm embed_norm_{nullptr}, final_norm_{nullptr};
  torch::nn::ModuleList blocks_;
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Vocoder);

}  // namespace songlines::models
