// songlines sweep CONFIG.json [--workers N] [--output-root DIR | --sweep-dir DIR] [--set k=v]... [--trial K]
//                              [--emit slurm]
#include <iostream>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/entry_point_path.h"
#include "core/error.h"
#include "runs/results.h"
#include "runs/sweep.h"

namespace songlines::cli {
namespace {

namespace fs = std::filesystem;

cxxopts::Options sweep_options() {
  cxxopts::Options o("songlines sweep",
                     "Run a grid / random / seed sweep of experiment runs (docs/experiments.md); complete trials are "
                     "skipped, partial ones resume. Writes <sweep-dir>/sweep.json, trials/<name>/, results.csv");
  o.custom_help("CONFIG.json [options]");
  o.add_options()("config", "sweep config: a run config with a \"sweep\" section", cxxopts::value<std::string>())(
      "workers", "parallel trials (default: one per GPU, else 1 CPU process)", cxxopts::value<int>()->default_value("0"))(
      "output-root", "the sweep directory is <output-root>/sweeps/<name>", cxxopts::value<std::string>()->default_value("runs"))(
      "sweep-dir", "exact sweep directory (overrides --output-root)", cxxopts::value<std::string>())(
      "set", "override a key of the base config or the sweep section: key.path=value (repeatable)",
      cxxopts::value<std::string>())(
      "trial", "run only trial K in this process (0-based; what a Slurm array task runs)", cxxopts::value<int>())(
      "emit", "write a scheduler script instead of running: slurm", cxxopts::value<std::string>());
  return o;
}

int sweep_main(const cxxopts::ParseResult& a) {
  if (!a.count("config")) throw UsageError("sweep: missing CONFIG.json");
  std::vector<std::string> overrides;
  overrides = set_overrides(a);
  auto spec = runs::load_sweep(a["config"].as<std::string>(), overrides);
  const fs::path sweep_dir = fs::absolute(a.count("sweep-dir") ? fs::path(a["sweep-dir"].as<std::string>())
                                                               : runs::default_sweep_dir(spec, a["output-root"].as<std::string>()));
  // What children and array tasks repeat: the same overrides, so they expand the same trial list.
  std::vector<std::string> child_args;
  for (const auto& o : overrides) child_args.insert(child_args.end(), {"--set", o});

  if (a.count("trial")) {
    int k = a["trial"].as<int>();
    if (k < 0 || k >= static_cast<int>(spec.trials.size()))
      throw UsageError("sweep --trial " + std::to_string(k) + ": the sweep has trials 0.." +
                       std::to_string(spec.trials.size() - 1));
    const auto& t = spec.trials[k];
    if (runs::trial_complete(sweep_dir / "trials" / t.name)) {
      std::cerr << "trial " << k << " (" << t.name << ") is complete\n";
      return 0;
    }
    fs::create_directories(sweep_dir);
    if (!fs::exists(sweep_dir / "sweep.json"))
      write_json_file_atomic((sweep_dir / "sweep.json").string(), runs::sweep_manifest(spec, sweep_dir));
    runs::run_trial(spec, t, sweep_dir, std::cerr);
    std::cout << "trial " << k << " done: " << (sweep_dir / "trials" / t.name).string() << "\n";
    return 0;
  }

  if (a.count("emit")) {
    if (a["emit"].as<std::string>() != "slurm")
      throw UsageError("sweep --emit: unknown \"" + a["emit"].as<std::string>() + "\" (slurm)");
    fs::create_directories(sweep_dir / "trials");
    write_json_file_atomic((sweep_dir / "sweep.json").string(), runs::sweep_manifest(spec, sweep_dir));
    const auto script = sweep_dir / "sweep.slurm";
    write_file_atomic(script, runs::slurm_script(spec, sweep_dir, entry_point_path(), child_args));
    fs::permissions(script, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
    std::cout << "Slurm job array (" << spec.trials.size() << " tasks): " << script.string() << "\n"
              << "submit with: sbatch " << script.string() << "\n";
    return 0;
  }

  runs::SweepOptions options;
  options.workers = a["workers"].as<int>();
  if (options.workers < 0) throw UsageError("sweep --workers: expected >= 0");
  options.child_args = child_args;
  // One sweep process per sweep directory (its trials lock their own run directories).
  const DirLock lock(sweep_dir);
  auto outcomes = runs::run_sweep(spec, sweep_dir, options, std::cerr);

  std::vector<std::string> incomplete;
  auto groups = runs::load_sweep_groups(sweep_dir, &incomplete);
  write_file_atomic(sweep_dir / "results.csv", runs::results_csv(groups));
  std::cout << runs::results_text(groups);
  int failed = 0;
  for (const auto& o : outcomes) failed += o.state == runs::TrialOutcome::State::kFailed;
  std::cout << "sweep directory: " << sweep_dir.string() << "  (results.csv; " << spec.trials.size() << " trials, "
            << failed << " failed)\n";
  if (failed == 0) return 0;
  std::cerr << failed << " trial(s) failed; rerun the same command to retry them\n";
  return static_cast<int>(failed == static_cast<int>(outcomes.size()) ? ExitStatus::kFailed : ExitStatus::kPartial);
}

SONGLINES_REGISTER_COMMAND(Command{"sweep", "a grid / random / seed sweep of runs in parallel, resumable; results table",
                                   sweep_options, sweep_main, {"config"},
                                   {"songlines sweep experiments/sweep-gom-heads.json --workers 2",
                                    "songlines sweep experiments/sweep-gom-heads.json --emit slurm"}});

}  // namespace
}  // namespace songlines::cli
