#include "runs/vocoder_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "audio/audio_file.h"
#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "core/jsonl_log.h"
#include "extract/extract.h"
#include "generate/spectrogram_image.h"
#include "generate/stft_distance.h"
#include "generate/vae_generator.h"
#include "models/torch_compat.h"
#include "songlines/version.h"

namespace songlines::runs {

namespace fs = std::filesystem;
using namespace generate;

VocoderRunConfig VocoderRunConfig::from_json(const Json& j, const fs::path& base_dir) {
  VocoderRunConfig c;
  ConfigReader r(j, "");
  r.accept("task");
  refuse_train_seed_and_device(j);
  if (j.contains("model")) {
    if (!j["model"].is_object()) throw ConfigError("model: expected object, got " + json_type_name(j["model"]));
    for (const char* k : {"n_mels", "n_fft", "hop_length"})
      if (j["model"].contains(k)) throw ConfigError(std::string("model.") + k + ": set by the mel analysis (\"mel\")");
  }
  r.read("mel_from_vae", c.mel_from_vae);
  if (r.has("mel") && !c.mel_from_vae.empty())
    throw ConfigError("mel: give either \"mel\" or \"mel_from_vae\", not both");
  auto resolve = [&](std::string& p) {
    if (!p.empty() && p != kGriffinLimVocoder && fs::path(p).is_relative()) p = (base_dir / p).lexically_normal().string();
  };
  if (!c.mel_from_vae.empty()) {
    resolve(c.mel_from_vae);
    const fs::path vae_cfg = fs::path(c.mel_from_vae) / kVaeConfigFile;
    if (!fs::exists(vae_cfg)) throw ConfigError("mel_from_vae: " + vae_cfg.string() + " does not exist");
    const Json v = load_json_file(vae_cfg.string());
    if (!v.contains("audio")) throw ConfigError("mel_from_vae: " + vae_cfg.string() + " has no \"audio\"");
    c.mel = MelAnalysisOptions::from_json(v["audio"], "mel_from_vae(audio)");
  }
  read_fields(r, c);
  r.finish();
  for (auto& a : c.audio) resolve(a);
  for (auto& a : c.train_only) resolve(a);
  if (c.audio.empty()) throw ConfigError("data.audio: needs at least one file or folder");
  if (c.val_fraction < 0 || c.val_fraction >= 1) throw ConfigError("data.val_fraction: must be in [0, 1)");
  if (c.max_seconds < 0) throw ConfigError("data.max_seconds: must be >= 0");
  c.model = vocoder_options_for(c.mel, c.model);
  if (c.checkpoint_every <= 0) throw ConfigError("checkpoint_every: must be positive");
  resolve(c.eval_vae);
  for (auto& a : c.eval_audio) resolve(a);
  if (c.eval_tracks < 0 || c.eval_samples < 0) throw ConfigError("evaluation: tracks and samples must be >= 0");
  if (!(c.eval_seconds > 0)) throw ConfigError("evaluation.seconds: must be positive");
  if (const std::string p = generate::griffin_lim_iterations_problem(c.griffin_lim_iterations); !p.empty())
    throw ConfigError("evaluation.griffin_lim_iterations: " + p);
  c.train.seed = c.seed;
  c.train.device = c.device;
  return c;
}

Json VocoderRunConfig::to_json() const {
  Json j = fields_to_json(*this);
  j["task"] = "vocoder";
  erase_train_seed_and_device(j);
  for (const char* k : {"n_mels", "n_fft", "hop_length"}) j["model"].erase(k);
  return j;
}

namespace {

struct Split {
  std::vector<fs::path> train, val;
};

Split split_files(const VocoderRunConfig& c, std::ostream& log) {
  std::vector<fs::path> inputs(c.audio.begin(), c.audio.end());
  std::vector<extract::FailedFile> failed;
  auto list = extract::find_audio_files(inputs, failed);
  for (const auto& f : failed) log << "vocoder: skipping " << f.path << ": " << f.reason << "\n";
  if (list.files.empty()) throw InputError(c.audio.front(), "no audio files found under data.audio");
  std::vector<fs::path> files = list.files;
  std::mt19937_64 rng(c.seed);
  std::shuffle(files.begin(), files.end(), rng);
  if (c.max_tracks > 0 && files.size() > static_cast<size_t>(c.max_tracks)) files.resize(c.max_tracks);
  size_t n_val = static_cast<size_t>(std::floor(c.val_fraction * files.size()));
  if (c.val_fraction > 0 && n_val == 0 && files.size() >= 2) n_val = 1;
  Split s;
  s.val.assign(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(n_val));
  s.train.assign(files.begin() + static_cast<std::ptrdiff_t>(n_val), files.end());
  // Files of another list join one side of the split; one already on the other side is an error.
  auto add_files = [&](const std::vector<std::string>& paths, std::vector<fs::path>& side, const std::vector<fs::path>& other,
                       const std::string& key, const std::string& other_what) {
    if (paths.empty()) return;
    std::vector<fs::path> extra(paths.begin(), paths.end());
    std::vector<extract::FailedFile> extra_failed;
    for (const auto& f : extract::find_audio_files(extra, extra_failed).files) {
      if (std::find(other.begin(), other.end(), f) != other.end()) throw InputError(f.string(), key + " holds " + other_what);
      if (std::find(side.begin(), side.end(), f) == side.end()) side.push_back(f);
    }
    for (const auto& f : extra_failed) log << "vocoder: " << key << " skips " << f.path << ": " << f.reason << "\n";
  };
  add_files(c.train_only, s.train, s.val, "data.train_only", "a held-out file of data.audio");
  if (s.train.empty()) throw InputError(c.audio.front(), "no training file left after the held-out split");
  add_files(c.eval_audio, s.val, s.train, "evaluation.audio", "a training file");
  return s;
}

// The middle `seconds` of a file (the whole file when seconds is 0 or longer than it).
std::vector<float> load_middle(const fs::path& file, int sample_rate, double seconds) {
  audio::LoadOptions lo;
  lo.sample_rate = sample_rate;
  if (seconds > 0) {
    const auto info = audio::probe_audio(file.string());
    const double dur = info.native_sample_rate > 0 && info.native_frames > 0 && info.native_frames < (int64_t{1} << 50)
                           ? static_cast<double>(info.native_frames) / info.native_sample_rate
                           : audio::load_audio(file.string(), lo).duration_s();
    lo.offset_s = std::max(0.0, dur / 2 - seconds / 2);
    lo.duration_s = seconds;
  }
  return audio::load_audio(file.string(), lo).samples;
}

Json spread(const std::vector<double>& v) {
  if (v.empty()) return Json();
  double m = 0;
  for (double x : v) m += x / static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  const double sd = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0;
  return Json{{"mean", m}, {"std", sd}, {"min", *std::min_element(v.begin(), v.end())},
              {"max", *std::max_element(v.begin(), v.end())}, {"n", v.size()}};
}

// Keeps the records of metrics.jsonl up to step (a resumed run appends from there).
void trim_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      const Json r = Json::parse(line);
      if (r.value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const Json::exception&) {
      // a torn last line: dropped
    }
  }
  write_file_atomic(file, kept);
}

