// songlines run CONFIG.json [--set key=value]... [--device cpu|cuda|auto] [--output-root DIR] [--run-dir DIR]
// The config's "task" picks what runs (runs/task.h): a location run (no "task", or "location"), "vae" (a generative
// run, docs/vae.md) or "quickstart" (the main job, docs/experiments.md). `songlines train-vae` is the old name of
// `run` for VAE configs (a config without "task" is a VAE run there).
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "runs/task.h"

namespace songlines::cli {
namespace {

cxxopts::Options run_options(const std::string& name, const std::string& what) {
  cxxopts::Options o("songlines " + name, what);
  o.custom_help("CONFIG.json [options]");
  o.add_options()("config", "experiment config (JSON)", cxxopts::value<std::string>())(
      "set", "override a config key: key.path=value (repeatable)", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto (overrides the config's device)", cxxopts::value<std::string>())(
      "output-root", "directory under which runs/<experiment>/<run-id>/ is created",
      cxxopts::value<std::string>()->default_value("runs"))(
      "run-dir", "exact run directory; an existing one with the same config is resumed", cxxopts::value<std::string>());
  return o;
}

// default_task: the task of a config without "task"; only_task: the one task this spelling runs ("" for any).
int run_main(const std::string& name, const std::string& default_task, const std::string& only_task,
             const cxxopts::ParseResult& args) {
  if (!args.count("config")) throw UsageError(name + ": missing CONFIG.json");
  std::vector<std::string> overrides = set_overrides(args);
  if (args.count("device")) overrides.push_back("device=\"" + args["device"].as<std::string>() + "\"");
  const std::string config_file = args["config"].as<std::string>();
  const runs::PreparedRun run = runs::load_run(config_file, overrides, default_task);
  if (!only_task.empty() && run.task != only_task)
    throw UsageError(name + ": " + config_file + " is a \"" + run.task + "\" config; run it with `songlines run`");
  const auto run_dir = args.count("run-dir") ? std::filesystem::path(args["run-dir"].as<std::string>())
                                             : runs::default_run_dir(run, args["output-root"].as<std::string>());
  std::cout << run.run(run_dir, std::cerr).text;
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{
    "run", "one experiment: train, evaluate (K-fold CV), write a run directory",
    [] {
      return run_options("run", "Train and evaluate the models of an experiment config (K-fold CV x repeats); "
                                "writes runs/<experiment>/<run-id>/. The config's \"task\" (location, vae, vocoder, quickstart) "
                                "picks what runs");
    },
    [](const cxxopts::ParseResult& a) { return run_main("run", "location", "", a); },
    {"config"},
    {"songlines run experiments/gom.json",
     "songlines run experiments/quickstart.json --run-dir runs/quickstart --set vae.train.steps=2000",
     "songlines run experiments/gom.json --set evaluation.folds=5 --device cpu --output-root runs"}});

SONGLINES_REGISTER_COMMAND(Command{
    "train-vae", "old name of `run` for VAE configs (docs/vae.md)",
    [] {
      return run_options("train-vae", "Train the coordinate-conditioned VAE on shards' mel_db; writes "
                                      "runs/<experiment>/<run-id>/ with checkpoints, metrics and samples. The old "
                                      "name of `songlines run` for VAE configs");
    },
    [](const cxxopts::ParseResult& a) { return run_main("train-vae", "vae", "vae", a); },
    {"config"},
    {"songlines train-vae experiments/vae-anthems.json --run-dir runs/vae-anthems --set train.steps=2000"}});

}  // namespace
}  // namespace songlines::cli
