// Data-parallel training over torch.distributed (c10d): how a process learns its place in a job from the
// launcher's environment (torchrun, or srun under Slurm), and the few collectives training needs (gradient
// all-reduce, broadcast of parameters, optimiser state and small records from rank 0), with a timeout on every
// one so that a dead or hung rank ends the job with an error instead of a hang (docs/scaling.md).
//
// Engines: Gloo on the CPU, NCCL for CUDA devices where libtorch has it (Debian's libtorch 1.13 has Gloo and no
// NCCL; a CUDA run without NCCL all-reduces through Gloo over host copies). The rendezvous is c10d's TCPStore,
// served by rank 0 at MASTER_ADDR:MASTER_PORT. No collective code of our own.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/error.h"

namespace songlines::train {

/// Default seconds a collective (or the rendezvous) may wait for the other ranks; SONGLINES_COLLECTIVE_TIMEOUT.
inline constexpr int kDefaultCollectiveTimeoutS = 300;

/// Where this process sits in a job, as its launcher said.
struct LaunchEnvironment {
  int world_size = 1;                 ///< processes in the job (WORLD_SIZE, or SLURM_NTASKS)
  int rank = 0;                       ///< this process, 0..world_size-1 (RANK, or SLURM_PROCID)
  int local_rank = 0;                 ///< this process on its node (LOCAL_RANK, or SLURM_LOCALID): its GPU
  std::string master_addr;            ///< host of rank 0's rendezvous store (MASTER_ADDR, or Slurm's first node)
  int master_port = 0;                ///< its TCP port (MASTER_PORT; under Slurm 20000 + job id % 20000 if unset)
  std::string launcher = "none";      ///< "torchrun" (WORLD_SIZE set), "slurm" (SLURM_PROCID set) or "none"
  int timeout_s = kDefaultCollectiveTimeoutS;  ///< seconds per collective and for the rendezvous
  bool distributed() const { return world_size > 1; }
};

/// Reads a variable: its value, or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// Parses a launch environment. torchrun's variables win over Slurm's (torchrun inside an allocation). A bad
/// value is a ConfigError naming the variable and the value (`RANK: expected an integer in 0..1, got "2"`).
LaunchEnvironment parse_launch_environment(const EnvLookup& env);

/// parse_launch_environment of this process's environment.
LaunchEnvironment launch_environment();

/// Expands a Slurm host list ("node[01-04,07],gpu3", "rack[1-2]-n[1-2]") into host names, in order, zero
/// padding kept. ConfigError naming SLURM_JOB_NODELIST on a malformed list.
std::vector<std::string> expand_slurm_nodelist(const std::string& list);

/// A collective failed: a rank died, hung past the timeout, or cannot be reached. Exit status 1.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

enum class CollectiveBackend { kGloo, kNccl };
std::string to_string(CollectiveBackend b);

/// Whether this build can run data-parallel on the CPU (Gloo found at build time) and on CUDA (NCCL).
bool gloo_available();
bool nccl_available();

/// One process's membership of a torch.distributed process group.
class DistributedGroup {
 public:
  /// Joins the job env describes (env.world_size > 1): a rendezvous through a TCPStore that rank 0 serves at
  /// env.master_addr:env.master_port, then a Gloo process group, or NCCL when device is CUDA and NCCL exists.
  /// The rendezvous waits env.timeout_s for every rank, then throws CollectiveError naming the store and ranks.
  static std::shared_ptr<DistributedGroup> join(const LaunchEnvironment& env, const torch::Device& device);
  ~DistributedGroup();
  DistributedGroup(const DistributedGroup&) = delete;
  DistributedGroup& operator=(const DistributedGroup&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const LaunchEnvironment& environment() const { return env_; }
  CollectiveBackend backend() const { return backend_; }

  /// Sums every tensor over the ranks, in place (one flat collective). what names the data in errors.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  /// Replaces every tensor with rank 0's, in place.
  void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what);
  /// Rank 0's bytes on every rank (the argument is ignored on the other ranks).
  std::string broadcast_bytes(const std::string& bytes, const std::string& what);
  /// Rank 0's value on every rank.
  bool broadcast_flag(bool value, const std::string& what);
  double all_reduce_sum(double value, const std::string& what);
  /// Every rank's bytes, in rank order, on every rank (sizes may differ).
  std::vector<std::string> all_gather_bytes(const std::string& bytes, const std::string& what);
  /// Waits until every rank has called it, for up to timeout_s seconds (the group's timeout when 0). A rank that
  /// dies closes its sockets, which ends the wait of the others at once with a CollectiveError.
  void barrier(const std::string& what, int timeout_s = 0);

 private:
  struct Impl;
  DistributedGroup(LaunchEnvironment env, CollectiveBackend backend, std::unique_ptr<Impl> impl);
  /// Runs one collective (its wait included) and turns any failure into a CollectiveError naming it and its
  /// timeout (timeout_s; the group's when 0).
  void collective(const std::string& op, const std::string& what, const std::function<void()>& body,
                  int timeout_s = 0);
  LaunchEnvironment env_;
  CollectiveBackend backend_;
  std::unique_ptr<Impl> impl_;
};

/// The process-wide group training joins (torch.distributed's default group): nullptr in a one-process run.
/// `songlines run` sets it from the launch environment before a data-parallel task starts.
DistributedGroup* current_group();
void set_current_group(std::shared_ptr<DistributedGroup> group);

/// Rank 0 of the current group, or a one-process run: the process that writes the run directory.
bool is_writer_rank();

/// Data-parallel helpers over a module's tensors (no-ops without a group).
/// Parameters and buffers become rank 0's.
void broadcast_module(DistributedGroup& group, torch::nn::Module& module);
/// Gradients of params become sum over ranks of weight_r * grad_r: with weight_r = rows of rank r / rows of the
/// global batch and a loss that is a mean over rows, that is the gradient of the global batch's mean loss.
/// A parameter without a gradient counts as zero (a rank with no rows in a batch still takes part).
void all_reduce_gradients(DistributedGroup& group, const std::vector<torch::Tensor>& params, double weight);

}  // namespace songlines::train
