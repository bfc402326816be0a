#include "runs/location_run.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <optional>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/jsonl_log.h"
#include "core/path_rule.h"
#include "core/progress.h"
#include "core/test_kill_point.h"
#include "geo/gazetteer.h"
#include "models/torch_compat.h"
#include "runs/run_writer.h"
#include "songlines/version.h"
#include "train/distributed.h"
#include "train/folds.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace songlines::runs {

namespace fs = std::filesystem;

namespace {

struct FoldPrediction {
  std::vector<int64_t> rows;
  std::vector<geo::LatLon> points;
  std::vector<double> uncertainty;
  std::vector<std::string> predicted_country;
};

Json fold_to_json(const FoldPrediction& f) {
  Json pts = Json::array();
  for (const auto& p : f.points) pts.push_back({p.lat, p.lon});
  Json unc = Json::array();
  for (double u : f.uncertainty) unc.push_back(std::isnan(u) ? Json() : Json(u));
  return {{"rows", f.rows}, {"points", pts}, {"uncertainty_km", unc}, {"predicted_country", f.predicted_country}};
}

FoldPrediction fold_from_json(const Json& j) {
  FoldPrediction f;
  f.rows = j.at("rows").get<std::vector<int64_t>>();
  for (const auto& p : j.at("points")) f.points.push_back({p[0].get<double>(), p[1].get<double>()});
  for (const auto& u : j.at("uncertainty_km")) f.uncertainty.push_back(u.is_null() ? NAN : u.get<double>());
  f.predicted_country = j.at("predicted_country").get<std::vector<std::string>>();
  return f;
}

}  // namespace

train::Dataset load_run_data(const RunConfig& config) {
  // A config naming data that is not there is a bad config (exit 2), named by its key.
  if (!config.data.table_path.empty() && !fs::exists(config.data.table_path))
    throw ConfigError("data.table.path: " + config.data.table_path + ": no such file");
  // A data.shards entry is a path, or a glob pattern ("parts/part-*": extract --part folders) matching at least
  // one folder or *.h5 file; an entry that exists as written is taken as written.
  std::vector<fs::path> sources;
  for (size_t i = 0; i < config.data.shards.size(); ++i) {
    const std::string& entry = config.data.shards[i];
    const std::string key = "data.shards[" + std::to_string(i) + "]";
    if (fs::exists(entry)) {
      sources.emplace_back(entry);
    } else if (is_glob_pattern(entry)) {
      auto matches = shards::glob_shard_sources(entry);
      if (matches.empty()) throw ConfigError(key + ": the pattern " + entry + " matches no shard folder or .h5 file");
      sources.insert(sources.end(), matches.begin(), matches.end());
    } else {
      throw ConfigError(key + ": " + entry + ": no such file or directory");
    }
  }
  if (!config.data.table_path.empty()) {
    auto table = train::read_feature_table(config.data.table_path, train::parse_table_format(config.data.table_format));
    return train::dataset_from_table(table, config.data.features);
  }
  std::vector<fs::path> files;
  for (const auto& s : sources)
    for (auto& f : shards::list_shards(s)) files.push_back(f);
  const train::FrameLoading frames{train::FrameResidence::kAuto, config.data.memory_budget_mb << 20, {}};
  return train::load_summary_dataset(files, config.data.features,
                                     config.has_temporal() ? config.data.frame_features : std::vector<std::string>{},
                                     frames);
}

fs::path final_model_dir(const fs::path& run_dir) { return run_dir / "checkpoints" / "final"; }

bool final_model_complete(const fs::path& run_dir) {
  return fs::exists(final_model_dir(run_dir) / kFinalModelMarker);
}

