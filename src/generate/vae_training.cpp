#include "generate/vae_training.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <random>

#include "core/error.h"
#include "models/torch_compat.h"
#include "train/batch_prefetcher.h"

namespace songlines::generate {

Json VaeTrainOptions::to_json() const {
  return Json{{"steps", steps}, {"batch_size", batch_size}, {"learning_rate", learning_rate},
              {"grad_clip", grad_clip}, {"log_every", log_every}, {"seed", seed}, {"device", device},
              {"precision", torch_compat::to_string(precision)}};
}

VaeTrainOptions VaeTrainOptions::from_json(const Json& j, const std::string& path) {
  VaeTrainOptions o;
  ConfigReader r(j, path);
  r.read("steps", o.steps);
  r.read("batch_size", o.batch_size);
  r.read("learning_rate", o.learning_rate);
  r.read("grad_clip", o.grad_clip);
  r.read("log_every", o.log_every);
  r.read("seed", o.seed);
  r.read("device", o.device);
  std::string precision = torch_compat::to_string(o.precision);
  r.read("precision", precision);
  r.finish();
  o.precision = torch_compat::parse_precision(precision, path + ".precision");
  if (o.steps < 0 || o.batch_size <= 0 || !(o.learning_rate > 0) || o.log_every <= 0)
    throw ConfigError(path + ": steps >= 0, batch_size > 0, learning_rate > 0 and log_every > 0 are required");
  return o;
}

namespace {

struct CropSampler {
  const MelCropSource& source;
  std::vector<int64_t> tracks;  // those long enough
  int64_t seg;
  std::mt19937_64 rng;

