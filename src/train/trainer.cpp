#include "train/trainer.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "core/test_kill_point.h"
#include "train/batch_prefetcher.h"
#include "train/distributed.h"
#include "train/generator_state.h"

namespace songlines::train {

namespace {
// The random state of the generators a training epoch draws from (CPU: batch order, crop offsets and CPU
// dropout; the device's own for dropout on CUDA), as hex in the checkpoint's JSON. Restoring it makes a resumed
// run draw exactly what the uninterrupted one draws, whatever checkpoint_every is.
std::vector<at::Generator> training_generators(const torch::Device& device) {
  std::vector<at::Generator> g{at::detail::getDefaultCPUGenerator()};
  if (device.is_cuda()) g.push_back(at::globalContext().defaultGenerator(device));
  return g;
}

Json generator_states(const torch::Device& device) {
  Json out = Json::array();
  for (auto& gen : training_generators(device)) out.push_back(generator_state_hex(gen));
  return out;
}

void restore_generator_states(const Json& states, const torch::Device& device, const std::string& where) {
  auto gens = training_generators(device);
  if (!states.is_array() || states.size() != gens.size())
    throw InputError(where, "rng: expected " + std::to_string(gens.size()) + " generator states");
  for (size_t k = 0; k < gens.size(); ++k) restore_generator_state_hex(gens[k], states[k].get<std::string>(), where);
}

torch::Tensor to_tensor(const std::vector<float>& x, int64_t n, int64_t dim) {
  return torch::from_blob(const_cast<float*>(x.data()), {n, dim}, torch::kFloat32).clone();
}

// Data-parallel start of member m (docs/scaling.md): every rank takes rank 0's starting epoch, parameters and
// (when resuming) optimiser state, so all replicas are equal before the first step and stay so (each step applies
// the same all-reduced gradient). Ranks > 0 then reseed their generator: the epoch's order and crop windows come
// from rank 0 (broadcast each epoch), so theirs draws only dropout masks, which should differ between ranks.
int start_replicas(DistributedGroup& group, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   int start_epoch, uint64_t seed) {
  start_epoch = std::stoi(group.broadcast_bytes(std::to_string(start_epoch), "the starting epoch"));
  broadcast_module(group, model);
  if (start_epoch > 0) {
    std::ostringstream saved;
    if (group.rank() == 0) torch::save(optimizer, saved);
    std::istringstream in(group.broadcast_bytes(saved.str(), "the optimiser state"));
    if (group.rank() != 0) torch::load(optimizer, in);
  }
  constexpr uint64_t kRankStride = 1000003u, kEpochStride = 7919u;
  if (group.rank() != 0)
    torch::manual_seed(seed + kRankStride * static_cast<uint64_t>(group.rank()) +
                       kEpochStride * static_cast<uint64_t>(start_epoch));
  return start_epoch;
}

torch::Tensor unit_targets(const Dataset& data, const std::vector<int64_t>& rows) {
  std::vector<float> v;
  for (auto i : rows)
    for (double c : geo::to_unit_vector(data.coords[i])) v.push_back(static_cast<float>(c));
  return to_tensor(v, static_cast<int64_t>(rows.size()), 3);
}
}  // namespace

void TrainOptions::validate(const std::string& path) const {
  const auto k = [&](const char* key) { return key_path(path, key); };
  if (crop_frames < 1) throw ConfigError(k("crop_frames") + ": must be >= 1");
  if (eval_crops < 1) throw ConfigError(k("eval_crops") + ": must be >= 1");
  if (epochs < 1) throw ConfigError(k("epochs") + ": must be >= 1");
  if (batch_size < 0) throw ConfigError(k("batch_size") + ": must be >= 0");
  if (ensemble < 1) throw ConfigError(k("ensemble") + ": must be >= 1");
  if (!(learning_rate > 0)) throw ConfigError(k("learning_rate") + ": must be > 0");
}

NeuralLocationEstimator::NeuralLocationEstimator(models::LocationModelOptions model, TrainOptions train)
    : model_options_(std::move(model)), train_options_(std::move(train)) {
  device_ = torch_compat::resolve_device(train_options_.device);
}

torch::Tensor NeuralLocationEstimator::training_centres(const Dataset& data, const std::vector<int64_t>& rows) {
  // Points closer than ~1 km (0.01 degree grid) are one location.
  std::map<std::pair<long, long>, geo::LatLon> unique;
  for (auto i : rows) {
    auto p = data.coords[i];
    unique.emplace(std::make_pair(std::lround(p.lat * 100), std::lround(p.lon * 100)), p);
  }
  std::vector<float> v;
  for (const auto& [key, p] : unique)
    for (double c : geo::to_unit_vector(p)) v.push_back(static_cast<float>(c));
  return to_tensor(v, static_cast<int64_t>(unique.size()), 3);
}

void NeuralLocationEstimator::fit(const Dataset& data, const std::vector<int64_t>& rows, const EpochCallback& on_epoch) {
  const int64_t n = static_cast<int64_t>(rows.size());
  centres_ = training_centres(data, rows);
  torch::Tensor x;
  const FrameSequences* seq = data.sequences.get();
  if (temporal()) {
    if (!seq) throw UsageError("model \"temporal\": the data has no frame sequences (use data.shards with frames)");
    frame_blocks_ = seq->blocks;
    standardizer_ = Standardizer::fit_frames(*seq, rows);
    input_dim_ = seq->dim;
  } else {
    standardizer_ = Standardizer::fit(data, rows);
    input_dim_ = data.dim;
    x = to_tensor(standardizer_.apply(data, rows), n, data.dim).to(device_);
  }
  auto y = unit_targets(data, rows).to(device_);
  // Temporal models never take the whole set as one batch: [N, T, D] would not fit; 32 tracks by default.
  const int64_t requested = train_options_.batch_size > 0 ? train_options_.batch_size : (temporal() ? 32 : n);
  const int64_t batch = std::min(requested, n);
  // Data-parallel (a torch.distributed group, docs/scaling.md): each global batch of the epoch's order is split
  // by rank (rows b+rank, b+rank+W, ...), gradients are all-reduced with weights rows_r / rows, and rank 0 alone
  // writes checkpoints. One process (no group): world 1, rank 0, and the loop below is the one-process loop.
  DistributedGroup* group = current_group();
  const int64_t world = group ? group->world_size() : 1, rank = group ? group->rank() : 0;
  members_.clear();
  for (int m = 0; m < train_options_.ensemble; ++m) {
    torch::manual_seed(train_options_.seed + static_cast<uint64_t>(m));
    models::LocationModel model(model_options_, input_dim_, centres_);
    model->to(device_);
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(train_options_.learning_rate)
                                                         .weight_decay(train_options_.weight_decay));
    int start_epoch = 0;
    std::filesystem::path ckpt_base;
    if (checkpoint_dir_) {
      ckpt_base = *checkpoint_dir_ / ("member-" + std::to_string(m));
      auto state = ckpt_base;
      state += ".json";
      if (rank == 0 && std::filesystem::exists(state)) {
        Json s = load_json_file(state.string());
        start_epoch = s.at("epoch").get<int>();
        // The files the marker names (checkpoints before this scheme used member-M.pt / .optim.pt).
        const auto weights = *checkpoint_dir_ / s.value("weights", ckpt_base.filename().string() + ".pt");
        const auto optim = *checkpoint_dir_ / s.value("optimizer", ckpt_base.filename().string() + ".optim.pt");
        torch_compat::load_module(*model, weights.string(), device_);
        torch::load(optimizer, optim.string());
        if (s.contains("rng")) {
          restore_generator_states(s["rng"], device_, state.string());
        } else {  // a checkpoint written before the state was kept: the re-seed those versions used
          torch::manual_seed(train_options_.seed + static_cast<uint64_t>(m) + 7919u * static_cast<uint64_t>(start_epoch));
        }
      }
    }
    if (group)
      start_epoch = start_replicas(*group, *model, optimizer, start_epoch, train_options_.seed + static_cast<uint64_t>(m));
    model->train();
    for (int epoch = start_epoch; epoch < train_options_.epochs; ++epoch) {
      auto order = batch < n ? torch::randperm(n, torch::TensorOptions().dtype(torch::kLong)) : torch::Tensor();
      // Crop windows come from the torch generator too, so a seeded run is reproducible and resumable.
      auto offsets = temporal() ? torch::rand({n}, torch::kFloat64) : torch::Tensor();
      for (auto* drawn : {&order, &offsets})
        if (group && drawn->defined()) {
          std::vector<torch::Tensor> t{*drawn};
          group->broadcast(t, "the epoch's order");
        }
      auto order_dev = order.defined() ? order.to(device_) : order;
      double total = 0;
      // Temporal: the tracks and first frames of this rank's crops of the batch starting at row b of the epoch's
      // order.
      auto crop_batch = [&, order, offsets](int64_t b) {
        std::vector<int64_t> tracks, starts;
        const int64_t* ord = order.defined() ? order.data_ptr<int64_t>() : nullptr;
        const double* off = offsets.data_ptr<double>();
        for (int64_t j = b + rank; j < std::min(b + batch, n); j += world) {
          int64_t i = ord ? ord[j] : j;
          int64_t t = rows[i];
          int64_t slack = std::max<int64_t>(0, seq->length(t) - train_options_.crop_frames);
          tracks.push_back(t);
          starts.push_back(static_cast<int64_t>(off[i] * static_cast<double>(slack + 1)) % (slack + 1));
        }
        return crops(*seq, tracks, starts);
      };
      // Streamed frames: a thread reads the next batch's crops from the shards while this one trains. The crops
      // are the same either way (the windows were drawn above, before any batch).
      std::optional<BatchPrefetcher<torch::Tensor>> prefetch;
      if (temporal() && seq->streamed())
        prefetch.emplace((n + batch - 1) / batch, [&](int64_t k) { return crop_batch(k * batch); });
      for (int64_t b = 0; b < n; b += batch) {
        const int64_t e = std::min(b + batch, n);
        torch::Tensor xb = x, yb = y;
        if (temporal()) {
          xb = (prefetch ? prefetch->next() : crop_batch(b)).to(device_);
          yb = order.defined() ? y.index_select(0, order_dev.slice(0, b + rank, e, world)) : y.slice(0, rank, n, world);
        } else if (batch < n) {
          auto idx = order_dev.slice(0, b + rank, e, world);
          xb = x.index_select(0, idx);
          yb = y.index_select(0, idx);
        } else if (world > 1) {
          xb = x.slice(0, rank, n, world);
          yb = y.slice(0, rank, n, world);
        }
        const int64_t local_rows = xb.size(0);
        optimizer.zero_grad();
        if (local_rows > 0) {  // a rank can have no rows of a batch smaller than the world; it still takes part below
          auto loss = model->head().loss(model->forward(xb), yb);
          loss.backward();
          total += loss.item<double>() * static_cast<double>(local_rows);
        }
        if (group)
          all_reduce_gradients(*group, model->parameters(), static_cast<double>(local_rows) / static_cast<double>(e - b));
        optimizer.step();
      }
      if (group) total = group->all_reduce_sum(total, "the epoch's loss");
      if (on_epoch) on_epoch(epoch, total / static_cast<double>(n));
      test_kill_point("train-epoch-done");
      int done = epoch + 1;
      if (rank == 0 && checkpoint_dir_ && train_options_.checkpoint_every > 0 &&
          (done % train_options_.checkpoint_every == 0 || done == train_options_.epochs)) {
        std::filesystem::create_directories(*checkpoint_dir_);
        // Weights and optimizer state under names of this epoch, then the marker (member-M.json) that names them,
        // written last: a kill at any point leaves the previous checkpoint whole and in force. The marker also
        // holds the random state, so a run resumed here draws the same batches, crops and dropout masks as an
        // uninterrupted one, and as one without checkpoints.
        const std::string stem = ckpt_base.filename().string() + ".e" + std::to_string(done);
        const Json files{{"weights", stem + ".pt"}, {"optimizer", stem + ".optim.pt"}};
        const auto state = ckpt_base.string() + ".json";
        const Json previous = std::filesystem::exists(state) ? load_json_file(state) : Json::object();
        torch_compat::save_module(*model, (*checkpoint_dir_ / files["weights"].get<std::string>()).string());
        torch_compat::save_optimizer(optimizer, (*checkpoint_dir_ / files["optimizer"].get<std::string>()).string());
        test_kill_point("epoch-checkpoint-files-written");
        Json marker = files;
        marker.update({{"epoch", done}, {"member", m}, {"rng", generator_states(device_)}});
        write_json_file_atomic(state, marker);
        for (const auto& [key, name] : files.items())  // the files the previous marker named, now superseded
          if (previous.contains(key) && previous[key] != name)
            std::filesystem::remove(*checkpoint_dir_ / previous[key].get<std::string>());
        test_kill_point("epoch-checkpoint-written");
      }
    }
    model->eval();
    members_.push_back(model);
  }
}

