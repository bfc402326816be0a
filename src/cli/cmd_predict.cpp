// songlines predict --model RUN_DIR --input SHARD... [--output FILE] [--device ...]
#include <fstream>
#include <iostream>
#include <set>

#include "cli/command.h"
#include "core/error.h"
#include "geo/gazetteer.h"
#include "shards/shard.h"
#include "train/trainer.h"

namespace songlines::cli {
namespace {

cxxopts::Options predict_options() {
  cxxopts::Options o("songlines predict",
                     "Latitude, longitude, country and uncertainty for the tracks of shards, from a run's final model");
  o.add_options()("model", "run directory (uses RUN_DIR/checkpoints/final)", cxxopts::value<std::string>())(
      "input", "shard files or directories", cxxopts::value<std::vector<std::string>>())(
      "output", "CSV file (default: stdout)", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"));
  return o;
}

int predict_main(const cxxopts::ParseResult& args) {
  if (!args.count("model") || !args.count("input")) throw UsageError("predict: needs --model RUN_DIR and --input PATH");
  std::filesystem::path final_dir = std::filesystem::path(args["model"].as<std::string>()) / "checkpoints" / "final";
  if (!std::filesystem::exists(final_dir / "inputs.json"))
    throw UsageError("--model: " + final_dir.string() + " holds no final model (run with refit_final: true)");
  Json inputs = load_json_file((final_dir / "inputs.json").string());
  auto features = inputs.at("features").get<std::vector<std::string>>();
  auto countries = inputs.at("countries").get<std::vector<std::string>>();
  countries.erase(std::remove(countries.begin(), countries.end(), std::string()), countries.end());
  auto estimator = train::load_estimator(final_dir, args["device"].as<std::string>());
  const auto& gazetteer = geo::Gazetteer::builtin();

  std::ofstream file;
  std::ostream* out = &std::cout;
  if (args.count("output")) {
    file.open(args["output"].as<std::string>());
    if (!file) throw IoError("--output: cannot write " + args["output"].as<std::string>());
    out = &file;
  }
  *out << "track_id,path,predicted_latitude,predicted_longitude,predicted_country,uncertainty_km\n";
  *out << std::setprecision(8);
  for (const auto& in : args["input"].as<std::vector<std::string>>()) {
    for (const auto& shard_path : shards::list_shards(in)) {
      shards::ShardReader reader(shard_path);
      const int64_t n = reader.size();
      std::vector<std::vector<double>> blocks;
      std::vector<int64_t> dims;
      int64_t dim = 0;
      for (const auto& f : features) {
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
      auto pred = estimator->predict_raw(x, n);
      for (int64_t i = 0; i < n; ++i) {
        auto p = pred.points[i];
        std::string country = countries.empty() ? gazetteer.nearest(p).iso2 : gazetteer.nearest(p, countries).iso2;
        *out << reader.ids()[i] << "," << reader.paths()[i] << "," << p.lat << "," << p.lon << "," << country << ",";
        if (!std::isnan(pred.uncertainty_km[i])) *out << pred.uncertainty_km[i];
        *out << "\n";
      }
    }
  }
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"predict", "latitude, longitude, country, uncertainty for shards",
                                   predict_options, predict_main, {}});

}  // namespace
}  // namespace songlines::cli