  // x: [B, 1, n_mels, seg] mel_db (not normalised), places [B, 3].
  std::pair<torch::Tensor, torch::Tensor> sample(int batch) {
    std::vector<torch::Tensor> crops;
    std::vector<geo::LatLon> places;
    std::uniform_int_distribution<size_t> pick(0, tracks.size() - 1);
    for (int i = 0; i < batch; ++i) {
      const int64_t t = tracks[pick(rng)];
      std::uniform_int_distribution<int64_t> start(0, source.frames(t) - seg);
      crops.push_back(source.crop(t, start(rng), seg));
      places.push_back(source.place(t));
    }
    return {torch::stack(crops), models::places_to_unit_vectors(places)};
  }
};

// Per-band mean and standard deviation (ddof 0) over every frame of the given tracks, in float64, read a fixed
// number of frames at a time so that a streamed source sums in the same order as one in memory.
std::pair<torch::Tensor, torch::Tensor> band_statistics(const MelCropSource& source, const std::vector<int64_t>& tracks) {
  constexpr int64_t kPieceFrames = 4096;
  const int64_t bands = source.n_mels();
  std::vector<double> mean(static_cast<size_t>(bands), 0.0), var(static_cast<size_t>(bands), 0.0);
  auto for_each_frame = [&](const auto& visit) {
    for (const int64_t t : tracks)
      for (int64_t f = 0; f < source.frames(t); f += kPieceFrames) {
        const auto piece = source.crop(t, f, std::min(kPieceFrames, source.frames(t) - f)).contiguous();
        const float* x = piece.data_ptr<float>();
        for (int64_t r = 0; r < piece.size(0); ++r) visit(x + r * bands);
      }
  };
  double n = 0;
  for_each_frame([&](const float* row) {
    for (int64_t k = 0; k < bands; ++k) mean[k] += row[k];
    n += 1;
  });
  for (auto& m : mean) m /= n;
  for_each_frame([&](const float* row) {
    for (int64_t k = 0; k < bands; ++k) var[k] += (row[k] - mean[k]) * (row[k] - mean[k]);
  });
  for (auto& v : var) v = std::sqrt(v / n);
  return {torch::tensor(mean, torch::kFloat64), torch::tensor(var, torch::kFloat64)};
}

// Pointers to tracks in memory, their widths checked against the model's.
std::vector<const MelTrack*> checked_tracks(const std::vector<MelTrack>& tracks, int64_t n_mels) {
  std::vector<const MelTrack*> out;
  for (const auto& t : tracks) {
    TORCH_CHECK(t.mel_db.dim() == 2 && t.mel_db.size(1) == n_mels, "track ", t.id, ": mel_db must be [frames, ",
                n_mels, "], got ", t.mel_db.sizes());
    out.push_back(&t);
  }
  return out;
}

}  // namespace

double evaluate_reconstruction(VaeBundle& b, const std::vector<MelTrack>& tracks, int max_crops) {
  return evaluate_reconstruction(b, InMemoryMelSource(checked_tracks(tracks, b.model_options.n_mels)), max_crops);
}

double evaluate_reconstruction(VaeBundle& b, const MelCropSource& tracks, int max_crops) {
  torch::NoGradGuard ng;
  b.net->eval();
  const int64_t seg = b.model_options.segment_frames;
  double sum = 0;
  int64_t n = 0;
  for (int64_t t = 0; t < tracks.size(); ++t) {
    for (int64_t c = 0; c < max_crops && (c + 1) * seg <= tracks.frames(t); ++c) {
      auto x = b.normalise(tracks.crop(t, c * seg, seg));
      auto v = models::places_to_unit_vectors({tracks.place(t)}).to(b.device);
      auto xhat = b.net->decode(b.net->encode(x, v).mu, v);
      sum += torch::mse_loss(xhat, x).item<double>();
      ++n;
    }
  }
  return n > 0 ? sum / static_cast<double>(n) : std::nan("");
}

VaeBundle train_vae(const std::vector<MelTrack>& train, const std::vector<MelTrack>& val,
                    const models::VaeOptions& model, const MelAnalysisOptions& audio, const VaeTrainOptions& o,
                    const VaeMetricsCallback& on_metrics) {
  return train_vae(InMemoryMelSource(checked_tracks(train, model.n_mels)),
                   InMemoryMelSource(checked_tracks(val, model.n_mels)), model, audio, o, on_metrics);
}

VaeBundle train_vae(const MelCropSource& train, const MelCropSource& val, const models::VaeOptions& model,
                    const MelAnalysisOptions& audio, const VaeTrainOptions& o, const VaeMetricsCallback& on_metrics) {
  model.validate();
  if (audio.n_mels != model.n_mels)
    throw ConfigError("model.n_mels (" + std::to_string(model.n_mels) + ") differs from the data's n_mels (" +
                      std::to_string(audio.n_mels) + ")");
  if (train.size() > 0 && train.n_mels() != model.n_mels)
    throw InputError("training set", "frames have " + std::to_string(train.n_mels()) + " bands, model.n_mels is " +
                                         std::to_string(model.n_mels));
  CropSampler sampler{train, {}, model.segment_frames, std::mt19937_64(o.seed)};
  for (int64_t t = 0; t < train.size(); ++t)
    if (train.frames(t) >= model.segment_frames) sampler.tracks.push_back(t);
  if (sampler.tracks.empty())
    throw InputError("training set", "no track has at least segment_frames = " + std::to_string(model.segment_frames) +
                                         " frames");

  VaeBundle b;
  b.model_options = model;
  b.audio = audio;
  {
    const auto [mean, spread] = band_statistics(train, sampler.tracks);
    b.band_mean = mean.to(torch::kFloat32);
    constexpr double kStdFloor = 1e-3;  // dB; constant bands (silence floors) would divide by zero
    b.band_std = spread.clamp_min(kStdFloor).to(torch::kFloat32);
    std::vector<geo::LatLon> places;
    for (const int64_t t : sampler.tracks) places.push_back(train.place(t));
    b.default_place = geo::spherical_centroid(places.data(), places.size());
  }
  b.device = torch_compat::resolve_device(o.device);
  torch::manual_seed(o.seed);
  b.net = models::ConditionalVae(model);
  b.net->to(b.device);
  b.net->train();

  torch::optim::Adam opt(b.net->vae_parameters(), torch::optim::AdamOptions(o.learning_rate));
  std::unique_ptr<torch::optim::Adam> adv_opt;
  if (model.adversary_weight > 0)
    adv_opt = std::make_unique<torch::optim::Adam>(b.net->adversary_parameters(),
                                                   torch::optim::AdamOptions(o.learning_rate));
  auto gen = at::detail::createCPUGenerator(o.seed + 1);
  auto start = std::chrono::steady_clock::now();
  double acc_loss = 0, acc_rec = 0, acc_kl = 0, acc_adv = 0;
  int64_t acc_n = 0;
  // A streamed source: a thread draws and reads the next batch while this one trains (the sampler is used by that
  // thread alone, in step order, so the draws are those of the loop without it).
  using CropBatch = std::pair<torch::Tensor, torch::Tensor>;
  std::optional<train::BatchPrefetcher<CropBatch>> prefetch;
  if (train.streamed()) prefetch.emplace(o.steps, [&](int64_t) { return sampler.sample(o.batch_size); });
  for (int64_t step = 1; step <= o.steps; ++step) {
    auto [mel, places] = prefetch ? prefetch->next() : sampler.sample(o.batch_size);
    auto x = ((mel.to(b.device) - b.band_mean.to(b.device)) / b.band_std.to(b.device)).transpose(1, 2).unsqueeze(1);
    auto v = places.to(b.device);
    // Noise from a CPU generator for reproducibility across devices.
    models::VaeLossParts parts;
    {
      // Forward and backward under the precision; the optimiser steps on float32 parameters.
      torch_compat::PrecisionScope scope(o.precision, b.device);
      if (b.device.is_cpu()) {
        parts = models::vae_loss(b.net, x, v, step, gen);
      } else {
        parts = models::vae_loss(b.net, x, v, step);
      }
      opt.zero_grad();
      parts.total.backward();
    }
    if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(b.net->vae_parameters(), o.grad_clip);
    opt.step();
    if (adv_opt) {
      adv_opt->zero_grad();
      torch_compat::PrecisionScope scope(o.precision, b.device);
      auto al = models::adversary_loss(b.net, parts.z.detach(), v);
      al.backward();
      adv_opt->step();
    }
    acc_loss += parts.total.item<double>();
    acc_rec += parts.reconstruction.item<double>();
    acc_kl += parts.kl.item<double>();
    acc_adv += parts.adversary.item<double>();
    ++acc_n;
    if (step % o.log_every == 0 || step == o.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      Json rec{{"step", step},
               {"loss", acc_loss / acc_n},
               {"reconstruction", acc_rec / acc_n},
               {"kl", acc_kl / acc_n},
               {"adversary", acc_adv / acc_n},
               {"beta", parts.beta},
               {"crops_per_s", secs > 0 ? static_cast<double>(step * o.batch_size) / secs : 0.0}};
      if (val.size() > 0) {
        rec["val_reconstruction"] = evaluate_reconstruction(b, val, 4);
        b.net->train();
      }
      if (on_metrics) on_metrics(rec);
      acc_loss = acc_rec = acc_kl = acc_adv = 0;
      acc_n = 0;
    }
  }
  b.net->eval();
  return b;
}

}  // namespace songlines::generate
