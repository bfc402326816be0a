#include "generate/vocoder_training.h"

#include <chrono>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "models/torch_compat.h"

namespace songlines::generate {

namespace fs = std::filesystem;

Json VocoderTrainOptions::to_json() const { return fields_to_json(*this); }

VocoderTrainOptions VocoderTrainOptions::from_json(const Json& j, const std::string& path) {
  return fields_from_json<VocoderTrainOptions>(j, path);
}

void VocoderTrainOptions::validate(const std::string& path) const {
  if (steps < 0 || batch_size <= 0 || !(learning_rate > 0) || log_every <= 0 || grad_clip < 0 ||
      mel_weight < 0)
    throw ConfigError(path + ": steps >= 0, batch_size > 0, learning_rate > 0, log_every > 0, grad_clip >= 0 and "
                             "mel_weight >= 0 are required");
  if (segment_frames < 2) throw ConfigError(path + ".segment_frames: must be >= 2, got " + std::to_string(segment_frames));
  if (lr_schedule != "constant" && lr_schedule != "cosine")
    throw ConfigError(path + ".lr_schedule: must be \"constant\" or \"cosine\", got \"" + lr_schedule + "\"");
  if (warmup_steps < 0) throw ConfigError(path + ".warmup_steps: must be >= 0, got " + std::to_string(warmup_steps));
  if (fft_sizes.empty()) throw ConfigError(path + ".fft_sizes: needs at least one size");
  for (int n : fft_sizes)
    if (n < 16 || n % 4 != 0) throw ConfigError(path + ".fft_sizes: sizes must be multiples of 4 and >= 16, got " + std::to_string(n));
}

double vocoder_learning_rate(const VocoderTrainOptions& o, int64_t step) {
  if (step < o.warmup_steps) return o.learning_rate * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  if (o.lr_schedule == "constant") return o.learning_rate;
  const int64_t span = std::max<int64_t>(1, o.steps - o.warmup_steps);
  const double t = std::min(1.0, static_cast<double>(step - o.warmup_steps) / static_cast<double>(span));
  return o.learning_rate * 0.5 * (1.0 + std::cos(M_PI * t));
}

namespace {

constexpr double kMagnitudeFloor = 1e-5;

// |STFT| [B, bins, frames] of y [B, n], with a gradient that stays finite at zero.
torch::Tensor batch_magnitude(const torch::Tensor& y, int64_t n_fft, int64_t hop) {
  auto window = torch::hann_window(n_fft, torch::TensorOptions().dtype(torch::kFloat32).device(y.device()));
  auto spec = torch::view_as_real(torch_compat::stft_complex(y, n_fft, hop, window, /*center=*/true));
  return torch::sqrt(spec.pow(2).sum(-1) + 1e-12);
}

}  // namespace

VocoderLoss vocoder_loss(const torch::Tensor& reference, const torch::Tensor& estimate, const MelAnalysisOptions& audio,
                         const VocoderTrainOptions& o) {
  TORCH_CHECK(reference.dim() == 2 && reference.sizes() == estimate.sizes(), "vocoder loss: expected equal [B, n], got ",
              reference.sizes(), " and ", estimate.sizes());
  VocoderLoss l;
  l.mr_stft = torch::zeros({}, estimate.options());
  for (int n : o.fft_sizes) {
    auto x = batch_magnitude(reference, n, n / 4);
    auto y = batch_magnitude(estimate, n, n / 4);
    auto sc = (x - y).norm() / x.norm().clamp_min(1e-6);
    auto lm = (torch::log(x.clamp_min(kMagnitudeFloor)) - torch::log(y.clamp_min(kMagnitudeFloor))).abs().mean();
    l.mr_stft = l.mr_stft + sc + lm;
  }
  l.mr_stft = l.mr_stft / static_cast<double>(o.fft_sizes.size());
  auto w = mel_basis(audio).to(estimate.device());  // [n_mels, bins]
  auto mel_of = [&](const torch::Tensor& y) {
    auto power = batch_magnitude(y, audio.n_fft, audio.hop_length).pow(2);  // [B, bins, frames]
    return torch::log(torch::matmul(w, power).clamp_min(kMagnitudeFloor));  // [B, n_mels, frames]
  };
  l.mel = (mel_of(reference) - mel_of(estimate)).abs().mean();
  l.total = l.mr_stft + o.mel_weight * l.mel;
  return l;
}

VocoderTrainer::VocoderTrainer(const std::vector<AudioClip>& train, const models::VocoderOptions& arch,
                               const MelAnalysisOptions& audio, const VocoderTrainOptions& o)
    : options_(o), rng_(o.seed) {
  const models::VocoderOptions model = vocoder_options_for(audio, arch);
  std::vector<torch::Tensor> frames;
  for (const auto& c : train) {
    TORCH_CHECK(c.samples.dim() == 1, "clip ", c.id, ": samples must be [n], got ", c.samples.sizes());
    Clip clip{c.samples.to(torch::kFloat32).contiguous(), torch::Tensor()};
    {
      torch::NoGradGuard ng;
      clip.mel_db = mel_db(clip.samples, audio);
    }
    if (clip.mel_db.size(0) >= o.segment_frames) {
      usable_.push_back(clips_.size());
      frames.push_back(clip.mel_db);
    }
    clips_.push_back(std::move(clip));
  }
  if (usable_.empty())
    throw InputError("training set", "no clip has segment_frames = " + std::to_string(o.segment_frames) + " frames (" +
                                         std::to_string((o.segment_frames - 1) * audio.hop_length) + " samples)");
  bundle_.model_options = model;
  bundle_.audio = audio;
  bundle_.device = torch_compat::resolve_device(o.device);
  torch::manual_seed(o.seed);
  bundle_.net = models::Vocoder(model);
  {
    auto all = torch::cat(frames, 0).to(torch::kFloat64);  // [frames, n_mels]
    constexpr double kStdFloor = 1e-3;                     // dB; constant bands would divide by zero
    auto mean = all.mean(0);
    bundle_.net->set_normalisation(mean, (all - mean).pow(2).mean(0).sqrt().clamp_min(kStdFloor));
  }
  bundle_.net->to(bundle_.device);
  opt_ = std::make_unique<torch::optim::Adam>(bundle_.net->parameters(), torch::optim::AdamOptions(o.learning_rate));
}

void VocoderTrainer::train_until(int64_t until, const VocoderMetricsCallback& on_metrics) {
  const int64_t seg = options_.segment_frames;
  const int64_t hop = bundle_.audio.hop_length;
  const int64_t length = (seg - 1) * hop;
  const auto dev = bundle_.device;
  bundle_.net->train();
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = step_;
  double acc_loss = 0, acc_stft = 0, acc_mel = 0;
  int64_t acc_n = 0;
  std::uniform_int_distribution<size_t> pick(0, usable_.size() - 1);
  while (step_ < std::min(until, options_.steps)) {
    std::vector<torch::Tensor> mels, waves;
    for (int i = 0; i < options_.batch_size; ++i) {
      const Clip& c = clips_[usable_[pick(rng_)]];
      std::uniform_int_distribution<int64_t> frame(0, c.mel_db.size(0) - seg);
      const int64_t f0 = frame(rng_);
      mels.push_back(c.mel_db.narrow(0, f0, seg));
      waves.push_back(c.samples.narrow(0, f0 * hop, length));
    }
    auto mel = torch::stack(mels).to(dev);
    auto ref = torch::stack(waves).to(dev);
    auto est = bundle_.net->forward(mel, length);
    VocoderLoss l = vocoder_loss(ref, est, bundle_.audio, options_);
    const double lr = vocoder_learning_rate(options_, step_);
    for (auto& group : opt_->param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    opt_->zero_grad();
    l.total.backward();
    if (options_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(bundle_.net->parameters(), options_.grad_clip);
    opt_->step();
    ++step_;
    acc_loss += l.total.item<double>();
    acc_stft += l.mr_stft.item<double>();
    acc_mel += l.mel.item<double>();
    ++acc_n;
    if (step_ % options_.log_every == 0 || step_ == options_.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      Json rec{{"step", step_},
               {"loss", acc_loss / acc_n},
               {"mr_stft", acc_stft / acc_n},
               {"mel", acc_mel / acc_n},
               {"learning_rate", lr},
               {"crops_per_s", secs > 0 ? static_cast<double>((step_ - first) * options_.batch_size) / secs : 0.0}};
      if (on_metrics) on_metrics(rec);
      acc_loss = acc_stft = acc_mel = 0;
      acc_n = 0;
    }
  }
  bundle_.net->eval();
}

void VocoderTrainer::save_checkpoint(const fs::path& dir) const {
  const fs::path state_file = dir / kVocoderTrainerStateFile;
  fs::create_directories(state_file.parent_path());
  // Weights and Adam's state under names of their step, then trainer.json naming them: a kill at any point leaves
  // the previous trainer.json and the files it names intact.
  const std::string weights = "checkpoints/vocoder-step" + std::to_string(step_) + ".pt";
  const std::string adam = "checkpoints/vocoder_adam-step" + std::to_string(step_) + ".pt";
  torch_compat::save_module(*bundle_.net, (dir / weights).string());
  torch_compat::save_optimizer(*opt_, (dir / adam).string());
  std::ostringstream rng;
  rng << rng_;
  std::string previous_weights, previous_adam;
  if (fs::exists(state_file)) {
    try {
      const Json old = load_json_file(state_file.string());
      previous_weights = old.value("weights", std::string());
      previous_adam = old.value("optimizer", std::string());
    } catch (const std::exception&) {
      // An unreadable old state is replaced below; its files are left for the user.
    }
  }
  write_json_file_atomic(state_file.string(),
                         Json{{"step", step_}, {"weights", weights}, {"optimizer", adam}, {"crop_rng", rng.str()}});
  for (const auto& f : {previous_weights, previous_adam})
    if (!f.empty() && f != weights && f != adam) fs::remove(dir / f);
}

bool VocoderTrainer::restore_checkpoint(const fs::path& dir) {
  const fs::path state_file = dir / kVocoderTrainerStateFile;
  if (!fs::exists(state_file)) return false;
  try {
    const Json s = load_json_file(state_file.string());
    const int64_t step = s.at("step").get<int64_t>();
    if (step < 0 || step > options_.steps)
      throw InputError(state_file.string(), "step " + std::to_string(step) + " outside 0.." + std::to_string(options_.steps));
    torch_compat::load_module(*bundle_.net, (dir / s.at("weights").get<std::string>()).string(), bundle_.device);
    torch::load(*opt_, (dir / s.at("optimizer").get<std::string>()).string(), bundle_.device);
    std::istringstream rng(s.at("crop_rng").get<std::string>());
    rng >> rng_;
    if (!rng) throw InputError(state_file.string(), "unreadable crop_rng");
    step_ = step;
  } catch (const Json::exception& e) {
    throw InputError(state_file.string(), std::string("malformed trainer state: ") + e.what());
  } catch (const c10::Error& e) {
    throw InputError(state_file.string(), std::string("cannot load the checkpoint it names: ") + e.what_without_backtrace());
  }
  return true;
}

VocoderBundle train_vocoder(const std::vector<AudioClip>& train, const models::VocoderOptions& arch,
                            const MelAnalysisOptions& audio, const VocoderTrainOptions& o,
                            const VocoderMetricsCallback& on_metrics) {
  VocoderTrainer t(train, arch, audio, o);
  t.train_until(o.steps, on_metrics);
  return t.bundle();
}

}  // namespace songlines::generate