struct Scores {
  std::vector<double> mr_stft, lsd;
  void add(const torch::Tensor& ref, const torch::Tensor& est, const MelAnalysisOptions& a) {
    mr_stft.push_back(multi_resolution_stft_distance(ref, est).total);
    lsd.push_back(log_spectral_distance(ref, est, a.n_fft, a.hop_length));
  }
  Json to_json() const { return Json{{"mr_stft", spread(mr_stft)}, {"lsd_db", spread(lsd)}}; }
};

std::string fmt(const Json& s) {
  if (s.is_null()) return "-";
  char b[64];
  std::snprintf(b, sizeof b, "%.3f +- %.3f", s["mean"].get<double>(), s["std"].get<double>());
  return b;
}

void write_report(const fs::path& run_dir, const Json& metrics, const std::vector<std::string>& sample_names) {
  std::ostringstream md, html;
  md << "# Vocoder run\n\nHeld-out clips (" << metrics["evaluation"]["tracks"] << " files, "
     << metrics["evaluation"]["seconds_each"] << " s each from the middle); lower is better; mean +- sample std.\n\n"
     << "| audio from | MR-STFT | log-spectral distance (dB) |\n| --- | ---: | ---: |\n";
  html << "<!doctype html><meta charset=utf-8><title>vocoder run</title><h1>Vocoder run</h1><table border=1>"
          "<tr><th>audio from<th>MR-STFT<th>LSD (dB)";
  const Json& e = metrics["evaluation"];
  for (const auto& [key, label] : std::vector<std::pair<std::string, std::string>>{
           {"vocoder_true_mel", "vocoder on the true mel"},
           {"griffin_lim_true_mel", "NNLS + Griffin-Lim on the true mel"},
           {"vae_vocoder", "VAE reconstruction + vocoder"},
           {"vae_griffin_lim", "VAE reconstruction + NNLS + Griffin-Lim"}}) {
    if (!e.contains(key)) continue;
    md << "| " << label << " | " << fmt(e[key]["mr_stft"]) << " | " << fmt(e[key]["lsd_db"]) << " |\n";
    html << "<tr><td>" << label << "<td>" << fmt(e[key]["mr_stft"]) << "<td>" << fmt(e[key]["lsd_db"]);
  }
  html << "</table>";
  md << "\nSynthesis speed: " << metrics.value("vocoder_audio_seconds_per_second", 0.0)
     << " s of audio per second (vocoder), " << metrics.value("griffin_lim_audio_seconds_per_second", 0.0)
     << " (NNLS + Griffin-Lim), on " << metrics["device"].get<std::string>() << ".\n\n## Samples\n";
  for (const auto& n : sample_names) {
    md << "\n### " << n << "\n\n| reference | vocoder | Griffin-Lim |\n| --- | --- | --- |\n| ![](samples/" << n
       << "_reference.png) | ![](samples/" << n << "_vocoder.png) | ![](samples/" << n << "_griffin_lim.png) |\n";
    html << "<h2>" << n << "</h2><table><tr>";
    for (const char* w : {"reference", "vocoder", "griffin_lim"})
      html << "<td>" << w << "<br><img src=\"samples/" << n << "_" << w << ".png\"><br><audio controls src=\"samples/"
           << n << "_" << w << ".wav\"></audio>";
    html << "</table>";
  }
  write_file_atomic(run_dir / "report.md", md.str());
  write_file_atomic(run_dir / "report.html", html.str());
}

