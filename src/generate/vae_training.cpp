#include "generate/vae_training.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/test_kill_point.h"
#include "models/torch_compat.h"
#include "train/batch_prefetcher.h"
#include "train/distributed.h"
#include "train/generator_state.h"

namespace songlines::generate {

Json VaeTrainOptions::to_json() const { return fields_to_json(*this); }

VaeTrainOptions VaeTrainOptions::from_json(const Json& j, const std::string& path) {
  return fields_from_json<VaeTrainOptions>(j, path);
}

void VaeTrainOptions::validate(const std::string& path) const {
  if (steps < 0 || batch_size <= 0 || !(learning_rate > 0) || log_every <= 0)
    throw ConfigError(path + ": steps >= 0, batch_size > 0, learning_rate > 0 and log_every > 0 are required");
  if (checkpoint_every < 0)
    throw ConfigError(path + ".checkpoint_every: must be >= 0 (0: no checkpoints), got " +
                      std::to_string(checkpoint_every));
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

// Seeds of rank r's crop sampler and noise generator: rank 0 keeps the one-process seeds, so one rank is the
// one-process run; the others are far from every seed a sweep would use.
constexpr uint64_t kVaeRankSeedStride = 1000003u;

// Rank r's crops of a batch of `batch`: as equal as can be, the first batch % world ranks one more.
int vae_rank_share(int batch, int world, int rank) { return batch / world + (rank < batch % world ? 1 : 0); }

std::string vae_sampler_state(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

std::string vae_read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("cannot read " + file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// An optimiser's state as bytes, and back (rank 0 reads it from its checkpoint file and hands it to the others).
std::string vae_optimizer_bytes(const torch::optim::Optimizer& opt) {
  std::ostringstream out;
  torch::save(opt, out);
  return out.str();
}
void vae_load_optimizer_bytes(torch::optim::Optimizer& opt, const std::string& bytes) {
  std::istringstream in(bytes);
  torch::load(opt, in);
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

int64_t vae_checkpoint_step(const std::filesystem::path& checkpoint_dir) {
  const auto marker = checkpoint_dir / kVaeTrainCheckpointFile;
  if (checkpoint_dir.empty() || !std::filesystem::exists(marker)) return 0;
  return load_json_file(marker.string()).at("step").get<int64_t>();
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
  // Data-parallel (docs/scaling.md): rank r trains `share` crops of each step's batch, drawn by its own sampler.
  train::DistributedGroup* group = train::current_group();
  const int world = group ? group->world_size() : 1, rank = group ? group->rank() : 0;
  if (o.batch_size < world)
    throw ConfigError("train.batch_size (" + std::to_string(o.batch_size) + ") must be at least the number of ranks (" +
                      std::to_string(world) + "): each rank trains its share of every batch");
  const int share = vae_rank_share(o.batch_size, world, rank);
  const double weight = static_cast<double>(share) / static_cast<double>(o.batch_size);
  const uint64_t rank_seed = o.seed + kVaeRankSeedStride * static_cast<uint64_t>(rank);
  CropSampler sampler{train, {}, model.segment_frames, std::mt19937_64(rank_seed)};
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
  auto gen = at::detail::createCPUGenerator(rank_seed + 1);
  // The generator the reparameterisation noise comes from: gen on the CPU, the device's own on CUDA (reseeded on
  // ranks > 0 so that the ranks draw different noise).
  at::Generator noise_gen = b.device.is_cpu() ? gen : at::globalContext().defaultGenerator(b.device);
  if (!b.device.is_cpu() && rank > 0) {
    std::lock_guard<std::mutex> lock(noise_gen.mutex());
    noise_gen.set_current_seed(rank_seed + 1);
  }
  double acc_loss = 0, acc_rec = 0, acc_kl = 0, acc_adv = 0;
  int64_t acc_n = 0;

  // Resume: rank 0 reads the last checkpoint's marker and hands it, the weights and the optimiser states to every
  // rank; each rank takes its own random state and partial log sums from it.
  const bool checkpointing = o.checkpoint_every > 0 && !o.checkpoint_dir.empty();
  const std::filesystem::path marker_file = o.checkpoint_dir / kVaeTrainCheckpointFile;
  int64_t start_step = 0;
  {
    std::string text;
    if (checkpointing && rank == 0 && std::filesystem::exists(marker_file)) text = vae_read_text(marker_file);
    if (group) text = group->broadcast_bytes(text, "the VAE checkpoint's marker");
    if (!text.empty()) {
      const Json marker = Json::parse(text);
      const int written_by = marker.at("world_size").get<int>();
      if (written_by != world)
        throw ConfigError(marker_file.string() + ": the checkpoint was written by " + std::to_string(written_by) +
                          " rank(s) and this job has " + std::to_string(world) + ": resume it with " +
                          std::to_string(written_by) + ", or delete the file to train from the start");
      start_step = marker.at("step").get<int64_t>();
      std::string optim, adv;
      if (rank == 0) {
        torch_compat::load_module(*b.net, (o.checkpoint_dir / marker.at("weights").get<std::string>()).string(), b.device);
        optim = vae_read_text(o.checkpoint_dir / marker.at("optimizer").get<std::string>());
        if (adv_opt) adv = vae_read_text(o.checkpoint_dir / marker.at("adversary_optimizer").get<std::string>());
      }
      if (group) {
        optim = group->broadcast_bytes(optim, "the VAE optimiser's state");
        if (adv_opt) adv = group->broadcast_bytes(adv, "the adversary optimiser's state");
      }
      vae_load_optimizer_bytes(opt, optim);
      if (adv_opt) vae_load_optimizer_bytes(*adv_opt, adv);
      const Json& mine = marker.at("ranks").at(static_cast<size_t>(rank));
      std::istringstream sampler_state(mine.at("sampler").get<std::string>());
      sampler_state >> sampler.rng;
      if (!sampler_state) throw InputError(marker_file.string(), "ranks[" + std::to_string(rank) + "].sampler: not a generator state");
      train::restore_generator_state_hex(noise_gen, mine.at("noise").get<std::string>(), marker_file.string());
      const Json& acc = mine.at("acc");
      acc_loss = acc.at(0).get<double>();
      acc_rec = acc.at(1).get<double>();
      acc_kl = acc.at(2).get<double>();
      acc_adv = acc.at(3).get<double>();
      acc_n = acc.at(4).get<int64_t>();
    }
  }
  if (group) broadcast_module(*group, *b.net);  // every replica starts from rank 0's parameters

  // The sampler's state after drawing the batch of each checkpoint step (taken by whichever thread draws).
  std::mutex snapshot_mutex;
  std::map<int64_t, std::string> sampler_snapshots;
  auto draw = [&](int64_t step) {
    auto batch = sampler.sample(share);
    if (checkpointing && step % o.checkpoint_every == 0) {
      std::lock_guard<std::mutex> lock(snapshot_mutex);
      sampler_snapshots[step] = vae_sampler_state(sampler.rng);
    }
    return batch;
  };
  // Rank 0 writes the weights, the optimiser states and every rank's random state and log sums under names of
  // this step, then the marker naming them (a kill at any point leaves the previous checkpoint whole), then
  // removes the files the previous marker named.
  auto write_checkpoint = [&](int64_t step) {
    std::string sampler_state;
    {
      std::lock_guard<std::mutex> lock(snapshot_mutex);
      sampler_state = sampler_snapshots.at(step);
      sampler_snapshots.erase(step);
    }
    const Json mine{{"sampler", sampler_state},
                    {"noise", train::generator_state_hex(noise_gen)},
                    {"acc", {acc_loss, acc_rec, acc_kl, acc_adv, acc_n}}};
    const std::vector<std::string> states =
        group ? group->all_gather_bytes(mine.dump(), "the ranks' random states") : std::vector<std::string>{mine.dump()};
    if (rank != 0) return;
    std::filesystem::create_directories(o.checkpoint_dir);
    const std::string stem = "train-step-" + std::to_string(step);
    Json marker{{"step", step}, {"world_size", world}, {"weights", stem + ".pt"}, {"optimizer", stem + ".optim.pt"}};
    if (adv_opt) marker["adversary_optimizer"] = stem + ".adversary.pt";
    torch_compat::save_module(*b.net, (o.checkpoint_dir / marker["weights"].get<std::string>()).string());
    torch_compat::save_optimizer(opt, (o.checkpoint_dir / marker["optimizer"].get<std::string>()).string());
    if (adv_opt)
      torch_compat::save_optimizer(*adv_opt, (o.checkpoint_dir / marker["adversary_optimizer"].get<std::string>()).string());
    Json ranks = Json::array();
    for (const auto& st : states) ranks.push_back(Json::parse(st));
    marker["ranks"] = ranks;
    const Json previous = std::filesystem::exists(marker_file) ? load_json_file(marker_file.string()) : Json::object();
    write_json_file_atomic(marker_file.string(), marker);
    for (const char* key : {"weights", "optimizer", "adversary_optimizer"})
      if (previous.contains(key) && previous[key] != marker.value(key, Json()))
        std::filesystem::remove(o.checkpoint_dir / previous[key].get<std::string>());
  };

  auto start = std::chrono::steady_clock::now();
  // A streamed source: a thread draws and reads the next batch while this one trains (the sampler is used by that
  // thread alone, in step order, so the draws are those of the loop without it).
  using CropBatch = std::pair<torch::Tensor, torch::Tensor>;
  std::optional<train::BatchPrefetcher<CropBatch>> prefetch;
  if (train.streamed())
    prefetch.emplace(o.steps - start_step, [&](int64_t k) { return draw(start_step + k + 1); });
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    auto [mel, places] = prefetch ? prefetch->next() : draw(step);
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
    // Each rank's loss is the mean over its crops: the weighted sum of the gradients is the whole batch's.
    if (group) all_reduce_gradients(*group, b.net->vae_parameters(), weight);
    if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(b.net->vae_parameters(), o.grad_clip);
    opt.step();
    if (adv_opt) {
      adv_opt->zero_grad();
      torch_compat::PrecisionScope scope(o.precision, b.device);
      auto al = models::adversary_loss(b.net, parts.z.detach(), v);
      al.backward();
      if (group) all_reduce_gradients(*group, b.net->adversary_parameters(), weight);
      adv_opt->step();
    }
    acc_loss += parts.total.item<double>();
    acc_rec += parts.reconstruction.item<double>();
    acc_kl += parts.kl.item<double>();
    acc_adv += parts.adversary.item<double>();
    ++acc_n;
    if (step % o.log_every == 0 || step == o.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double sums[4] = {acc_loss, acc_rec, acc_kl, acc_adv};
      if (group) {  // the whole batch's means: each rank's weighted by its share
        std::vector<torch::Tensor> t{torch::tensor({sums[0] * weight, sums[1] * weight, sums[2] * weight, sums[3] * weight},
                                                   torch::kFloat64)};
        group->all_reduce_sum(t, "the training losses");
        for (int k = 0; k < 4; ++k) sums[k] = t[0][k].item<double>();
      }
      if (rank == 0) {
        Json rec{{"step", step},
                 {"loss", sums[0] / acc_n},
                 {"reconstruction", sums[1] / acc_n},
                 {"kl", sums[2] / acc_n},
                 {"adversary", sums[3] / acc_n},
                 {"beta", parts.beta},
                 {"crops_per_s", secs > 0 ? static_cast<double>((step - start_step) * o.batch_size) / secs : 0.0}};
        if (val.size() > 0) {
          rec["val_reconstruction"] = evaluate_reconstruction(b, val, 4);
          b.net->train();
        }
        if (on_metrics) on_metrics(rec);
      }
      acc_loss = acc_rec = acc_kl = acc_adv = 0;
      acc_n = 0;
    }
    if (checkpointing && step % o.checkpoint_every == 0) {
      write_checkpoint(step);
      test_kill_point("vae-checkpoint-written");
    }
    test_kill_point("vae-step-done");
  }
  b.net->eval();
  return b;
}

}  // namespace songlines::generate
