#include "generate/vocoder_bundle.h"

#include "core/error.h"
#include "generate/vae_bundle.h"
#include "models/torch_compat.h"

namespace songlines::generate {

namespace fs = std::filesystem;

torch::Tensor VocoderBundle::synthesize(const torch::Tensor& mel_db, int64_t length) const {
  TORCH_CHECK(mel_db.dim() == 2 && mel_db.size(1) == model_options.n_mels, "vocoder: expected mel_db [frames, ",
              model_options.n_mels, "], got ", mel_db.sizes());
  torch::NoGradGuard ng;
  models::Vocoder model = net;  // a handle to the same module (forward is not const)
  return model->forward(mel_db.to(device, torch::kFloat32).unsqueeze(0), length)[0].to(torch::kCPU);
}

models::VocoderOptions vocoder_options_for(const MelAnalysisOptions& audio, models::VocoderOptions arch) {
  arch.n_mels = audio.n_mels;
  arch.n_fft = audio.n_fft;
  arch.hop_length = audio.hop_length;
  arch.validate();
  return arch;
}

void save_vocoder_bundle(const VocoderBundle& b, const fs::path& dir) {
  fs::create_directories(dir / "checkpoints");
  Json j{{"format", "songlines-vocoder"}, {"version", 1}, {"model", b.model_options.to_json()}, {"audio", b.audio.to_json()}};
  torch_compat::save_module(*b.net, (dir / kVocoderWeightsFile).string());  // atomic
  write_json_file_atomic((dir / kVocoderConfigFile).string(), j);
}

std::shared_ptr<VocoderBundle> load_vocoder_bundle(const fs::path& dir, const torch::Device& device) {
  const fs::path cfg = dir / kVocoderConfigFile;
  const fs::path weights = dir / kVocoderWeightsFile;
  if (!fs::exists(cfg))
    throw InputError(cfg.string(), "no vocoder checkpoint here (is " + dir.string() + " a finished vocoder run directory?)");
  if (!fs::exists(weights)) throw InputError(weights.string(), "vocoder weights missing");
  auto b = std::make_shared<VocoderBundle>();
  try {
    const Json j = load_json_file(cfg.string());
    if (j.value("format", std::string()) != "songlines-vocoder")
      throw InputError(cfg.string(), "not a songlines vocoder checkpoint");
    b->model_options = models::VocoderOptions::from_json(j.at("model"), "model");
    b->audio = MelAnalysisOptions::from_json(j.at("audio"), "audio");
  } catch (const Json::exception& e) {
    throw InputError(cfg.string(), std::string("malformed vocoder checkpoint: ") + e.what());
  } catch (const ConfigError& e) {
    throw InputError(cfg.string(), e.what());
  }
  if (!(vocoder_options_for(b->audio, b->model_options) == b->model_options))
    throw InputError(cfg.string(), "model n_mels / n_fft / hop_length differ from the audio analysis");
  b->device = device;
  b->run_dir = fs::absolute(dir).lexically_normal();
  b->net = models::Vocoder(b->model_options);
  try {
    torch_compat::load_module(*b->net, weights.string(), device);
  } catch (const c10::Error& e) {
    throw InputError(weights.string(), std::string("cannot load weights: ") + e.what_without_backtrace());
  }
  b->net->to(device);
  b->net->eval();
  return b;
}

void select_vocoder(VaeBundle& vae, const std::string& choice) {
  if (choice == kGriffinLimVocoder) {
    vae.vocoder.reset();
    return;
  }
  auto v = load_vocoder_bundle(choice, vae.device);
  if (!(v->audio == vae.audio))
    throw InputError(choice, "the vocoder's mel analysis " + v->audio.to_json().dump() + " differs from the VAE's " +
                                 vae.audio.to_json().dump());
  vae.vocoder = std::move(v);
}

}  // namespace songlines::generate
