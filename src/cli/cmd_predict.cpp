// songlines predict --model RUN_DIR --input PATH... [--output FILE] [--device ...]
// Inputs are shards (files or folders of *.h5) or audio files / folders of audio: audio goes through the same
// extraction as `songlines extract` (into a private temporary folder) and is then read like a shard.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "extract/extract.h"
#include "geo/gazetteer.h"
#include "runs/location_run.h"
#include "shards/metadata_blocks.h"
#include "shards/shard.h"
#include "train/trainer.h"

namespace songlines::cli {
namespace {

namespace fs = std::filesystem;

cxxopts::Options predict_options() {
  cxxopts::Options o("songlines predict",
                     "Latitude, longitude, country and uncertainty for audio files or the tracks of shards, from a "
                     "run's final model. Exit 3 when some audio files could not be decoded (the others are predicted).");
  o.add_options()("model", "run directory (uses RUN_DIR/checkpoints/final)", cxxopts::value<std::string>())(
      "input", "audio files, shard files, or folders of either", cxxopts::value<std::vector<std::string>>())(
      "output", "CSV file (default: stdout)", cxxopts::value<std::string>())(
      "catalog", "track metadata for audio inputs (as extract --catalog): genre and listeners for models that use "
      "the meta_ blocks", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"));
  return o;
}

/// A folder removed with its contents when the prediction ends, however it ends.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("songlines-predict-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

bool is_shard_input(const fs::path& p) {
  if (!fs::exists(p)) throw InputError(p.string(), "no such file or directory");
  if (fs::is_directory(p)) return !shards::list_shards(p).empty();
  return p.extension() == ".h5";
}

int predict_main(const cxxopts::ParseResult& args) {
  if (!args.count("model") || !args.count("input")) throw UsageError("predict: needs --model RUN_DIR and --input PATH");
  const fs::path run_dir = args["model"].as<std::string>();
  const fs::path final_dir = runs::final_model_dir(run_dir);
  if (!fs::exists(final_dir))
    throw UsageError("--model: " + final_dir.string() + " holds no final model (run with refit_final: true)");
  if (!runs::final_model_complete(run_dir))
    throw UsageError("--model: " + final_dir.string() + " is incomplete (no " + runs::kFinalModelMarker +
                     "; the run was stopped while writing it): run `songlines run` on " + run_dir.string() +
                     " again with its config to finish it");
  Json inputs = load_json_file((final_dir / "inputs.json").string());
  auto features = inputs.at("features").get<std::vector<std::string>>();
  auto frame_blocks = inputs.value("frame_features", std::vector<std::string>{});
  auto countries = inputs.at("countries").get<std::vector<std::string>>();
  countries.erase(std::remove(countries.begin(), countries.end(), std::string()), countries.end());
  auto estimator = train::load_estimator(final_dir, args["device"].as<std::string>());
  auto* neural = dynamic_cast<train::NeuralLocationEstimator*>(estimator.get());
  const bool temporal = neural && neural->temporal();
  const auto& gazetteer = geo::Gazetteer::builtin();

  // Shards named directly, and audio extracted once into a scratch folder.
  std::vector<fs::path> shard_files, audio;
  for (const auto& in : args["input"].as<std::vector<std::string>>()) {
    if (is_shard_input(in))
      for (auto& f : shards::list_shards(in)) shard_files.push_back(f);
    else
      audio.emplace_back(in);
  }
  ScratchDir scratch;
  std::vector<extract::FailedFile> failed;
  if (!audio.empty()) {
    extract::ExtractOptions eo;
    eo.inputs = audio;
    eo.output_dir = scratch.path;
    eo.write_csv = false;
    if (args.count("catalog")) eo.catalog = args["catalog"].as<std::string>();
    auto r = extract::run_extract(eo);
    failed = r.failed;
    for (const auto& f : r.skipped) std::cerr << "predict: warning: skipped " << f.path << ": " << f.reason << "\n";
    for (auto& f : r.shards) shard_files.push_back(f);
  }

  // Every input failed: nothing to predict is a failed job (exit 1), and no empty predictions file is written.
  if (shard_files.empty() && !failed.empty()) {
    for (const auto& f : failed) std::cerr << "predict: skipped " << f.path << ": " << f.reason << "\n";
    throw Error("predict: none of the " + std::to_string(failed.size()) + " inputs could be read (listed above); " +
                (args.count("output") ? args["output"].as<std::string>() + " was not written" : std::string("nothing predicted")));
  }
  std::ostringstream csv;
  csv << "track_id,path,predicted_latitude,predicted_longitude,predicted_country,uncertainty_km\n";
  csv << std::setprecision(8);
  for (const auto& shard_path : shard_files) {
    shards::ShardReader reader(shard_path);
    const int64_t n = reader.size();
    train::LocationPrediction pred;
    if (temporal) {
      train::FrameSequences seq;
      seq.blocks = frame_blocks;
      std::vector<int64_t> all(n);
      for (int64_t i = 0; i < n; ++i) all[i] = i;
      train::append_frame_sequences(reader, all, seq);
      pred = neural->predict_sequences(seq, all);
    } else {
      std::vector<std::vector<double>> blocks;
      std::vector<int64_t> dims;
      int64_t dim = 0;
      const auto available = reader.summary_feature_names();
      for (const auto& f : features) {
        if (shards::is_metadata_block(f) && std::find(available.begin(), available.end(), f) == available.end())
          throw InputError(shard_path.string(), "the model uses the metadata block " + f +
                                                    ", which these tracks lack: give --catalog with genre and "
                                                    "listeners columns (or extract with --catalog)");
        int64_t k = 0;
        blocks.push_back(reader.read_summary_mean(f, &k));
        dims.push_back(k);
        dim += k;
      }
      if (dim != inputs.at("dim").get<int64_t>())
        throw InputError(shard_path.string(), "feature width " + std::to_string(dim) + " but the model expects " +
                                                  std::to_string(inputs.at("dim").get<int64_t>()));
      std::vector<float> x;
      for (int64_t i = 0; i < n; ++i)
        for (size_t b = 0; b < blocks.size(); ++b)
          for (int64_t k = 0; k < dims[b]; ++k) x.push_back(static_cast<float>(blocks[b][i * dims[b] + k]));
      pred = estimator->predict_raw(x, n);
    }
    for (int64_t i = 0; i < n; ++i) {
      auto p = pred.points[i];
      if (!geo::is_valid(p)) throw Error(shard_path.string() + ": track " + reader.ids()[i] + " gave no finite prediction");
      std::string country = countries.empty() ? gazetteer.nearest(p).iso2 : gazetteer.nearest(p, countries).iso2;
      csv << reader.ids()[i] << "," << reader.paths()[i] << "," << p.lat << "," << p.lon << "," << country << ",";
      if (!std::isnan(pred.uncertainty_km[i])) csv << pred.uncertainty_km[i];
      csv << "\n";
    }
  }
  if (args.count("output"))
    write_file_atomic(args["output"].as<std::string>(), csv.str());
  else
    std::cout << csv.str();
  for (const auto& f : failed) std::cerr << "predict: skipped " << f.path << ": " << f.reason << "\n";
  if (!failed.empty()) return static_cast<int>(ExitStatus::kPartial);
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"predict", "latitude, longitude, country, uncertainty for audio files or shards",
                                   predict_options, predict_main, {"input"},
                                   {"songlines predict --model runs/quickstart/location --input song.flac",
                                    "songlines predict --model runs/gom/RUN --input shards/ --output predictions.csv"}});

}  // namespace
}  // namespace songlines::cli
