// songlines run CONFIG.json [--set key=value]... [--device cpu|cuda|auto] [--output-root DIR] [--run-dir DIR]
// A config with "task": "vae" is a generative run (docs/vae.md) and goes to generate::run_vae_experiment;
// "task": "quickstart" is the main job (experiments/quickstart.h): synthesized audio, features, location
// models, a VAE and one report, in runs/<experiment>/ unless --run-dir names the folder.
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "experiments/quickstart.h"
#include "generate/vae_run.h"
#include "runs/experiment.h"

namespace songlines::cli {
namespace {

cxxopts::Options run_options() {
  cxxopts::Options o("songlines run", "Train and evaluate the models of an experiment config (K-fold CV x repeats); "
                                      "writes runs/<experiment>/<run-id>/");
  o.custom_help("CONFIG.json [options]");
  o.add_options()("config", "experiment config (JSON)", cxxopts::value<std::string>())(
      "set", "override a config key: key.path=value (repeatable)", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto (overrides the config's device)", cxxopts::value<std::string>())(
      "output-root", "directory under which runs/<experiment>/<run-id>/ is created",
      cxxopts::value<std::string>()->default_value("runs"))(
      "run-dir", "exact run directory; an existing one with the same config is resumed", cxxopts::value<std::string>());
  return o;
}

int run_main(const cxxopts::ParseResult& args) {
  if (!args.count("config")) throw UsageError("run: missing CONFIG.json");
  std::vector<std::string> overrides;
  overrides = set_overrides(args);
  if (args.count("device")) overrides.push_back("device=\"" + args["device"].as<std::string>() + "\"");
  const std::string config_file = args["config"].as<std::string>();
  const Json raw = load_json_file(config_file);
  if (experiments::is_quickstart_config(raw)) {
    auto qc = experiments::load_quickstart_config(config_file, overrides);
    auto dir = args.count("run-dir") ? std::filesystem::path(args["run-dir"].as<std::string>())
                                     : std::filesystem::path(args["output-root"].as<std::string>()) / qc.experiment;
    auto r = experiments::run_quickstart_experiment(qc, dir, std::cerr);
    std::cout << "\nsummary:\n" << r.summary.dump(2) << "\n\n";
    for (const auto& p : r.parts) std::cout << "run:     " << p.string() << "  (report: " << (p / "report.html").string() << ")\n";
    if (!r.samples_dir.empty()) std::cout << "samples: " << r.samples_dir.string() << "  (*.wav with a spectrogram *.png each)\n";
    std::cout << "report:  " << r.report.string() << "\n";
    return 0;
  }
  if (generate::is_vae_config(raw)) {
    auto vae_config = generate::load_vae_run_config(config_file, overrides);
    const auto vae_dir = std::filesystem::absolute(
        args.count("run-dir") ? std::filesystem::path(args["run-dir"].as<std::string>())
                              : generate::default_vae_run_dir(vae_config, args["output-root"].as<std::string>()));
    Json metrics = generate::run_vae_experiment(vae_config, vae_dir, std::cerr);
    std::cout << metrics.dump(2) << "\nrun directory: " << vae_dir.string() << "\n";
    return 0;
  }
  auto config = runs::load_run_config(args["config"].as<std::string>(), overrides);
  auto run_dir = args.count("run-dir") ? std::filesystem::path(args["run-dir"].as<std::string>())
                                       : runs::default_run_dir(config, args["output-root"].as<std::string>());
  auto result = runs::run_experiment(config, run_dir, std::cerr);
  const auto& models = result.metrics["models"];
  std::printf("%-16s %10s %10s %8s %8s %8s %8s\n", "model", "mean_km", "median_km", "<500", "<1000", "<2500", "country");
  for (auto& [name, m] : models.items())
    std::printf("%-16s %10.1f %10.1f %8.3f %8.3f %8.3f %8.3f\n", name.c_str(), m["mean_km"]["mean"].get<double>(),
                m["median_km"]["mean"].get<double>(), m["within_500"]["mean"].get<double>(),
                m["within_1000"]["mean"].get<double>(), m["within_2500"]["mean"].get<double>(),
                m["country_accuracy"]["mean"].get<double>());
  std::cout << "run directory: " << result.run_dir.string() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"run", "one experiment: train, evaluate (K-fold CV), write a run directory",
                                   run_options, run_main, {"config"},
                                   {"songlines run experiments/gom.json",
                                    "songlines run experiments/quickstart.json --run-dir runs/quickstart --set vae.train.steps=2000",
                                    "songlines run experiments/gom.json --set evaluation.folds=5 --device cpu --output-root runs"}});

}  // namespace
}  // namespace songlines::cli
