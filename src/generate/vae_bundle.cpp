#include "generate/vae_bundle.h"

#include "core/error.h"
#include "models/torch_compat.h"

namespace songlines::generate {

namespace fs = std::filesystem;

torch::Tensor VaeBundle::normalise(const torch::Tensor& mel_db) const {
  auto x = (mel_db.to(device, torch::kFloat32) - band_mean.to(device)) / band_std.to(device);  // [frames, n_mels]
  return x.t().unsqueeze(0).unsqueeze(0).contiguous();
}

torch::Tensor VaeBundle::denormalise(const torch::Tensor& x) const {
  auto m = x.squeeze(1).transpose(1, 2);  // [B, frames, n_mels]
  return m * band_std.to(x.device()) + band_mean.to(x.device());
}

namespace {
std::vector<float> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
torch::Tensor from_vector(const std::vector<float>& v) {
  return torch::tensor(v, torch::kFloat32);
}
}  // namespace

void save_vae_bundle(const VaeBundle& b, const fs::path& run_dir) {
  fs::create_directories(run_dir / "checkpoints");
  Json j{{"format", "songlines-vae"},
         {"version", 1},
         {"model", b.model_options.to_json()},
         {"audio", b.audio.to_json()},
         {"band_mean", to_vector(b.band_mean)},
         {"band_std", to_vector(b.band_std)},
         {"default_place", {{"latitude", b.default_place.lat}, {"longitude", b.default_place.lon}}}};
  if (b.vocoder && !b.vocoder->run_dir.empty()) j["vocoder"] = fs::absolute(b.vocoder->run_dir).string();
  torch_compat::save_module(*b.net, (run_dir / kVaeWeightsFile).string());  // atomic
  write_json_file_atomic((run_dir / kVaeConfigFile).string(), j);
}

VaeBundle load_vae_bundle(const fs::path& run_dir, const torch::Device& device, const std::string& vocoder) {
  const fs::path cfg = run_dir / kVaeConfigFile;
  const fs::path weights = run_dir / kVaeWeightsFile;
  if (!fs::exists(cfg)) throw InputError(cfg.string(), "no VAE checkpoint here (is " + run_dir.string() + " a VAE run directory?)");
  if (!fs::exists(weights)) throw InputError(weights.string(), "VAE weights missing");
  Json j = load_json_file(cfg.string());
  VaeBundle b;
  try {
    if (j.value("format", std::string()) != "songlines-vae") throw InputError(cfg.string(), "not a songlines VAE checkpoint");
    Json model = j.at("model");
    // Checkpoints from before the conditional prior have no key for it and were trained without one.
    if (model.is_object() && !model.contains("conditional_prior")) model["conditional_prior"] = false;
    b.model_options = models::VaeOptions::from_json(model, "model");
    b.audio = MelAnalysisOptions::from_json(j.at("audio"), "audio");
    b.band_mean = from_vector(j.at("band_mean").get<std::vector<float>>());
    b.band_std = from_vector(j.at("band_std").get<std::vector<float>>());
    b.default_place = {j.at("default_place").at("latitude").get<double>(),
                       j.at("default_place").at("longitude").get<double>()};
  } catch (const Json::exception& e) {
    throw InputError(cfg.string(), std::string("malformed VAE checkpoint: ") + e.what());
  } catch (const ConfigError& e) {
    throw InputError(cfg.string(), e.what());
  }
  if (b.band_mean.numel() != b.model_options.n_mels || b.band_std.numel() != b.model_options.n_mels ||
      b.audio.n_mels != b.model_options.n_mels)
    throw InputError(cfg.string(), "normalisation / audio n_mels do not match model.n_mels");
  b.device = device;
  b.net = models::ConditionalVae(b.model_options);
  try {
    torch_compat::load_module(*b.net, weights.string(), device);
  } catch (const c10::Error& e) {
    throw InputError(weights.string(), std::string("cannot load weights: ") + e.what_without_backtrace());
  }
  b.net->to(device);
  b.net->eval();
  if (!vocoder.empty()) select_vocoder(b, vocoder);
  else if (j.contains("vocoder") && j["vocoder"].is_string()) select_vocoder(b, j["vocoder"].get<std::string>());
  return b;
}

}  // namespace songlines::generate
