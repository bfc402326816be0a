#include "experiments/quickstart.h"

#include <chrono>
#include <cstdio>

#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "experiments/report.h"
#include "extract/quickstart.h"
#include "features/device.h"
#include "generate/vae_run.h"
#include "runs/experiment.h"
#include "runs/run_config.h"

namespace songlines::experiments {

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
Json with_shards(Json j, const std::string& key, const fs::path& shards) {
  if (!j.contains("data")) j["data"] = Json::object();
  if (!j["data"].is_object()) throw ConfigError(key + ".data: must be an object");
  for (const char* k : {"shards", "table"})
    if (j["data"].contains(k))
      throw ConfigError(key + ".data." + k + ": filled in by the quickstart (its synthesized audio); remove it");
  j["data"]["shards"] = Json::array({shards.string()});
  return j;
}

template <class F>
auto parse_part(const std::string& key, F&& parse) {
  try {
    return parse();
  } catch (const ConfigError& e) {
    throw ConfigError(key + "." + e.what());
  }
}

// Validates a part without running it (the shards path is a placeholder until extraction).
void validate_parts(const QuickstartConfig& c) {
  const fs::path placeholder = "features";
  if (!c.location.empty())
    parse_part("location", [&] { return runs::RunConfig::from_json(part_json(c, c.location, "location"), c.base_dir); });
  if (!c.audio_location.empty())
    parse_part("audio_location", [&] {
      return runs::RunConfig::from_json(with_shards(part_json(c, c.audio_location, "audio-location"), "audio_location", placeholder),
                                        c.base_dir);
    });
  if (!c.vae.empty())
    parse_part("vae", [&] {
      return generate::VaeRunConfig::from_json(with_shards(part_json(c, c.vae, "vae"), "vae", placeholder), c.base_dir);
    });
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

Json vae_summary(const Json& metrics) {
  Json s = Json::object();
  for (const char* k : {"train_crops_per_s", "generation_audio_seconds_per_second", "val_reconstruction"})
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

bool is_quickstart_config(const Json& j) {
  return j.is_object() && j.contains("task") && j["task"].is_string() && j["task"].get<std::string>() == "quickstart";
}

QuickstartConfig QuickstartConfig::from_json(const Json& j, const fs::path& base_dir) {
  if (!j.is_object()) throw ConfigError("quickstart config: must be a JSON object");
  QuickstartConfig c;
  c.base_dir = base_dir;
  ConfigReader r(j, "");
  std::string task;
  r.require("task", task);
  r.read("experiment", c.experiment);
  r.read("seed", c.seed);
  r.read("device", c.device);
  {
    ConfigReader a = r.child("audio");
    a.read("places", c.audio.places);
    a.read("tracks_per_place", c.audio.tracks_per_place);
    a.read("seconds", c.audio.seconds);
    a.read("seed", c.audio.seed);
    a.finish();
  }
  for (auto [key, field] : {std::pair<const char*, Json*>{"location", &c.location},
                            {"audio_location", &c.audio_location},
                            {"vae", &c.vae}}) {
    const Json& v = r.raw(key);
    if (v.is_null()) {
      *field = Json::object();
      continue;
    }
    if (!v.is_object()) throw ConfigError(std::string(key) + ": must be an object (a run config)");
    *field = v;
  }
  r.finish();
  if (c.experiment.empty() || c.experiment.find('/') != std::string::npos)
    throw ConfigError("experiment: must be a non-empty name without '/', got \"" + c.experiment + "\"");
  if (c.audio.places < 1 || c.audio.places > 8) throw ConfigError("audio.places: must be 1..8, got " + std::to_string(c.audio.places));
  if (c.audio.tracks_per_place < 1)
    throw ConfigError("audio.tracks_per_place: must be >= 1, got " + std::to_string(c.audio.tracks_per_place));
  if (!(c.audio.seconds > 0 && c.audio.seconds <= 600))
    throw ConfigError("audio.seconds: must be in (0, 600], got " + std::to_string(c.audio.seconds));
  features::parse_device(c.device);  // UsageError on an unknown name
  if (c.location.empty() && c.audio_location.empty() && c.vae.empty())
    throw ConfigError("quickstart: at least one of location, audio_location, vae is needed");
  validate_parts(c);
  return c;
}

Json QuickstartConfig::to_json() const {
  return Json{{"task", "quickstart"},
              {"experiment", experiment},
              {"seed", seed},
              {"device", device},
              {"audio",
               {{"places", audio.places}, {"tracks_per_place", audio.tracks_per_place}, {"seconds", audio.seconds}, {"seed", audio.seed}}},
              {"location", location},
              {"audio_location", audio_location},
              {"vae", vae}};
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
  const fs::path config_path = run_dir / "quickstart.json";
  const Json resolved = c.to_json();
  // The device is not part of the job's identity (each part ignores it too).
  auto identity = [](Json j) {
    j.erase("device");
    return j;
  };
  if (fs::exists(config_path) && identity(load_json_file(config_path.string())) != identity(resolved))
    throw UsageError(run_dir.string() + ": holds a quickstart with a different config; choose another run directory");
  write_json_file_atomic(config_path.string(), resolved);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  // 1. Audio with a place signal, and its features.
  const bool needs_audio = !c.audio_location.empty() || !c.vae.empty();
  fs::path shards_dir;
  if (needs_audio) {
    extract::QuickstartOptions qo;
    qo.output_dir = run_dir;
    qo.places = c.audio.places;
    qo.tracks_per_place = c.audio.tracks_per_place;
    qo.seconds = c.audio.seconds;
    qo.seed = c.audio.seed;
    qo.device = features::parse_device(c.device);
    qo.features = {"mfcc", "chroma_stft", "spectral_contrast", "tonnetz", "mel_db"};
    log << "quickstart [1/4]: synthesizing " << c.audio.places * c.audio.tracks_per_place << " tracks of "
        << c.audio.seconds << " s (" << c.audio.places << " places) and extracting their features\n";
    const auto r = extract::run_quickstart(qo);
    if (!r.extract.failed.empty())
      throw Error("quickstart: extraction failed for " + r.extract.failed.front().path + ": " + r.extract.failed.front().reason);
    shards_dir = r.features_dir;
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
  // A location part: its run directory, report, summary and place on the combined page.
  auto location_part = [&](const runs::RunConfig& rc, const std::string& folder, const std::string& key,
                           const std::string& title, const std::string& what) {
    const fs::path dir = run_dir / folder;
    auto res = runs::run_experiment(rc, dir, log);
    write_report(dir);
    out.parts.push_back(dir);
    out.summary[key] = location_summary(res.metrics);
    parts.push_back({title, what, dir});
  };
  // 2. Location model on the GOM table.
  if (!c.location.empty()) {
    auto rc = parse_part("location", [&] { return runs::RunConfig::from_json(part_json(c, c.location, "location"), c.base_dir); });
    log << "quickstart [2/4]: location models on "
        << (rc.data.table_path.empty() ? std::string("the shards of \"location\"") : rc.data.table_path) << " ("
        << static_cast<int>(elapsed()) << " s so far)\n";
    location_part(rc, "location", "location", "Location model: the GOM table",
                  "K-fold cross-validation of the location models on the GOM table (1059 tracks, 68 audio features; "
                  "UCI, CC BY 4.0).");
  }
  // 3. Location model on the synthesized audio (summary and frame-sequence models).
  if (!c.audio_location.empty()) {
    log << "quickstart [3/4]: location models on the synthesized audio (" << static_cast<int>(elapsed()) << " s so far)\n";
    auto rc = parse_part("audio_location", [&] {
      return runs::RunConfig::from_json(with_shards(part_json(c, c.audio_location, "audio-location"), "audio_location", shards_dir),
                                        c.base_dir);
    });
    location_part(rc, "audio-location", "audio_location", "Location model: the synthesized audio",
                  "The same evaluation on the features this run extracted from its synthesized tracks, whose style "
                  "depends on their place.");
  }
  // 4. The coordinate-conditioned VAE, its samples and geo-consistency.
  if (!c.vae.empty()) {
    log << "quickstart [4/4]: the VAE on the synthesized audio (" << static_cast<int>(elapsed()) << " s so far)\n";
    auto vc = parse_part("vae", [&] {
      return generate::VaeRunConfig::from_json(with_shards(part_json(c, c.vae, "vae"), "vae", shards_dir), c.base_dir);
    });
    const fs::path dir = run_dir / "vae";
    const Json metrics = generate::run_vae_experiment(vc, dir, log);  // a finished part is not redone
    write_report(dir);
    out.parts.push_back(dir);
    out.samples_dir = dir / "samples";
    out.summary["vae"] = vae_summary(metrics);
    parts.push_back({"Music for a place: the VAE", "A coordinate-conditioned VAE trained on the synthesized tracks' "
                     "log-mel spectrograms; samples generated for each training place and for places it never saw.", dir});
  }
  out.summary["wall_seconds"] = elapsed();
  write_json_file_atomic((run_dir / "summary.json").string(), out.summary);
  out.report = run_dir / "report.html";
  write_file_atomic(out.report, render_parts_report("songlines quickstart: " + c.experiment,
                                                    fs::absolute(run_dir).lexically_normal().string(), parts, run_dir));
  return out;
}

}  // namespace songlines::experiments
