// `songlines run CONFIG --emit slurm --nodes N --gpus-per-node G`: the Slurm batch script of a data-parallel run
// over N nodes (docs/scaling.md). srun starts N x G tasks (one per GPU; one per node when G is 0), which read
// their place from Slurm's variables (train/distributed.h); rank 0 serves the rendezvous on the first node and
// writes the run directory.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace songlines::runs {

struct RunSlurmOptions {
  int nodes = 1;                      ///< #SBATCH --nodes
  int gpus_per_node = 0;              ///< GPUs per node, one task each; 0: CPU nodes, one task per node (Gloo)
  int cpus_per_task = 8;              ///< #SBATCH --cpus-per-task (data loading threads and CPU training)
  std::string experiment;             ///< the job's name: songlines-<experiment>
  std::filesystem::path executable;   ///< the songlines binary, absolute
  std::filesystem::path config_file;  ///< absolute
  std::filesystem::path run_dir;      ///< absolute; every task is started with --run-dir it
  std::vector<std::string> run_args;  ///< further arguments of `songlines run` (--set ..., --device ...)
};

/// The number of tasks (ranks) the script starts: nodes x max(1, gpus_per_node).
int slurm_run_tasks(const RunSlurmOptions& o);

/// The script's text, meant for run_dir/run.slurm. UsageError on nodes < 1 or gpus_per_node < 0.
std::string run_slurm_script(const RunSlurmOptions& o);

}  // namespace songlines::runs
