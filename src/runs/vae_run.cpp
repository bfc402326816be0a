#include "runs/vae_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "audio/audio_file.h"
#include "core/atomic_file.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/jsonl_log.h"
#include "core/progress.h"
#include "features/feature_options.h"
#include "generate/spectrogram_image.h"
#include "generate/stft_distance.h"
#include "generate/vae_generator.h"
#include "geo/gazetteer.h"
#include "models/torch_compat.h"
#include "runs/run_writer.h"
#include "shards/shard.h"
#include "train/dataset.h"
#include "train/distributed.h"
#include "songlines/version.h"

namespace songlines::runs {

namespace fs = std::filesystem;
using namespace generate;  // the VAE's training, generation and evaluation

namespace {
// Places no anthem in ../shared/data/anthems comes from: generation where the model saw no data.
const std::vector<SamplePlace>& default_unseen_places() {
  static const std::vector<SamplePlace> p = {{"reykjavik", {64.15, -21.94}},
                                             {"ulaanbaatar", {47.92, 106.92}},
                                             {"nairobi", {-1.29, 36.82}},
                                             {"la_paz", {-16.50, -68.15}},
                                             {"mid_pacific", {0.0, -160.0}}};
  return p;
}
}  // namespace

void SamplePlace::validate(const std::string& path) const {
  if (!geo::is_valid(place)) throw ConfigError(path + ": coordinates out of range");
}

VaeRunConfig VaeRunConfig::from_json(const Json& j, const fs::path& base_dir) {
  VaeRunConfig c;
  c.sample_places = default_unseen_places();
  ConfigReader r(j, "");
  r.accept("task");
  refuse_train_seed_and_device(j);
  // A present "model" must be an object (null too, unlike the other sections: VaeOptions::from_json).
  if (j.contains("model") && !j["model"].is_object())
    throw ConfigError("model: expected object, got " + json_type_name(j["model"]));
  r.read("vocoder", c.vocoder);
  if (!c.vocoder.empty() && c.vocoder != kGriffinLimVocoder) {
    if (fs::path(c.vocoder).is_relative()) c.vocoder = (base_dir / c.vocoder).lexically_normal().string();
    if (!fs::exists(fs::path(c.vocoder) / kVocoderConfigFile))
      throw ConfigError("vocoder: " + (fs::path(c.vocoder) / kVocoderConfigFile).string() +
                        " does not exist (a finished vocoder run directory, or \"griffin-lim\")");
  }
  read_fields(r, c);
  r.finish();
  for (auto& s : c.shards)
    if (fs::path(s).is_relative()) s = (base_dir / s).lexically_normal().string();
  if (c.val_fraction < 0 || c.val_fraction >= 1) throw ConfigError("data.val_fraction: must be in [0, 1)");
  if (c.memory_budget_mb < 0) throw ConfigError("data.memory_budget_mb: must be >= 0 (0: a quarter of the memory)");
  // Checked here, not after training: the limits generation itself enforces, named by their config keys.
  if (!(c.sample_seconds > 0 && c.sample_seconds <= kMaxGenerateSeconds))
    throw ConfigError("samples.seconds: must be in (0, " + std::to_string(static_cast<int>(kMaxGenerateSeconds)) +
                      "], got " + std::to_string(c.sample_seconds));
  if (const std::string p = generate::griffin_lim_iterations_problem(c.griffin_lim_iterations); !p.empty())
    throw ConfigError("samples.griffin_lim_iterations: " + p);
  c.train.seed = c.seed;
  c.train.device = c.device;
  return c;
}

Json VaeRunConfig::to_json() const {
  Json j = fields_to_json(*this);
  j["task"] = "vae";
  erase_train_seed_and_device(j);
  if (!vocoder.empty()) j["vocoder"] = vocoder;  // absent when unset: earlier runs keep their identity
  return j;
}

VaeRunConfig load_vae_run_config(const fs::path& file, const std::vector<std::string>& overrides) {
  Json j = load_json_file(file.string());
  for (const auto& o : overrides) apply_override(j, o);
  return VaeRunConfig::from_json(j, fs::absolute(file).parent_path());
}

namespace {

// The run's tracks: a seeded shuffle of the shards' tracks with places and at least segment_frames frames, the
// first val_fraction of them held out. Their frames are loaded into memory when they fit data.memory_budget_mb
// (as before streaming existed); otherwise they are read on demand through a FrameStore of that budget
// (docs/scaling.md "Data larger than memory"). Both give the same crops, so the same run.
struct LoadedData {
  std::vector<MelTrack> in_memory;          // the chosen tracks' frames (held-out first), when they fit
  std::unique_ptr<MelCropSource> all;       // the chosen tracks, held-out ones first, in memory or streamed
  std::unique_ptr<MelSourceSelection> train, val;
  const ShardMelSource* streamed = nullptr;  // d.all when streamed (its store's accounting is logged)
  std::vector<std::string> val_paths;       // source audio of the val tracks ("" when unknown)
  std::set<std::string> train_countries;    // ISO2
  MelAnalysisOptions audio;
  std::vector<fs::path> shard_files;        // every shard read, in order
  Json feature_options;                     // the first shard's features::FeatureOptions JSON
};

// The mel analysis a shard's frames were made with.
MelAnalysisOptions shard_analysis(const shards::ShardReader& r, const std::string& feature) {
  const auto& at = r.attributes();
  MelAnalysisOptions a;
  a.sample_rate = at.sample_rate;
  a.n_fft = at.n_fft;
  a.hop_length = at.hop_length;
  a.n_mels = static_cast<int>(r.frame_dim(feature));
  if (at.feature_options.is_object()) {
    const Json& fo = at.feature_options;
    if (fo.contains("mel") && fo["mel"].is_object()) {
      a.fmin = fo["mel"].value("fmin", 0.0);
      a.fmax = fo["mel"].value("fmax", 0.0);
    }
    if (fo.contains("db") && fo["db"].is_object()) {
      a.amin = fo["db"].value("amin", 1e-10);
      a.top_db = fo["db"].value("top_db", 80.0);
    }
  }
  return a;
}

LoadedData load_data(const VaeRunConfig& c, std::ostream& log) {
  LoadedData d;
  // Every usable track's place in the shards and what the run needs of it; no frames are read here.
  struct Candidate {
    size_t shard;
    int64_t row;
    int64_t frames;
    std::string path, country;
  };
  std::vector<Candidate> all;
  bool have_attributes = false;
  for (const auto& spec : c.shards) {
    for (const auto& file : shards::list_shards(spec)) {
      shards::ShardReader r(file);
      if (d.shard_files.empty()) d.feature_options = r.attributes().feature_options;
      d.shard_files.push_back(file);
      if (!r.has_frames(c.feature)) throw InputError(file.string(), "no /frames/" + c.feature + " array");
      const MelAnalysisOptions a = shard_analysis(r, c.feature);
      if (have_attributes && !(a == d.audio))
        throw InputError(file.string(), "analysis options differ from the first shard's (" + d.audio.to_json().dump() + ")");
      d.audio = a;
      have_attributes = true;
      for (int64_t t = 0; t < r.size(); ++t) {
        if (!std::isfinite(r.latitudes()[t]) || !std::isfinite(r.longitudes()[t])) continue;
        const int64_t frames = r.offsets()[t + 1] - r.offsets()[t];
        if (frames < c.model.segment_frames) continue;
        all.push_back({d.shard_files.size() - 1, t, frames, r.paths()[t], r.countries()[t]});
      }
    }
  }
  if (all.empty())
    throw InputError(c.shards.empty() ? "data.shards" : c.shards.front(),
                     "no track with coordinates and at least " + std::to_string(c.model.segment_frames) + " frames");
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(c.seed);
  std::shuffle(order.begin(), order.end(), rng);
  if (c.max_tracks > 0 && order.size() > static_cast<size_t>(c.max_tracks)) order.resize(c.max_tracks);
  const size_t n_val = all.size() > 1 ? static_cast<size_t>(std::floor(c.val_fraction * order.size())) : 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const Candidate& t = all[order[k]];
    if (k < n_val) d.val_paths.push_back(t.path);
    else if (!t.country.empty()) d.train_countries.insert(t.country);
  }