namespace {

// Whether a model's fit is data-parallel here: a group exists and its kind trains on every rank.
bool data_parallel(const ModelConfig& m, const train::DistributedGroup* group) {
  return group != nullptr && m.kind().data_parallel;
}

// Rank 0's answer to "is this fit done already?" (its run directory), on every rank of a data-parallel fit.
bool fold_done(const ModelConfig& m, bool done_here, train::DistributedGroup* group) {
  if (!data_parallel(m, group)) return done_here;
  return group->broadcast_flag(done_here, "whether " + m.name + "'s fit is done");
}

// What a rank > 0 does in a data-parallel run: the fits of run_experiment in the same order (neural models only:
// the others need no help), with rank 0's word on which are done. It writes nothing and evaluates nothing.
RunResult follow_experiment(const RunConfig& config, const train::Dataset& data,
                            const std::vector<std::vector<int>>& assignments, train::DistributedGroup& group,
                            std::ostream& log) {
  log << "rank " << group.rank() << " of " << group.world_size() << " (" << train::to_string(group.backend())
      << "): training with rank 0, which writes the run directory\n";
  const auto& ev = config.evaluation;
  for (int r = 0; r < ev.repeats; ++r)
    for (int f = 0; f < ev.folds; ++f) {
      const auto train_rows = train::fold_rows(assignments[r], f, false);
      for (const auto& m : config.models) {
        const uint64_t seed = config.seed + 1000u * r + 10u * f;
        if (!data_parallel(m, &group) || fold_done(m, false, &group)) continue;
        train::make_estimator(m, seed, std::nullopt)->fit(data, train_rows, {});
      }
    }
  if (config.refit_final)
    for (const auto& m : config.models) {
      if (m.name != config.final_model || !data_parallel(m, &group) || fold_done(m, false, &group)) continue;
      std::vector<int64_t> all(data.size());
      for (int64_t i = 0; i < data.size(); ++i) all[i] = i;
      train::make_estimator(m, config.seed, std::nullopt)->fit(data, all, {});
    }
  return {fs::path(), Json::object()};
}


// Per repeat: the fold of each row (seed + repeat; grouped by country or artist when the config says so). The
// same assignment serves every model.
std::vector<std::vector<int>> fold_assignments(const RunConfig& config, const train::Dataset& data) {
  const auto& ev = config.evaluation;
  std::vector<std::vector<int>> assignments;
  for (int r = 0; r < ev.repeats; ++r) {
    const uint64_t fold_seed = config.seed + static_cast<uint64_t>(r);
    if (ev.group_by == "none") {
      assignments.push_back(train::kfold_assignment(data.size(), ev.folds, fold_seed));
    } else {
      const auto& groups = ev.group_by == "country" ? data.countries : data.artists;
      for (const auto& g : groups)
        if (g.empty()) throw UsageError("evaluation.group_by: some tracks have no " + ev.group_by);
      assignments.push_back(train::grouped_kfold_assignment(groups, ev.folds, fold_seed));
    }
  }
  return assignments;
}

void write_env_json(const fs::path& run_dir, const RunConfig& config, const torch::Device& device,
                    const train::Dataset& data, const Json& world) {
  Json env{{"songlines_version", kVersion}, {"git_revision", git_revision()}, {"device", device.str()},
           {"libtorch", torch_compat::version()}, {"seed", config.seed},  {"tracks", data.size()},
           {"feature_dim", data.dim},             {"features", data.features}};
  env.update(world);  // world_size, backend
  write_json_file_atomic((run_dir / "env.json").string(), env);
}

// One fold of one model: where it trains and what it writes there.
struct FoldTask {
  const ModelConfig& model;
  int repeat;
  int fold;
  fs::path dir;  ///< checkpoints/r<repeat>-f<fold>/<model>
};

// Fits a fresh estimator on train_rows, predicts test_rows and their nearest training country, and stores the
// fold's predictions in task.dir/predictions.json (the mark of a finished fold).
FoldPrediction fit_and_predict_fold(const RunConfig& config, const FoldTask& task, const train::Dataset& data,
                                    const std::vector<int64_t>& train_rows, const std::vector<int64_t>& test_rows,
                                    JsonlLog& jsonl, std::ostream& log) {
  const ModelConfig& m = task.model;
  const int r = task.repeat, f = task.fold;
  std::set<std::string> train_countries;
  for (auto i : train_rows)
    if (!data.countries[i].empty()) train_countries.insert(data.countries[i]);
  const std::vector<std::string> country_list(train_countries.begin(), train_countries.end());

  auto est = train::make_estimator(m, config.seed + 1000u * r + 10u * f, task.dir);
  auto t0 = std::chrono::steady_clock::now();
  // Epochs, rate and ETA inside the fold on a terminal (nothing in a log: the fold line below says it).
  const bool neural = m.kind().trains_by_epochs;
  ProgressBar bar(m.name + " r" + std::to_string(r) + " f" + std::to_string(f) + " epochs",
                  static_cast<int64_t>(m.train.epochs) * std::max(1, m.train.ensemble),
                  neural ? ProgressMode::kAuto : ProgressMode::kQuiet);
  int64_t epochs_seen = 0;
  est->fit(data, train_rows, [&](int epoch, double loss) {
    if (epoch % 10 == 0 || epoch + 1 == m.train.epochs)
      jsonl.append(Json{{"model", m.name}, {"repeat", r}, {"fold", f}, {"epoch", epoch}, {"loss", loss}});
    char detail[32];
    std::snprintf(detail, sizeof detail, "loss %.4f", loss);
    bar.set(++epochs_seen, detail);
  });
  bar.finish();
  auto pred = est->predict(data, test_rows);
  FoldPrediction fp;
  fp.rows = test_rows;
  fp.points = pred.points;
  fp.uncertainty = pred.uncertainty_km;
  const auto& gazetteer = geo::Gazetteer::builtin();
  for (const auto& p : pred.points)
    fp.predicted_country.push_back(country_list.empty() ? "" : gazetteer.nearest(p, country_list).iso2);
  fs::create_directories(task.dir);
  write_json_file_atomic((task.dir / "predictions.json").string(), fold_to_json(fp), -1);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log << m.name << " repeat " << r << " fold " << f << ": " << std::fixed << std::setprecision(2) << secs << " s\n";
  return fp;
}

train::LocationMetrics score_fold(const train::Dataset& data, const FoldPrediction& fp) {
  std::vector<double> errors;
  std::vector<int> correct;
  for (size_t i = 0; i < fp.rows.size(); ++i) {
    errors.push_back(geo::distance_km(data.coords[fp.rows[i]], fp.points[i]));
    correct.push_back(fp.predicted_country[i] == data.countries[fp.rows[i]] ? 1 : 0);
  }
  return train::compute_metrics(errors, correct);
}

struct ModelFold {
  std::string model;
  int repeat;
  FoldPrediction prediction;
};

// predictions.csv: one row per (model, repeat, test track), written whole and atomically (a full disk is an
// IoError naming the file).
void write_predictions_csv(const fs::path& run_dir, const train::Dataset& data, const std::vector<ModelFold>& folds) {
  std::ostringstream csv;
  csv << "track_id,model,repeat,latitude,longitude,predicted_latitude,predicted_longitude,error_km,country,"
         "predicted_country,uncertainty_km\n";
  csv << std::setprecision(8);
  for (const auto& [name, repeat, fp] : folds) {
    for (size_t i = 0; i < fp.rows.size(); ++i) {
      auto row = fp.rows[i];
      csv << csv_field(data.ids[row]) << "," << name << "," << repeat << "," << data.coords[row].lat << ","
          << data.coords[row].lon << "," << fp.points[i].lat << "," << fp.points[i].lon << ","
          << geo::distance_km(data.coords[row], fp.points[i]) << "," << data.countries[row] << ","
          << fp.predicted_country[i] << ",";
      if (!std::isnan(fp.uncertainty[i])) csv << fp.uncertainty[i];
      csv << "\n";
    }
  }
  write_file_atomic(run_dir / "predictions.csv", csv.str());
}

// metrics.json without "final_model": each model's means over folds and repeats, and the best by mean km.
Json aggregate_run_metrics(const RunConfig& config, const train::Dataset& data,
                           std::map<std::string, std::vector<train::LocationMetrics>>& per_model) {
  Json metrics = {{"models", Json::object()}};
  std::string best;
  double best_mean = 1e300;
  for (const auto& m : config.models) {
    auto agg = train::aggregate_metrics(per_model[m.name]);
    metrics["models"][m.name] = agg;
    double v = agg["mean_km"]["mean"].get<double>();
    if (v < best_mean) best_mean = v, best = m.name;
  }
  metrics["best_model"] = best;
  metrics["folds"] = config.evaluation.folds;
  metrics["repeats"] = config.evaluation.repeats;
  metrics["group_by"] = config.evaluation.group_by;
  metrics["tracks"] = data.size();
  return metrics;
}

// checkpoints/final: the final model refitted on every row, unless a finished one is there. complete.json,
// written last and atomically, is the only proof of a finished final model: a folder without it (a kill after
// model.json, before inputs.json or the marker) is removed and refitted.
void refit_final_model(const RunConfig& config, const train::Dataset& data, const fs::path& run_dir,
                       train::DistributedGroup* group, std::ostream& log) {
  const auto final_dir = final_model_dir(run_dir);
  const auto final_model = std::find_if(config.models.begin(), config.models.end(),
                                        [&](const ModelConfig& m) { return m.name == config.final_model; });
  if (final_model == config.models.end() || fold_done(*final_model, final_model_complete(run_dir), group)) return;
  if (fs::exists(final_dir)) {
    log << "final model: " << final_dir.string() << " is incomplete (no " << kFinalModelMarker << "), refitting\n";
    fs::remove_all(final_dir);
  }
  for (const auto& m : config.models) {
    if (m.name != config.final_model) continue;
    std::vector<int64_t> all(data.size());
    for (int64_t i = 0; i < data.size(); ++i) all[i] = i;
    auto est = train::make_estimator(m, config.seed, std::nullopt);
    est->fit(data, all, {});
    est->save(final_dir);
    test_kill_point("final-model-saved");
    const std::set<std::string> countries(data.countries.begin(), data.countries.end());
    const bool reads_frames = m.kind().reads_frames;
    write_json_file_atomic((final_dir / "inputs.json").string(),
                           {{"features", data.features},
                            {"dim", data.dim},
                            {"frame_features", reads_frames ? config.data.frame_features : std::vector<std::string>{}},
                            {"model", m.name},
                            {"countries", std::vector<std::string>(countries.begin(), countries.end())}});
    test_kill_point("final-model-inputs-written");
    Json files = Json::array();
    for (const auto& e : fs::directory_iterator(final_dir)) files.push_back(e.path().filename().string());
    write_json_file_atomic((final_dir / kFinalModelMarker).string(), {{"model", m.name}, {"files", files}});
    log << "final model " << m.name << " refitted on " << data.size() << " tracks\n";
  }
}

}  // namespace

