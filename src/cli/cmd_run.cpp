// songlines run CONFIG.json [--set key=value]... [--device cpu|cuda|auto] [--output-root DIR] [--run-dir DIR]
//               [--emit slurm --nodes N --gpus-per-node G]
// Started by torchrun or srun (WORLD_SIZE / SLURM_PROCID set, docs/scaling.md) a location run trains data-parallel.
// The config's "task" picks what runs (runs/task.h): a location run (no "task", or "location"), "vae" (a generative
// run, docs/vae.md) or "quickstart" (the main job, docs/experiments.md). `songlines train-vae` is the old name of
// `run` for VAE configs (a config without "task" is a VAE run there).
#include <iostream>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/entry_point_path.h"
#include "core/error.h"
#include "models/torch_compat.h"
#include "runs/run_slurm.h"
#include "runs/task.h"
#include "train/distributed.h"

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
  o.add_options("cluster")("emit", "write a scheduler script instead of running: slurm (a multi-node data-parallel job)",
                           cxxopts::value<std::string>())(
      "nodes", "--emit slurm: nodes", cxxopts::value<int>()->default_value("1"))(
      "gpus-per-node", "--emit slurm: GPUs per node, one rank each (0: CPU nodes, one rank each)",
      cxxopts::value<int>()->default_value("0"))(
      "cpus-per-task", "--emit slurm: CPUs per rank", cxxopts::value<int>()->default_value("8"));
  return o;
}

// --emit slurm: RUN_DIR/run.slurm, whose srun starts every rank of the job with the same arguments.
int emit_slurm(const cxxopts::ParseResult& args, const runs::PreparedRun& run, const std::string& config_file,
               const std::filesystem::path& run_dir, const std::vector<std::string>& overrides) {
  if (args["emit"].as<std::string>() != "slurm")
    throw UsageError("run --emit: unknown \"" + args["emit"].as<std::string>() + "\" (slurm)");
  if (run.task != "location")
    throw UsageError("run --emit slurm: " + config_file + " is a \"" + run.task + "\" run; only location runs train "
                     "data-parallel");
  runs::RunSlurmOptions o;
  o.nodes = args["nodes"].as<int>();
  o.gpus_per_node = args["gpus-per-node"].as<int>();
  o.cpus_per_task = args["cpus-per-task"].as<int>();
  if (o.cpus_per_task < 1) throw UsageError("run --cpus-per-task: must be >= 1");
  o.experiment = run.experiment;
  o.executable = entry_point_path();
  o.config_file = std::filesystem::absolute(config_file).lexically_normal();
  o.run_dir = std::filesystem::absolute(run_dir).lexically_normal();
  for (const auto& s : overrides) o.run_args.insert(o.run_args.end(), {"--set", s});
  const std::string text = runs::run_slurm_script(o);  // checks the counts before anything is written
  std::filesystem::create_directories(o.run_dir);
  const auto script = o.run_dir / "run.slurm";
  write_file_atomic(script, text);
  std::filesystem::permissions(script, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::add);
  std::cout << "Slurm job (" << o.nodes << " node(s), " << runs::slurm_run_tasks(o) << " ranks): " << script.string()
            << "\nsubmit with: sbatch " << script.string() << "\n";
  return 0;
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
  if (args.count("emit")) return emit_slurm(args, run, config_file, run_dir, overrides);
  const train::LaunchEnvironment launch = train::launch_environment();
  if (launch.distributed()) {
    // Data-parallel: the location task's neural models (train/trainer.h) and the VAE (generate/vae_training.h).
    // Started by torchrun or srun.
    if (run.task != "location" && run.task != "vae")
      throw UsageError(name + ": " + config_file + " is a \"" + run.task + "\" run, which does not train data-parallel; "
                       "start it as one process (this one has WORLD_SIZE or SLURM_NTASKS = " +
                       std::to_string(launch.world_size) + ")");
    const auto device = torch_compat::resolve_device(run.resolved.value("device", std::string("auto")));
    train::set_current_group(train::DistributedGroup::join(launch, device));
  }
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
     "songlines run experiments/gom.json --set evaluation.folds=5 --device cpu --output-root runs",
     "songlines run experiments/gom.json --run-dir /shared/runs/gom --emit slurm --nodes 4 --gpus-per-node 8",
     "torchrun --nproc-per-node 2 --no-python songlines run experiments/gom.json --run-dir runs/gom-dp"}});

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