  int64_t frame_bytes = 0;
  for (const size_t i : order) frame_bytes += all[i].frames * d.audio.n_mels * static_cast<int64_t>(sizeof(float));
  const int64_t budget = c.memory_budget_mb > 0 ? c.memory_budget_mb << 20 : train::default_memory_budget_bytes();
  const auto mib = [](int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; };
  // The chosen tracks (by their place k in the chosen order) of each shard: every shard is opened once.
  std::vector<std::vector<size_t>> by_shard(d.shard_files.size());
  for (size_t k = 0; k < order.size(); ++k) by_shard[all[order[k]].shard].push_back(k);
  // source_track[k]: the k-th chosen track's index in d.all.
  std::vector<int64_t> source_track(order.size());
  if (frame_bytes <= budget) {
    d.in_memory.resize(order.size());
    for (size_t s = 0; s < by_shard.size(); ++s) {
      if (by_shard[s].empty()) continue;
      shards::ShardReader r(d.shard_files[s]);
      for (const size_t k : by_shard[s]) {
        const int64_t row = all[order[k]].row;
        auto m = r.read_frames(c.feature, row);
        d.in_memory[k] = {r.ids()[row], {r.latitudes()[row], r.longitudes()[row]},
                          torch::from_blob(m.data.data(), {m.frames, m.dim}, torch::kFloat32).clone()};
      }
    }
    std::vector<const MelTrack*> tracks;
    for (const auto& t : d.in_memory) tracks.push_back(&t);
    d.all = std::make_unique<InMemoryMelSource>(std::move(tracks));
    for (size_t k = 0; k < order.size(); ++k) source_track[k] = static_cast<int64_t>(k);
    log << "vae: frames in memory (" << mib(frame_bytes) << ", data.memory_budget_mb " << mib(budget) << ")\n";
  } else {
    // The store holds the chosen tracks shard by shard, in shard order.
    std::vector<ShardTracks> layout;
    int64_t next = 0;
    for (size_t s = 0; s < by_shard.size(); ++s) {
      if (by_shard[s].empty()) continue;
      std::sort(by_shard[s].begin(), by_shard[s].end(),
                [&](size_t a, size_t b) { return all[order[a]].row < all[order[b]].row; });
      ShardTracks st{d.shard_files[s], {}};
      for (const size_t k : by_shard[s]) {
        st.tracks.push_back(all[order[k]].row);
        source_track[k] = next++;
      }
      layout.push_back(std::move(st));
    }
    train::FrameStoreOptions so;
    so.budget_bytes = budget;
    auto source = std::make_unique<ShardMelSource>(layout, c.feature, so);
    d.streamed = source.get();
    d.all = std::move(source);
    log << "vae: frames streamed from the shards (" << mib(frame_bytes) << " > data.memory_budget_mb " << mib(budget)
        << ": read on demand through a cache of that size)\n";
  }
  d.val = std::make_unique<MelSourceSelection>(
      *d.all, std::vector<int64_t>(source_track.begin(), source_track.begin() + static_cast<std::ptrdiff_t>(n_val)));
  d.train = std::make_unique<MelSourceSelection>(
      *d.all, std::vector<int64_t>(source_track.begin() + static_cast<std::ptrdiff_t>(n_val), source_track.end()));
  log << "vae: " << d.train->size() << " training and " << d.val->size() << " held-out tracks\n";
  return d;
}

Json env_json(const VaeRunConfig& c, const torch::Device& device, const Json& world) {
  Json env{{"songlines_version", kVersion}, {"git_revision", git_revision()},
           {"device", device.str()},        {"torch_version", torch_compat::version()},
           {"seed", c.seed},                {"cuda_available", torch_compat::cuda_available()}};
  env.update(world);  // world_size, backend
  return env;
}

// A resumed run's metrics.jsonl: the records up to the checkpoint's step (those after it are written again),
// rewritten atomically; returns the last of them (the run's "final_train" if training had ended there).
Json keep_records_until(const fs::path& file, int64_t step) {
  std::ifstream in(file);
  std::string line, kept;
  Json last;
  while (std::getline(in, line)) {
    const Json rec = Json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.is_object() || !rec.contains("step") || rec["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
    last = rec;
    last.erase("phase");
  }
  write_file_atomic(file, kept);
  return last;
}

// How long ranks > 0 wait for rank 0's evaluation and writes after training. Far longer than any collective:
// evaluation (samples, geo-consistency) can take many minutes; a rank 0 that dies ends the wait at once (its
// sockets close), only a hung one is waited for this long.
constexpr int kVaeEvaluationWaitS = 24 * 3600;

// MR-STFT of the VAE's reconstruction (through the run's audio path: its vocoder, or NNLS + Griffin-Lim),
// Griffin-Lim on the true magnitude (the phase reconstruction's ceiling), NNLS + Griffin-Lim on the true mel (the
// mel representation's ceiling) and, with a vocoder, the vocoder on the true mel; keys name what made the audio.
Json evaluate_audio(VaeBundle& b, const VaeRunConfig& c, const LoadedData& d, std::ostream& log) {
  std::vector<double> vae, gl_true, gl_mel, voc_mel;
  VaeBundle griffin_lim_path;  // the audio path without the vocoder (mel_db_to_audio reads only these fields)
  griffin_lim_path.audio = b.audio;
  griffin_lim_path.device = b.device;
  for (size_t i = 0; i < d.val_paths.size() && static_cast<int>(vae.size()) < c.eval_audio_tracks; ++i) {
    const std::string& path = d.val_paths[i];
    if (path.empty() || !fs::is_regular_file(path)) continue;
    audio::LoadOptions lo;
    lo.sample_rate = b.audio.sample_rate;
    audio::MonoAudio full;
    try {
      const double dur = audio::load_audio(path, lo).duration_s();
      lo.offset_s = std::max(0.0, dur / 2 - c.eval_audio_seconds / 2);
      lo.duration_s = c.eval_audio_seconds;
      full = audio::load_audio(path, lo);
    } catch (const Error& e) {
      log << "vae: evaluation skips " << path << ": " << e.what() << "\n";
      continue;
    }
    auto y = torch::tensor(full.samples, torch::kFloat32);
    const geo::LatLon place = d.val->place(static_cast<int64_t>(i));
    auto rec = transfer_audio(b, full.samples, place, place, c.seed, c.griffin_lim_iterations);
    vae.push_back(multi_resolution_stft_distance(y, torch::tensor(rec)).total);
    GriffinLimOptions gl;
    gl.n_fft = b.audio.n_fft;
    gl.hop_length = b.audio.hop_length;
    gl.iterations = c.griffin_lim_iterations;
    gl.seed = c.seed;
    auto yt = y.to(b.device);
    gl_true.push_back(multi_resolution_stft_distance(
                          y, griffin_lim(magnitude_stft(yt, gl.n_fft, gl.hop_length), y.size(0), gl).cpu())
                          .total);
    const auto true_mel = mel_db(yt, b.audio);
    gl_mel.push_back(multi_resolution_stft_distance(y, mel_db_to_audio(griffin_lim_path, true_mel, y.size(0), c.seed,
                                                                       c.griffin_lim_iterations))
                         .total);
    if (b.vocoder)
      voc_mel.push_back(multi_resolution_stft_distance(y, mel_db_to_audio(b, true_mel, y.size(0), c.seed)).total);
  }
  if (vae.empty()) return Json();
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  Json out{{"tracks", vae.size()},
           {"seconds_each", c.eval_audio_seconds},
           {"audio_path", b.vocoder ? "vocoder" : kGriffinLimVocoder},  // what made vae_mr_stft's audio
           {"vae_mr_stft", mean(vae)},
           {"griffin_lim_true_magnitude_mr_stft", mean(gl_true)},
           {"griffin_lim_true_mel_mr_stft", mean(gl_mel)}};
  if (b.vocoder) out["vocoder_true_mel_mr_stft"] = mean(voc_mel);
  return out;
}


// Distinct training places (to 0.001 degrees), a seeded pick of at most max_places.
std::vector<geo::LatLon> generation_places(const VaeRunConfig& c, const LoadedData& d) {
  std::vector<geo::LatLon> places;
  std::set<std::pair<long, long>> seen;
  for (int64_t t = 0; t < d.train->size(); ++t) {
    const geo::LatLon p = d.train->place(t);
    if (seen.insert({std::lround(p.lat * 1000), std::lround(p.lon * 1000)}).second) places.push_back(p);
  }
  std::mt19937_64 rng(c.seed + 7);
  std::shuffle(places.begin(), places.end(), rng);
  if (c.geo.max_places > 0 && places.size() > static_cast<size_t>(c.geo.max_places)) places.resize(c.geo.max_places);
  return places;
}

// The middle min(want_frames, its length) frames of a track: [frames, n_mels].
torch::Tensor middle_crop(const MelCropSource& tracks, int64_t t, int64_t want_frames) {
  const int64_t frames = std::min<int64_t>(want_frames, tracks.frames(t));
  return tracks.crop(t, (tracks.frames(t) - frames) / 2, frames);
}

Json spread_over(const std::vector<double>& km) {
  const SeedSpread s = SeedSpread::of(km);
  return Json{{"mean_km", s.mean_km}, {"std_km", s.std_km}, {"n", km.size()}};
}

// The tracks the geo-consistency kNN is fitted on (training tracks) and scored on (held-out tracks): the shards'
// seed summary features, and the feature extractor that turns clips into the same rows.
struct GeoReference {
  train::Dataset ds;
  std::vector<int64_t> train_rows, val_rows;  ///< rows of ds
  std::shared_ptr<const features::FeatureExtractor> extractor;
  std::string skipped;  ///< why there is no reference ("" when there is one)
};

GeoReference load_geo_reference(const VaeBundle& b, const LoadedData& d) {
  GeoReference ref;
  try {
    ref.ds = train::load_summary_dataset(d.shard_files, features::seed_feature_names());
  } catch (const InputError& e) {
    ref.skipped = std::string("no seed summary features in the shards: ") + e.what();
    return ref;
  }
  features::FeatureOptions fo = features::FeatureOptions::from_json(d.feature_options, "shard feature_options");
  if (fo.sample_rate != b.audio.sample_rate)
    throw InputError(d.shard_files.front().string(), "feature sample rate " + std::to_string(fo.sample_rate) +
                                                         " differs from the mel analysis's");
  fo.features = ref.ds.features;
  ref.extractor = std::make_shared<const features::FeatureExtractor>(fo);

  std::set<std::string> train_ids, val_ids;
  for (int64_t t = 0; t < d.train->size(); ++t) train_ids.insert(d.train->id(t));
  for (int64_t t = 0; t < d.val->size(); ++t) val_ids.insert(d.val->id(t));
  for (int64_t i = 0; i < ref.ds.size(); ++i) {
    if (train_ids.count(ref.ds.ids[i])) ref.train_rows.push_back(i);
    else if (val_ids.count(ref.ds.ids[i])) ref.val_rows.push_back(i);
  }
  if (ref.train_rows.empty()) ref.skipped = "no training track has summary features";
  return ref;
}

// Replaces the reference by the tracks as the generator's audio path renders them (their middle want_frames of
// mel_db -> NNLS -> Griffin-Lim): generated and reference clips then share the vocoder's artefacts, and the kNN
// compares music rather than vocoder against no vocoder.
void vocode_reference(VaeBundle& b, const VaeRunConfig& c, const LoadedData& d, int64_t want_frames,
                      GeoReference& ref) {
  const int64_t hop = b.audio.hop_length;
  train::Dataset v;
  v.features = ref.ds.features;
  std::vector<int64_t> vt, vv;
  auto add = [&](const MelCropSource& tracks, int64_t t, std::vector<int64_t>& rows) {
    const auto crop = middle_crop(tracks, t, want_frames);
    auto wav = mel_db_to_audio(b, crop.to(b.device), (crop.size(0) - 1) * hop, c.seed, c.griffin_lim_iterations).contiguous();
    const auto row = clip_summaries(*ref.extractor, ref.ds.features,
                                    {std::vector<float>(wav.data_ptr<float>(), wav.data_ptr<float>() + wav.numel())});
    v.dim = static_cast<int64_t>(row.size());
    v.x.insert(v.x.end(), row.begin(), row.end());
    rows.push_back(v.size());
    v.coords.push_back(tracks.place(t));
    v.ids.push_back(tracks.id(t));
    v.countries.emplace_back();
    v.artists.emplace_back();
  };
  for (int64_t t = 0; t < d.train->size(); ++t) add(*d.train, t, vt);
  for (int64_t t = 0; t < d.val->size(); ++t) add(*d.val, t, vv);
  ref.ds = std::move(v);
  ref.train_rows = std::move(vt);
  ref.val_rows = std::move(vv);
}

// metrics.json "geo_consistency"."transfer": held-out tracks' middle clips encoded and decoded under another
// generation place (to_target; control: decoded under their own place), per seed. Null without sources.
Json transfer_scores(VaeBundle& b, const VaeRunConfig& c, const LoadedData& d, const std::vector<geo::LatLon>& places,
                     const std::vector<uint64_t>& seeds, const ClipLocator& locate, int64_t want_frames) {
  const MelCropSource& val = *d.val;
  const auto n = static_cast<size_t>(std::min<int64_t>(std::max(0, c.geo.transfer_tracks), val.size()));  // the first ones
  if (n == 0 || seeds.empty()) return Json();
  std::vector<double> to_target, control, to_source;
  for (const uint64_t seed : seeds) {
    std::vector<std::vector<float>> clips;
    std::vector<geo::LatLon> targets;
    for (size_t j = 0; j < n; ++j) {
      const auto t = static_cast<int64_t>(j);
      const geo::LatLon own = val.place(t);
      // Target: the (j + seed)-th generation place that is not the source's own place.
      geo::LatLon target = places[(j + seed) % places.size()];
      for (size_t q = 1; q < places.size() && geo::distance_km(target, own) < 1.0; ++q)
        target = places[(j + seed + q) % places.size()];
      const auto crop = middle_crop(val, t, want_frames);
      const int64_t length = (crop.size(0) - 1) * b.audio.hop_length;
      for (const auto& decode : {target, own}) {
        auto wav = mel_db_to_audio(b, transfer_mel_db(b, crop, own, decode), length, seed,
                                   c.griffin_lim_iterations).contiguous();
        clips.emplace_back(wav.data_ptr<float>(), wav.data_ptr<float>() + wav.numel());
      }
      targets.push_back(target);
    }
    const auto located = locate(clips);
    double a = 0, ctl = 0, src = 0;
    const double nd = static_cast<double>(n);
    for (size_t j = 0; j < n; ++j) {
      a += geo::distance_km(located[2 * j], targets[j]) / nd;
      ctl += geo::distance_km(located[2 * j + 1], targets[j]) / nd;
      src += geo::distance_km(located[2 * j], val.place(static_cast<int64_t>(j))) / nd;
    }
    to_target.push_back(a);
    control.push_back(ctl);
    to_source.push_back(src);
  }
  return Json{{"tracks", n},
              {"to_target", SeedSpread::of(to_target).to_json()},
              {"own_place_control_to_target", SeedSpread::of(control).to_json()},
              {"to_source", SeedSpread::of(to_source).to_json()}};
}

// metrics.json "geo_consistency" (docs/vae.md): a kNN location model fitted on the training tracks' summary
// features scores generated clips against their condition, the shuffled-condition control, the held-out real
// tracks, and transfer of held-out tracks to another place (control: decoded under their own place).
Json evaluate_geo_consistency(VaeBundle& b, const VaeRunConfig& c, const LoadedData& d, std::ostream& log) {
  const GeoConsistencyOptions& g = c.geo;
  const auto places = generation_places(c, d);
  if (places.size() < 2) return Json{{"skipped", "fewer than two distinct training places"}};
  GeoReference ref = load_geo_reference(b, d);
  if (!ref.skipped.empty()) return Json{{"skipped", ref.skipped}};
  const int64_t want_frames = 1 + static_cast<int64_t>(g.seconds * b.audio.sample_rate) / b.audio.hop_length;
  if (g.vocoded_reference) vocode_reference(b, c, d, want_frames, ref);
  const int k = std::min<int>(g.knn_k, static_cast<int>(ref.train_rows.size()));
  auto knn = std::make_shared<train::KnnBaseline>(k);
  knn->fit(ref.ds, ref.train_rows, {});
  const ClipLocator locate = make_clip_locator(ref.extractor, ref.ds.features, knn);

  std::vector<uint64_t> seeds;
  for (int s = 0; s < g.seeds; ++s) seeds.push_back(c.seed + 1000 + static_cast<uint64_t>(s));
  const ClipMaker make_clip = [&](const geo::LatLon& condition, uint64_t seed) {
    GenerateOptions o;
    o.seconds = g.seconds;
    o.seed = seed;
    o.place = condition;
    o.griffin_lim_iterations = c.griffin_lim_iterations;
    return generate_audio(b, o);
  };
  log << "vae: geo-consistency over " << places.size() << " places x " << seeds.size() << " seeds\n";
  const GeoConsistencyScores gen = score_geo_consistency(places, seeds, make_clip, locate);

  Json out{{"location_model",
            {{"type", train::KnnBaseline::kType}, {"k", k}, {"train_tracks", ref.train_rows.size()}, {"features", ref.ds.features},
             {"reference", g.vocoded_reference ? "audio path (mel -> NNLS -> Griffin-Lim)" : "shard summaries"}}},
           {"places", places.size()},
           {"seeds", seeds},
           {"seconds", g.seconds},
           {"generated", gen.conditioned.to_json()},
           {"shuffled_control", gen.shuffled.to_json()},
           {"margin_km", gen.shuffled.mean_km - gen.conditioned.mean_km}};
  if (!ref.val_rows.empty()) {
    const auto pred = knn->predict(ref.ds, ref.val_rows);
    std::vector<double> km;
    for (size_t i = 0; i < ref.val_rows.size(); ++i)
      km.push_back(geo::distance_km(pred.points[i], ref.ds.coords[ref.val_rows[i]]));
    out["real_held_out"] = spread_over(km);
  }
  const Json transfer = transfer_scores(b, c, d, places, seeds, locate, want_frames);
  if (!transfer.is_null()) out["transfer"] = transfer;
  return out;
}

}  // namespace

Json run_vae_experiment(const VaeRunConfig& c, const fs::path& run_dir_arg, std::ostream& log) {
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  // Data-parallel (docs/scaling.md): every rank loads the data and trains; rank 0 alone locks, reads and writes
  // the run directory and evaluates, the others wait for it at a barrier.
  const RunDirWriter run_dir_writer(run_dir);
  train::DistributedGroup* group = run_dir_writer.group();
  const bool writer = run_dir_writer.writer();
  // A finished run is never redone or replaced (docs/reliability.md): a different config is refused before
  // anything is written, the same config returns the stored metrics. An unfinished one (no metrics.json, which
  // is written last) resumes from its last training checkpoint (train.checkpoint_every), else is trained again
  // from the start: its partial files are all rewritten atomically.
  const RunDirState state = writer ? check_run_dir(run_dir, c.to_json()) : RunDirState::kNew;
  bool complete = state == RunDirState::kComplete;
  if (group) complete = group->broadcast_flag(complete, "whether the run is complete");
  if (complete) {
    if (!writer) return Json::object();
    log << "vae: " << run_dir.string() << " is complete, skipped (same config, metrics.json present; nothing is redone)\n";
    return load_json_file((run_dir / "metrics.json").string());
  }
  VaeTrainOptions train_options = c.train;
  train_options.checkpoint_dir = run_dir / "checkpoints";
  const int64_t resume_step =
      writer && state == RunDirState::kUnfinished && c.train.checkpoint_every > 0 ? vae_checkpoint_step(train_options.checkpoint_dir) : 0;
  if (state == RunDirState::kUnfinished) {
    if (resume_step > 0) log << "vae: " << run_dir.string() << " is unfinished; resuming from the checkpoint of step " << resume_step << "\n";
    else log << "vae: " << run_dir.string() << " is unfinished; training it again\n";
  }
  // Device and data are checked before the directory records a config, so a failed start (no GPU, missing
  // shards) leaves nothing that blocks the corrected rerun.
  const torch::Device device = torch_compat::resolve_device(c.device);
  LoadedData data = load_data(c, log);
  Json last;
  std::optional<JsonlLog> jsonl;
  if (writer) {
    fs::create_directories(run_dir / "checkpoints");
    fs::create_directories(run_dir / "samples");
    write_json_file_atomic((run_dir / "config.json").string(), c.to_json());
    write_json_file_atomic((run_dir / "env.json").string(), env_json(c, device, run_dir_writer.world()));
    // Training starts at step 0 (or the checkpoint's step), so its records start afresh (or are kept up to that
    // step); each record is one whole line (JsonlLog), so a kill never leaves half a line.
    if (resume_step > 0) {
      last = keep_records_until(run_dir / "metrics.jsonl", resume_step);
    } else {
      fs::remove(run_dir / "metrics.jsonl");
      fs::remove(train_options.checkpoint_dir / kVaeTrainCheckpointFile);  // not this run's: trained from step 0
    }
    jsonl.emplace(run_dir / "metrics.jsonl");
  } else {
    log << "rank " << group->rank() << " of " << group->world_size() << " (" << train::to_string(group->backend())
        << "): training with rank 0, which evaluates and writes the run directory\n";
  }
  auto t0 = std::chrono::steady_clock::now();
  // Steps, rate and ETA on a terminal (every log_every steps); nothing extra in a log. The records come on rank
  // 0 alone.
  ProgressBar bar("steps", c.train.steps, writer ? ProgressMode::kAuto : ProgressMode::kQuiet);
  VaeBundle b = train_vae(*data.train, *data.val, c.model, data.audio, train_options, [&](const Json& rec) {
    Json r = rec;
    r["phase"] = "train";
    jsonl->append(r);
    if (bar.enabled()) {
      char detail[64];
      std::snprintf(detail, sizeof detail, "loss %.4f", rec["loss"].get<double>());
      bar.set(rec["step"].get<int64_t>(), detail);
    } else {
      log << "vae: step " << rec["step"] << " loss " << rec["loss"] << " rec " << rec["reconstruction"] << " kl "
          << rec["kl"] << "\n";
    }
    last = rec;
  });
  bar.finish();
  if (!writer) {
    group->barrier("rank 0's evaluation and writes", kVaeEvaluationWaitS);
    return Json::object();
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!c.vocoder.empty()) select_vocoder(b, c.vocoder);  // samples, evaluation and the checkpoint use it
  save_vae_bundle(b, run_dir);

  Json metrics{{"task", "vae"},
               {"device", device.str()},
               {"train_tracks", data.train->size()},
               {"val_tracks", data.val->size()},
               {"steps", c.train.steps},
               {"train_seconds", train_s},
               {"train_crops_per_s", train_s > 0 ? c.train.steps * c.train.batch_size / train_s : 0.0},
               {"final_train", last},
               {"audio_path", b.vocoder ? b.vocoder->run_dir.string() : std::string(kGriffinLimVocoder)}};
  if (data.val->size() > 0) metrics["val_reconstruction_mse"] = evaluate_reconstruction(b, *data.val, 16);
  if (c.eval_audio_tracks > 0) {
    Json a = evaluate_audio(b, c, data, log);
    if (!a.is_null()) metrics["held_out_audio"] = a;
  }

  // Samples: the training countries' capitals and the configured places.
  std::vector<SamplePlace> places;
  if (c.sample_training_capitals) {
    const auto& gaz = geo::Gazetteer::builtin();
    for (const auto& iso : data.train_countries)
      if (const auto* country = gaz.find_by_iso2(iso))
        places.push_back({"capital_" + iso, country->capital_coords});
  }
  for (const auto& p : c.sample_places) places.push_back(p);
  std::ostringstream csv;  // samples/places.csv, written atomically once every sample is
  csv << "file,name,latitude,longitude,seed,seconds\n";
  double gen_audio_s = 0, gen_wall_s = 0;
  for (size_t i = 0; i < places.size(); ++i) {
    GenerateOptions o;
    o.seconds = c.sample_seconds;
    o.seed = c.seed + i;
    o.place = places[i].place;
    o.griffin_lim_iterations = c.griffin_lim_iterations;
    auto g0 = std::chrono::steady_clock::now();
    auto y = generate_audio(b, o);
    gen_wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();
    gen_audio_s += o.seconds;
    const std::string file = places[i].name + ".wav";
    audio::write_audio((run_dir / "samples" / file).string(), y.data(), static_cast<int64_t>(y.size()),
                       b.audio.sample_rate);
    // The picture of what was written: log-mel of the final waveform, [frames, n_mels].
    write_spectrogram_png(run_dir / "samples" / (places[i].name + ".png"), mel_db(torch::tensor(y), b.audio));
    csv << csv_field(file) << "," << csv_field(places[i].name) << "," << o.place.lat << "," << o.place.lon << "," << o.seed << ","
        << o.seconds << "\n";
  }
  write_file_atomic(run_dir / "samples" / "places.csv", csv.str());
  metrics["samples"] = places.size();
  if (gen_wall_s > 0) metrics["generation_audio_seconds_per_second"] = gen_audio_s / gen_wall_s;
  if (c.geo.seeds > 0) {
    Json geo = evaluate_geo_consistency(b, c, data, log);
    if (geo.contains("skipped")) log << "vae: geo-consistency skipped: " << geo["skipped"].get<std::string>() << "\n";
    metrics["geo_consistency"] = geo;
  }
  if (data.streamed) {
    const auto st = data.streamed->store().stats();
    log << "vae: frame cache peak " << st.peak_cached_bytes << " of " << data.streamed->store().options().budget_bytes
        << " bytes, " << st.page_misses << " pages read (" << st.bytes_read << " bytes) in " << st.read_seconds
        << " s, " << st.page_hits << " served from the cache\n";
  }
  write_json_file_atomic((run_dir / "metrics.json").string(), metrics);
  if (group) group->barrier("rank 0's evaluation and writes", kVaeEvaluationWaitS);
  return metrics;
}

MelAnalysisOptions shards_mel_analysis(const fs::path& shards, const std::string& feature) {
  const auto files = shards::list_shards(shards);
  if (files.empty()) throw InputError(shards.string(), "no shards");
  return shard_analysis(shards::ShardReader(files.front()), feature);
}

PreparedRun prepare_vae_run(const Json& j, const fs::path& base_dir) {
  return prepare_metrics_run<VaeRunConfig>("vae", j, base_dir, &run_vae_experiment);
}

}  // namespace songlines::runs