Json evaluate(VocoderBundle& voc, const VocoderRunConfig& c, const std::vector<fs::path>& val, const fs::path& run_dir,
              std::ostream& log, std::vector<std::string>& sample_names, double& voc_rate, double& gl_rate) {
  const MelAnalysisOptions& a = voc.audio;
  VaeBundle path;  // the generation audio path (mel_db_to_audio) without a VAE
  path.audio = a;
  std::optional<VaeBundle> vae;
  if (!c.eval_vae.empty()) {
    vae = load_vae_bundle(c.eval_vae, voc.device);
    vae->vocoder.reset();
    if (!(vae->audio == a))
      throw InputError(c.eval_vae, "the VAE's mel analysis " + vae->audio.to_json().dump() + " differs from the vocoder's " +
                                       a.to_json().dump());
  }
  auto shared = std::shared_ptr<VocoderBundle>(&voc, [](VocoderBundle*) {});
  Scores s_voc, s_gl, s_vae_voc, s_vae_gl;
  double voc_s = 0, gl_s = 0, audio_s = 0;
  int done = 0;
  Json clips = Json::array();
  for (const auto& file : val) {
    if (done >= c.eval_tracks) break;
    std::vector<float> samples;
    try {
      samples = load_middle(file, a.sample_rate, c.eval_seconds);
    } catch (const Error& e) {
      log << "vocoder: evaluation skips " << file.string() << ": " << e.what() << "\n";
      continue;
    }
    if (samples.size() < static_cast<size_t>(a.n_fft)) continue;
    auto y = torch::tensor(samples, torch::kFloat32);
    const int64_t n = y.size(0);
    torch::NoGradGuard ng;
    auto mel = mel_db(y.to(voc.device), a);
    auto t0 = std::chrono::steady_clock::now();
    path.vocoder = shared;
    auto y_voc = mel_db_to_audio(path, mel, n, c.seed);
    auto t1 = std::chrono::steady_clock::now();
    path.vocoder.reset();
    auto y_gl = mel_db_to_audio(path, mel, n, c.seed, c.griffin_lim_iterations);
    auto t2 = std::chrono::steady_clock::now();
    voc_s += std::chrono::duration<double>(t1 - t0).count();
    gl_s += std::chrono::duration<double>(t2 - t1).count();
    audio_s += static_cast<double>(n) / a.sample_rate;
    s_voc.add(y, y_voc, a);
    s_gl.add(y, y_gl, a);
    Json clip{{"file", file.string()},
              {"vocoder_true_mel", {{"mr_stft", s_voc.mr_stft.back()}, {"lsd_db", s_voc.lsd.back()}}},
              {"griffin_lim_true_mel", {{"mr_stft", s_gl.mr_stft.back()}, {"lsd_db", s_gl.lsd.back()}}}};
    if (vae) {
      auto rec = transfer_mel_db(*vae, mel, vae->default_place, vae->default_place);
      vae->vocoder = shared;
      s_vae_voc.add(y, mel_db_to_audio(*vae, rec, n, c.seed), a);
      vae->vocoder.reset();
      s_vae_gl.add(y, mel_db_to_audio(*vae, rec, n, c.seed, c.griffin_lim_iterations), a);
      clip["vae_vocoder"] = {{"mr_stft", s_vae_voc.mr_stft.back()}, {"lsd_db", s_vae_voc.lsd.back()}};
      clip["vae_griffin_lim"] = {{"mr_stft", s_vae_gl.mr_stft.back()}, {"lsd_db", s_vae_gl.lsd.back()}};
    }
    clips.push_back(clip);
    if (done < c.eval_samples) {
      const std::string name = "heldout" + std::to_string(done);
      for (const auto& [what, wav] : std::vector<std::pair<std::string, torch::Tensor>>{
               {"reference", y}, {"vocoder", y_voc}, {"griffin_lim", y_gl}}) {
        auto w = wav.contiguous();
        audio::write_audio((run_dir / "samples" / (name + "_" + what + ".wav")).string(), w.data_ptr<float>(), w.numel(),
                           a.sample_rate);
        write_spectrogram_png(run_dir / "samples" / (name + "_" + what + ".png"), mel_db(w, a));
      }
      sample_names.push_back(name);
    }
    ++done;
  }
  voc_rate = voc_s > 0 ? audio_s / voc_s : 0;
  gl_rate = gl_s > 0 ? audio_s / gl_s : 0;
  Json e{{"tracks", done}, {"seconds_each", c.eval_seconds}, {"griffin_lim_iterations", c.griffin_lim_iterations}};
  if (done == 0) return e;
  e["vocoder_true_mel"] = s_voc.to_json();
  e["griffin_lim_true_mel"] = s_gl.to_json();
  e["clips"] = clips;
  if (vae) {
    e["vae"] = c.eval_vae;
    e["vae_vocoder"] = s_vae_voc.to_json();
    e["vae_griffin_lim"] = s_vae_gl.to_json();
  }
  return e;
}

}  // namespace