torch::Tensor NeuralLocationEstimator::crops(const FrameSequences& seq, const std::vector<int64_t>& tracks,
                                            const std::vector<int64_t>& starts) const {
  const int64_t t_len = train_options_.crop_frames, d = seq.dim;
  auto out = torch::zeros({static_cast<int64_t>(tracks.size()), t_len, d}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  for (size_t b = 0; b < tracks.size(); ++b) {
    const int64_t take = std::min(t_len, seq.length(tracks[b]) - starts[b]);
    float* row = dst + static_cast<int64_t>(b) * t_len * d;
    seq.copy_rows(tracks[b], starts[b], take, row);
    standardizer_.apply_inplace(row, take);
  }
  return out;
}

LocationPrediction NeuralLocationEstimator::combine(std::vector<torch::Tensor>& raws, int64_t n) {
  auto& head = members_.front()->head();
  auto units = head.predict(raws);
  auto unc = head.uncertainty_km(raws, units).to(torch::kCPU, torch::kFloat64).contiguous();
  auto ll = models::unit_to_latlon(units).to(torch::kCPU, torch::kFloat64).contiguous();
  LocationPrediction out;
  for (int64_t i = 0; i < n; ++i) {
    out.points.push_back({ll[i][0].item<double>(), ll[i][1].item<double>()});
    out.uncertainty_km.push_back(unc[i].item<double>());
  }
  return out;
}

LocationPrediction NeuralLocationEstimator::predict_sequences(const FrameSequences& seq,
                                                              const std::vector<int64_t>& tracks) {
  TORCH_CHECK(!members_.empty(), "predict before fit/load");
  if (!temporal()) throw UsageError("predict_sequences: the " + model_options_.type + " model reads summary rows");
  if (seq.dim != input_dim_)
    throw InputError("frames", "width " + std::to_string(seq.dim) + " but the model expects " + std::to_string(input_dim_));
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(tracks.size());
  // Crop c of every track starts at an evenly spaced frame; each crop's output is one "member" for the head,
  // so crops (and ensemble members) are combined the way the head combines members.
  std::vector<torch::Tensor> raws;
  for (int c = 0; c < train_options_.eval_crops; ++c) {
    std::vector<int64_t> starts;
    for (auto t : tracks) {
      int64_t slack = std::max<int64_t>(0, seq.length(t) - train_options_.crop_frames);
      starts.push_back(train_options_.eval_crops == 1 ? slack / 2 : slack * c / (train_options_.eval_crops - 1));
    }
    auto x = crops(seq, tracks, starts).to(device_);
    for (auto& m : members_) {
      m->eval();
      raws.push_back(m->forward(x));
    }
  }
  return combine(raws, n);
}

LocationPrediction NeuralLocationEstimator::predict(const Dataset& data, const std::vector<int64_t>& rows) {
  if (temporal()) {
    if (!data.sequences) throw UsageError("model \"temporal\": the data has no frame sequences");
    return predict_sequences(*data.sequences, rows);
  }
  std::vector<float> x;
  for (auto i : rows) x.insert(x.end(), data.row(i), data.row(i) + data.dim);
  return predict_raw(x, static_cast<int64_t>(rows.size()));
}

LocationPrediction NeuralLocationEstimator::predict_raw(const std::vector<float>& raw, int64_t n) {
  TORCH_CHECK(!members_.empty(), "predict before fit/load");
  if (temporal())
    throw UsageError("the temporal model predicts from frame sequences (shards with frames or audio), not summary rows");
  auto x = raw;
  standardizer_.apply_inplace(x.data(), n);
  torch::NoGradGuard no_grad;
  auto xt = to_tensor(x, n, input_dim_).to(device_);
  std::vector<torch::Tensor> raws;
  for (auto& m : members_) {
    m->eval();
    raws.push_back(m->forward(xt));
  }
  return combine(raws, n);
}

void NeuralLocationEstimator::save(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  auto c = centres_.to(torch::kCPU).contiguous();
  std::vector<float> cv(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  for (size_t m = 0; m < members_.size(); ++m)
    torch_compat::save_module(*members_[m], (dir / ("member-" + std::to_string(m) + ".pt")).string());
  write_json_file_atomic((dir / "model.json").string(), {{"type", kSavedType},
                                                          {"model", fields_to_json(model_options_)},
                                                          {"train", fields_to_json(train_options_)},
                                                          {"input_dim", input_dim_},
                                                          {"centres", cv},
                                                          {"members", members_.size()},
                                                          {"standardizer", standardizer_.to_json()},
                                                          {"frame_blocks", frame_blocks_}});
}

std::unique_ptr<NeuralLocationEstimator> NeuralLocationEstimator::load(const std::filesystem::path& dir,
                                                                       const std::string& device) {
  Json j = load_json_file((dir / "model.json").string());
  (void)j.at("model").at("type");  // a model.json's model names its type (json::out_of_range when it does not)
  const auto mo = fields_from_json<models::LocationModelOptions>(j.at("model"), "model");
  auto to = fields_from_json<TrainOptions>(j.at("train"), "train");
  to.device = device;
  auto est = std::make_unique<NeuralLocationEstimator>(mo, to);
  est->input_dim_ = j.at("input_dim").get<int64_t>();
  est->standardizer_ = Standardizer::from_json(j.at("standardizer"));
  est->frame_blocks_ = j.value("frame_blocks", std::vector<std::string>{});
  auto cv = j.at("centres").get<std::vector<float>>();
  est->centres_ = to_tensor(cv, static_cast<int64_t>(cv.size() / 3), 3);
  for (int64_t m = 0; m < j.at("members").get<int64_t>(); ++m) {
    models::LocationModel model(mo, est->input_dim_, est->centres_);
    torch_compat::load_module(*model, (dir / ("member-" + std::to_string(m) + ".pt")).string(), est->device_);
    model->to(est->device_);
    model->eval();
    est->members_.push_back(model);
  }
  return est;
}

}  // namespace songlines::train
