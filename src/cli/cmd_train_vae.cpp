// songlines train-vae CONFIG.json [--set key=value]... [--device D] [--output-root DIR] [--run-dir DIR]
// A generative run (docs/vae.md). `songlines run` hands configs with "task": "vae" to the same code.
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "generate/vae_run.h"

namespace songlines::cli {
namespace {

cxxopts::Options train_vae_options() {
  cxxopts::Options o("songlines train-vae", "Train the coordinate-conditioned VAE on shards' mel_db; writes "
                                            "runs/<experiment>/<run-id>/ with checkpoints, metrics and samples");
  o.custom_help("CONFIG.json [options]");
  o.add_options()("config", "VAE run config (JSON, docs/vae.md)", cxxopts::value<std::string>())(
      "set", "override a config key: key.path=value (repeatable)", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto (overrides the config's device)", cxxopts::value<std::string>())(
      "output-root", "directory under which runs/<experiment>/<run-id>/ is created",
      cxxopts::value<std::string>()->default_value("runs"))(
      "run-dir", "exact run directory", cxxopts::value<std::string>());
  return o;
}

int train_vae_main(const cxxopts::ParseResult& a) {
  if (!a.count("config")) throw UsageError("train-vae: missing CONFIG.json");
  std::vector<std::string> overrides;
  overrides = set_overrides(a);
  if (a.count("device")) overrides.push_back("device=\"" + a["device"].as<std::string>() + "\"");
  auto config = generate::load_vae_run_config(a["config"].as<std::string>(), overrides);
  const auto run_dir = std::filesystem::absolute(a.count("run-dir") ? std::filesystem::path(a["run-dir"].as<std::string>())
                                    : generate::default_vae_run_dir(config, a["output-root"].as<std::string>()));
  Json metrics = generate::run_vae_experiment(config, run_dir, std::cerr);
  std::cout << metrics.dump(2) << "\nrun directory: " << run_dir.string() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"train-vae", "train the coordinate-conditioned VAE, write a generative run directory",
                                   train_vae_options, train_vae_main, {"config"},
                                   {"songlines train-vae experiments/vae-anthems.json --run-dir runs/vae-anthems --set train.steps=2000"}});

}  // namespace
}  // namespace songlines::cli
