#include "runs/run_slurm.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/shell_quote.h"

namespace songlines::runs {

int slurm_run_tasks(const RunSlurmOptions& o) { return o.nodes * std::max(1, o.gpus_per_node); }

std::string run_slurm_script(const RunSlurmOptions& o) {
  if (o.nodes < 1) throw UsageError("run --nodes: must be >= 1, got " + std::to_string(o.nodes));
  if (o.gpus_per_node < 0)
    throw UsageError("run --gpus-per-node: must be >= 0, got " + std::to_string(o.gpus_per_node));
  const int per_node = std::max(1, o.gpus_per_node), tasks = slurm_run_tasks(o);
  const auto script = o.run_dir / "run.slurm";
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Data-parallel `songlines run` of " << o.config_file.string() << " on " << o.nodes << " node(s) x "
    << per_node << " task(s) = " << tasks << " ranks, written by `songlines run ... --emit slurm --nodes " << o.nodes
    << " --gpus-per-node " << o.gpus_per_node << "`.\n"
    << "# Submit with: sbatch " << script.string() << "\n"
    << "# srun starts one task per " << (o.gpus_per_node > 0 ? "GPU (NCCL where libtorch has it, else Gloo)" : "node (Gloo on the CPU)")
    << "; each reads SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID.\n"
    << "# Rank 0 runs on the first node of the allocation (MASTER_ADDR), serves the rendezvous at MASTER_PORT and\n"
    << "# alone writes " << o.run_dir.string() << " (on shared storage). A rank that dies ends the job with an error\n"
    << "# after at most SONGLINES_COLLECTIVE_TIMEOUT seconds (default 300); resubmitting resumes from the last\n"
    << "# epoch checkpoint (set train.checkpoint_every in the config) and skips finished folds.\n"
    << "#SBATCH --job-name=" << sbatch_quote("songlines-" + o.experiment) << "\n"
    << "#SBATCH --nodes=" << o.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << per_node << "\n";
  if (o.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << o.gpus_per_node << "\n";
  s << "#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n"
    << "#SBATCH --output=" << sbatch_quote((o.run_dir / "slurm-%j.out").string()) << "\n"
    << "set -euo pipefail\n"
    << "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n"
    << "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n"
    << "export SONGLINES_COLLECTIVE_TIMEOUT=\"${SONGLINES_COLLECTIVE_TIMEOUT:-300}\"\n"
    << "srun --nodes=" << o.nodes << " --ntasks=" << tasks << " --ntasks-per-node=" << per_node
    << " --kill-on-bad-exit=1 " << shell_quote(o.executable.string()) << " run " << shell_quote(o.config_file.string())
    << " --run-dir " << shell_quote(o.run_dir.string());
  for (const auto& a : o.run_args) s << " " << shell_quote(a);
  s << "\n";
  return s.str();
}

}  // namespace songlines::runs