RunResult run_experiment(const RunConfig& config, const fs::path& run_dir_arg, std::ostream& log) {
  // Absolute from here on: every path this run records or hands on is independent of the working directory.
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  // Data-parallel (docs/scaling.md): every rank loads the data and trains each neural model with the others; rank 0
  // alone evaluates and writes the run directory, and decides what is done (the other ranks follow its word).
  const RunDirWriter run_dir_writer(run_dir);
  train::DistributedGroup* group = run_dir_writer.group();
  const bool writer = run_dir_writer.writer();
  const Json resolved = config.to_json();
  // A finished run is redone from its stored folds (nothing is refitted): metrics.json comes out the same.
  const bool resuming = writer && check_run_dir(run_dir, resolved) != RunDirState::kNew;

  // Everything that can fail before training is checked before the run directory records a config, so a
  // failed start (missing data, more folds than rows, no GPU) leaves nothing that blocks the corrected rerun.
  auto device = torch_compat::resolve_device(config.device);
  auto data = load_run_data(config);
  const auto assignments = fold_assignments(config, data);
  if (!writer) return follow_experiment(config, data, assignments, *group, log);
  fs::create_directories(run_dir / "checkpoints");
  if (resuming)
    log << "resuming " << run_dir.string() << "\n";
  else
    write_json_file_atomic((run_dir / "config.json").string(), resolved);
  write_env_json(run_dir, config, device, data, run_dir_writer.world());
  log << "data: " << data.size() << " tracks x " << data.dim << " features\n";

  // One whole line per record; a line torn by a kill of an earlier attempt is cut before appending.
  JsonlLog jsonl(run_dir / "metrics.jsonl");
  if (jsonl.torn_bytes_removed() > 0)
    log << "metrics.jsonl: removed a torn last line (" << jsonl.torn_bytes_removed() << " bytes) left by a kill\n";
  std::map<std::string, std::vector<train::LocationMetrics>> per_model;
  std::vector<ModelFold> all_predictions;
  const auto& ev = config.evaluation;
  for (int r = 0; r < ev.repeats; ++r) {
    for (int f = 0; f < ev.folds; ++f) {
      const auto train_rows = train::fold_rows(assignments[r], f, false);
      const auto test_rows = train::fold_rows(assignments[r], f, true);
      for (const auto& m : config.models) {
        const FoldTask task{m, r, f, run_dir / "checkpoints" / ("r" + std::to_string(r) + "-f" + std::to_string(f)) / m.name};
        const auto done_file = task.dir / "predictions.json";
        FoldPrediction fp = fold_done(m, fs::exists(done_file), group)
                                ? fold_from_json(load_json_file(done_file.string()))
                                                  : fit_and_predict_fold(config, task, data, train_rows, test_rows, jsonl, log);
        const auto met = score_fold(data, fp);
        per_model[m.name].push_back(met);
        Json line = met.to_json();
        line["model"] = m.name;
        line["repeat"] = r;
        line["fold"] = f;
        jsonl.append(line);
        all_predictions.push_back({m.name, r, std::move(fp)});
      }
    }
  }
  write_predictions_csv(run_dir, data, all_predictions);

  Json metrics = aggregate_run_metrics(config, data, per_model);
  if (config.refit_final) {
    refit_final_model(config, data, run_dir, group, log);
    metrics["final_model"] = config.final_model;
  }
  write_json_file_atomic((run_dir / "metrics.json").string(), metrics);
  return {run_dir, metrics};
}