Json run_vocoder_experiment(const VocoderRunConfig& c, const fs::path& run_dir_arg, std::ostream& log) {
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  const DirLock lock(run_dir);
  const Json resolved = c.to_json();
  const RunDirState state = check_run_dir(run_dir, resolved);
  if (state == RunDirState::kComplete) {
    log << "vocoder: " << run_dir.string() << " is complete, skipped (same config, metrics.json present)\n";
    return load_json_file((run_dir / "metrics.json").string());
  }
  const torch::Device device = torch_compat::resolve_device(c.device);
  const Split split = split_files(c, log);
  std::vector<AudioClip> clips;
  for (const auto& f : split.train) {
    try {
      auto s = load_middle(f, c.mel.sample_rate, c.max_seconds);
      clips.push_back({f.string(), torch::tensor(s, torch::kFloat32)});
    } catch (const Error& e) {
      log << "vocoder: skipping " << f.string() << ": " << e.what() << "\n";
    }
  }
  log << "vocoder: " << clips.size() << " training and " << split.val.size() << " held-out files\n";
  VocoderTrainer trainer(clips, c.model, c.mel, c.train);
  fs::create_directories(run_dir / "checkpoints");
  fs::create_directories(run_dir / "samples");
  write_json_file_atomic((run_dir / "config.json").string(), resolved);
  write_json_file_atomic((run_dir / "env.json").string(),
                         Json{{"songlines_version", kVersion}, {"git_revision", git_revision()}, {"device", device.str()},
                              {"torch_version", torch_compat::version()}, {"seed", c.seed}});
  if (state == RunDirState::kUnfinished && trainer.restore_checkpoint(run_dir)) {
    log << "vocoder: resuming at step " << trainer.step() << "\n";
    trim_metrics(run_dir / "metrics.jsonl", trainer.step());
  } else {
    fs::remove(run_dir / "metrics.jsonl");
  }
  JsonlLog jsonl(run_dir / "metrics.jsonl");
  Json last;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t resumed_at = trainer.step();
  while (trainer.step() < c.train.steps) {
    const int64_t next = std::min<int64_t>(c.train.steps, (trainer.step() / c.checkpoint_every + 1) * c.checkpoint_every);
    trainer.train_until(next, [&](const Json& rec) {
      jsonl.append(rec);
      log << "vocoder: step " << rec["step"] << " loss " << rec["loss"] << " mr_stft " << rec["mr_stft"] << " mel "
          << rec["mel"] << "\n";
      last = rec;
    });
    trainer.save_checkpoint(run_dir);
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  VocoderBundle& voc = trainer.bundle();
  voc.net->eval();
  voc.run_dir = run_dir;
  save_vocoder_bundle(voc, run_dir);

  Json metrics{{"task", "vocoder"},
               {"device", device.str()},
               {"train_files", clips.size()},
               {"val_files", split.val.size()},
               {"steps", c.train.steps},
               {"resumed_at_step", resumed_at},
               {"train_seconds_this_process", train_s},
               {"parameters", [&] {
                  int64_t n = 0;
                  for (const auto& p : voc.net->parameters()) n += p.numel();
                  return n;
                }()},
               {"final_train", last}};
  std::vector<std::string> sample_names;
  double voc_rate = 0, gl_rate = 0;
  metrics["evaluation"] = evaluate(voc, c, split.val, run_dir, log, sample_names, voc_rate, gl_rate);
  metrics["vocoder_audio_seconds_per_second"] = voc_rate;
  metrics["griffin_lim_audio_seconds_per_second"] = gl_rate;
  write_report(run_dir, metrics, sample_names);
  write_json_file_atomic((run_dir / "metrics.json").string(), metrics);
  return metrics;
}

PreparedRun prepare_vocoder_run(const Json& j, const fs::path& base_dir) {
  return prepare_metrics_run<VocoderRunConfig>("vocoder", j, base_dir, &run_vocoder_experiment);
}

}  // namespace songlines::runs
