#include "runs/quickstart.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>

#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "extract/synthetic_set.h"
#include "features/device.h"
#include "runs/report.h"
#include "runs/vae_run.h"

namespace songlines::runs {

namespace fs = std::filesystem;

namespace {

// A part's config: inherits the quickstart's seed and device unless it sets its own; its experiment name is
// "<quickstart>-<part>".
Json part_json(const QuickstartConfig& c, const Json& part, const std::string& name) {
  Json j = part;
  if (!j.contains("experiment")) j["experiment"] = c.experiment + "-" + name;
  if (!j.contains("seed")) j["seed"] = c.seed;
  if (!j.contains("device")) j["device"] = c.device;
  return j;
}

// Fills data.shards of a part that reads the synthesized features; the user may not name other data there.
Json with_shards(Json j, const fs::path& shards) {
  if (!j.contains("data")) j["data"] = Json::object();
  if (!j["data"].is_object()) throw ConfigError("data: must be an object");
  for (const char* k : {"shards", "table"})
    if (j["data"].contains(k))
      throw ConfigError(std::string("data.") + k + ": filled in by the quickstart (its synthesized audio); remove it");
  j["data"]["shards"] = Json::array({shards.string()});
  return j;
}

// Fills the vocoder part's training audio (the synthesized tracks) and mel analysis (the one its features were
// extracted with, which the VAE decodes); the user may not name others.
Json with_vocoder_inputs(Json j, const fs::path& audio_dir, const generate::MelAnalysisOptions& mel) {
  if (!j.contains("data")) j["data"] = Json::object();
  if (!j["data"].is_object()) throw ConfigError("data: must be an object");
  for (const char* k : {"audio", "train_only"})
    if (j["data"].contains(k))
      throw ConfigError(std::string("data.") + k + ": filled in by the quickstart (its synthesized audio); remove it");
  for (const char* k : {"mel", "mel_from_vae"})
    if (j.contains(k))
      throw ConfigError(std::string(k) + ": filled in by the quickstart (its features' analysis); remove it");
  j["data"]["audio"] = Json::array({audio_dir.string()});
  j["mel"] = mel.to_json();
  return j;
}

// A part as a run of its task (runs/task.h); errors in its keys name the part ("vae.model.chanels: ...").
// fill: adds what the quickstart hands the part (its synthesized features or audio, the vocoder it trained);
// placeholders while validating.
PreparedRun prepare_part(const QuickstartConfig& c, const std::string& key, const std::string& task,
                         const std::function<Json(Json)>& fill = {}) {
  const Json& part = key == "location"         ? c.location
                     : key == "audio_location" ? c.audio_location
                     : key == "vocoder"        ? c.vocoder
                                               : c.vae;
  const std::string folder = key == "audio_location" ? "audio-location" : key;
  try {
    Json j = part_json(c, part, folder);
    if (fill) j = fill(std::move(j));
    return find_task(task).prepare(j, c.base_dir);
  } catch (const ConfigError& e) {
    throw ConfigError(key + "." + e.what());
  }
}

// The VAE part's inputs: the synthesized features and, when the quickstart trained one and the part names none,
// its vocoder (the VAE's samples and evaluation then come from it).
std::function<Json(Json)> vae_inputs(const fs::path& shards, const std::optional<fs::path>& vocoder_dir) {
  return [shards, vocoder_dir](Json j) {
    j = with_shards(std::move(j), shards);
    if (vocoder_dir && !j.contains("vocoder")) j["vocoder"] = vocoder_dir->string();
    return j;
  };
}

// Validates the parts without running them (the shards and audio paths are placeholders until extraction; the
// vocoder does not exist yet).
void validate_parts(const QuickstartConfig& c) {
  const fs::path placeholder = "features";
  if (!c.location.empty()) prepare_part(c, "location", "location");
  if (!c.audio_location.empty())
    prepare_part(c, "audio_location", "location", [&](Json j) { return with_shards(std::move(j), placeholder); });
  if (!c.vocoder.empty())
    prepare_part(c, "vocoder", "vocoder", [](Json j) { return with_vocoder_inputs(std::move(j), "audio", {}); });
  if (!c.vae.empty()) prepare_part(c, "vae", "vae", vae_inputs(placeholder, std::nullopt));
}

Json location_summary(const Json& metrics) {
  const std::string best = metrics.value("best_model", std::string());
  Json s{{"best_model", best}, {"tracks", metrics.value("tracks", 0)}};
  if (!best.empty() && metrics["models"].contains(best)) {
    const Json& m = metrics["models"][best];
    for (const char* k : {"mean_km", "median_km", "country_accuracy"})
      if (m.contains(k)) s[k] = m[k]["mean"];
  }
  for (const char* base : {"centroid", "knn"})
    if (metrics["models"].contains(base)) s[std::string(base) + "_mean_km"] = metrics["models"][base]["mean_km"]["mean"];
  return s;
}

Json vocoder_summary(const Json& metrics) {
  Json s{{"steps", metrics.value("steps", 0)},
         {"train_seconds", metrics.value("train_seconds_this_process", 0.0)},
         {"parameters", metrics.value("parameters", 0)},
         {"audio_seconds_per_second", metrics.value("vocoder_audio_seconds_per_second", 0.0)}};
  const Json& e = metrics["evaluation"];
  for (const char* k : {"vocoder_true_mel", "griffin_lim_true_mel"})
    if (e.contains(k))
      for (const char* m : {"mr_stft", "lsd_db"}) s[std::string(k) + "_" + m] = e[k][m]["mean"];
  return s;
}

Json vae_summary(const Json& metrics) {
  Json s = Json::object();
  for (const char* k : {"train_crops_per_s", "generation_audio_seconds_per_second", "val_reconstruction", "audio_path"})
    if (metrics.contains(k)) s[k] = metrics[k];
  if (metrics.contains("geo_consistency") && metrics["geo_consistency"].contains("generated")) {
    const Json& g = metrics["geo_consistency"];
    s["geo_generated_km"] = g["generated"]["mean_km"];
    s["geo_shuffled_control_km"] = g["shuffled_control"]["mean_km"];
    if (g.contains("real_held_out")) s["geo_real_held_out_km"] = g["real_held_out"]["mean_km"];
  }
  return s;
}

}  // namespace

void QuickstartAudio::validate(const std::string& path) const {
  if (places < 1 || places > 8)
    throw ConfigError(key_path(path, "places") + ": must be 1..8, got " + std::to_string(places));
  if (tracks_per_place < 1)
    throw ConfigError(key_path(path, "tracks_per_place") + ": must be >= 1, got " + std::to_string(tracks_per_place));
  if (!(seconds > 0 && seconds <= 600))
    throw ConfigError(key_path(path, "seconds") + ": must be in (0, 600], got " + std::to_string(seconds));
}

QuickstartConfig QuickstartConfig::from_json(const Json& j, const fs::path& base_dir) {
  if (!j.is_object()) throw ConfigError("quickstart config: must be a JSON object");
  QuickstartConfig c;
  c.base_dir = base_dir;
  ConfigReader r(j, "");
  std::string task;
  r.require("task", task);
  read_fields(r, c);
  for (auto [key, field] : {std::pair<const char*, Json*>{"location", &c.location},
                            {"audio_location", &c.audio_location},
                            {"vocoder", &c.vocoder},
                            {"vae", &c.vae}}) {
    if (field->is_null()) *field = Json::object();  // absent or null: the part is skipped
    if (!field->is_object()) throw ConfigError(std::string(key) + ": must be an object (a run config)");
  }
  r.finish();
  if (c.experiment.empty() || c.experiment.find('/') != std::string::npos)
    throw ConfigError("experiment: must be a non-empty name without '/', got \"" + c.experiment + "\"");
  features::parse_device(c.device);  // UsageError on an unknown name
  if (c.location.empty() && c.audio_location.empty() && c.vocoder.empty() && c.vae.empty())
    throw ConfigError("quickstart: at least one of location, audio_location, vocoder, vae is needed");
  validate_parts(c);
  return c;
}

Json QuickstartConfig::to_json() const {
  Json j = fields_to_json(*this);
  j["task"] = "quickstart";
  return j;
}

QuickstartConfig load_quickstart_config(const fs::path& file, const std::vector<std::string>& overrides) {
  Json j = load_json_file(file.string());
  for (const auto& o : overrides) apply_override(j, o);
  return QuickstartConfig::from_json(j, fs::absolute(file).parent_path());
}

QuickstartResult run_quickstart_experiment(const QuickstartConfig& c, const fs::path& run_dir_arg, std::ostream& log) {
  // Absolute from here on: the parts receive the features folder and their run directories from this one, and a
  // relative path would be read against each part's own base (the config file's folder for data paths).
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  const DirLock lock(run_dir);  // one process per run directory (each part also locks its own)
  QuickstartResult out;
  out.run_dir = run_dir;
  fs::create_directories(run_dir);
  const Json resolved = c.to_json();
  // The job's own files: its config and its summary (written last); each part checks its own directory too.
  const RunDirFiles files{"quickstart.json", "summary.json"};
  check_run_dir(run_dir, resolved, files);
  write_json_file_atomic((run_dir / files.config).string(), resolved);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  // 1. Audio with a place signal, and its features.
  const bool needs_audio = !c.audio_location.empty() || !c.vocoder.empty() || !c.vae.empty();
  fs::path shards_dir, audio_dir;
  if (needs_audio) {
    extract::SyntheticSetOptions qo;
    qo.output_dir = run_dir;
    qo.places = c.audio.places;
    qo.tracks_per_place = c.audio.tracks_per_place;
    qo.seconds = c.audio.seconds;
    qo.seed = c.audio.seed;
    qo.device = features::parse_device(c.device);
    qo.features = {"mfcc", "chroma_stft", "spectral_contrast", "tonnetz", "mel_db"};
    log << "quickstart [1/5]: synthesizing " << c.audio.places * c.audio.tracks_per_place << " tracks of "
        << c.audio.seconds << " s (" << c.audio.places << " places) and extracting their features\n";
    const auto r = extract::synthesize_and_extract(qo);
    if (!r.extract.failed.empty())
      throw Error("quickstart: extraction failed for " + r.extract.failed.front().path + ": " + r.extract.failed.front().reason);
    shards_dir = r.features_dir;
    audio_dir = r.audio_dir;
    char line[160];
    std::snprintf(line, sizeof line, "quickstart: %lld tracks, %.0f s of audio extracted in %.2f s (%.0fx real time, %s)\n",
                  static_cast<long long>(r.extract.tracks_written), r.extract.audio_seconds, r.extract.wall_seconds,
                  r.extract.wall_seconds > 0 ? r.extract.audio_seconds / r.extract.wall_seconds : 0.0,
                  features::device_name(r.extract.device));
    log << line;
    out.summary["audio"] = {{"tracks", r.extract.tracks_written},
                            {"audio_seconds", r.extract.audio_seconds},
                            {"extract_wall_seconds", r.extract.wall_seconds},
                            {"features_dir", shards_dir.string()}};
  }

  std::vector<ReportPart> parts;
  // A part: its run directory (a finished part is not redone), report, summary and place on the combined page.
  auto run_part = [&](const PreparedRun& part, const std::string& folder, const std::string& key,
                      Json (*summary)(const Json&), const std::string& title, const std::string& what) {
    const fs::path dir = run_dir / folder;
    const TaskResult res = part.run(dir, log);
    // The vocoder task writes its own report (its four figures, and each held-out clip three ways side by side).
    if (part.task != "vocoder") write_report(dir);
    out.parts.push_back(dir);
    out.summary[key] = summary(res.metrics);
    parts.push_back({title, what, dir});
  };
  // 2. Location model on the GOM table.
  if (!c.location.empty()) {
    const PreparedRun part = prepare_part(c, "location", "location");
    const Json& data = part.resolved["data"];
    log << "quickstart [2/5]: location models on "
        << (data.contains("table") ? data["table"]["path"].get<std::string>() : std::string("the shards of \"location\""))
        << " (" << static_cast<int>(elapsed()) << " s so far)\n";
    run_part(part, "location", "location", location_summary, "Location model: the GOM table",
             "K-fold cross-validation of the location models on the GOM table (1059 tracks, 68 audio features; "
             "UCI, CC BY 4.0).");
  }
  // 3. Location model on the synthesized audio (summary and frame-sequence models).
  if (!c.audio_location.empty()) {
    log << "quickstart [3/5]: location models on the synthesized audio (" << static_cast<int>(elapsed()) << " s so far)\n";
    run_part(prepare_part(c, "audio_location", "location",
                          [&](Json j) { return with_shards(std::move(j), shards_dir); }),
             "audio-location", "audio_location",
             location_summary, "Location model: the synthesized audio",
             "The same evaluation on the features this run extracted from its synthesized tracks, whose style "
             "depends on their place.");
  }
  // 4. A small neural vocoder on the synthesized audio, for the VAE's log-mel (its samples' audio path).
  std::optional<fs::path> vocoder_dir;
  if (!c.vocoder.empty()) {
    log << "quickstart [4/5]: a vocoder on the synthesized audio (" << static_cast<int>(elapsed()) << " s so far)\n";
    const generate::MelAnalysisOptions mel = shards_mel_analysis(shards_dir);
    run_part(prepare_part(c, "vocoder", "vocoder", [&](Json j) { return with_vocoder_inputs(std::move(j), audio_dir, mel); }),
             "vocoder", "vocoder", vocoder_summary, "Audio for the VAE: a neural vocoder",
             "A Vocos-style vocoder trained on the synthesized tracks, from the log-mel the VAE decodes to a waveform; "
             "scored on held-out tracks against NNLS + Griffin-Lim on the same mel. The VAE's samples come from it.");
    vocoder_dir = run_dir / "vocoder";
  }
  // 5. The coordinate-conditioned VAE, its samples and geo-consistency.
  if (!c.vae.empty()) {
    log << "quickstart [5/5]: the VAE on the synthesized audio (" << static_cast<int>(elapsed()) << " s so far)\n";
    run_part(prepare_part(c, "vae", "vae", vae_inputs(shards_dir, vocoder_dir)), "vae", "vae", vae_summary,
             "Music for a place: the VAE",
             "A coordinate-conditioned VAE trained on the synthesized tracks' log-mel spectrograms; samples generated "
             "for each training place and for places it never saw.");
    out.samples_dir = run_dir / "vae" / "samples";
  }
  out.summary["wall_seconds"] = elapsed();
  write_json_file_atomic((run_dir / files.result).string(), out.summary);
  out.report = run_dir / "report.html";
  write_file_atomic(out.report, render_parts_report("songlines quickstart: " + c.experiment,
                                                    fs::absolute(run_dir).lexically_normal().string(), parts, run_dir));
  return out;
}

PreparedRun prepare_quickstart(const Json& j, const fs::path& base_dir) {
  auto config = std::make_shared<const QuickstartConfig>(QuickstartConfig::from_json(j, base_dir));
  return {"quickstart", config->experiment, config->to_json(), [config](const fs::path& run_dir, std::ostream& log) {
            const QuickstartResult r = run_quickstart_experiment(*config, run_dir, log);
            std::string text = "\nsummary:\n" + r.summary.dump(2) + "\n\n";
            for (const auto& p : r.parts)
              text += "run:     " + p.string() + "  (report: " + (p / "report.html").string() + ")\n";
            if (!r.samples_dir.empty())
              text += "samples: " + r.samples_dir.string() + "  (*.wav with a spectrogram *.png each)\n";
            text += "report:  " + r.report.string() + "\n";
            return TaskResult{r.run_dir, r.summary, text};
          }};
}

}  // namespace songlines::runs