namespace {
// What `songlines run` prints: one row per model, the means over folds and repeats.
std::string metrics_table(const Json& metrics) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-16s %10s %10s %8s %8s %8s %8s\n", "model", "mean_km", "median_km", "<500",
                "<1000", "<2500", "country");
  out += line;
  for (auto& [name, m] : metrics["models"].items()) {
    std::snprintf(line, sizeof line, "%-16s %10.1f %10.1f %8.3f %8.3f %8.3f %8.3f\n", name.c_str(),
                  m["mean_km"]["mean"].get<double>(), m["median_km"]["mean"].get<double>(),
                  m["within_500"]["mean"].get<double>(), m["within_1000"]["mean"].get<double>(),
                  m["within_2500"]["mean"].get<double>(), m["country_accuracy"]["mean"].get<double>());
    out += line;
  }
  return out;
}
}  // namespace

PreparedRun prepare_location_run(const Json& j, const fs::path& base_dir) {
  auto config = std::make_shared<const RunConfig>(RunConfig::from_json(j, base_dir));
  return {"location", config->experiment, config->to_json(), [config](const fs::path& run_dir, std::ostream& log) {
            RunResult r = run_experiment(*config, run_dir, log);
            if (!train::is_writer_rank()) return TaskResult{r.run_dir, r.metrics, ""};
            return TaskResult{r.run_dir, r.metrics, metrics_table(r.metrics) + "run directory: " + r.run_dir.string() + "\n"};
          }};
}

}  // namespace songlines::runs
