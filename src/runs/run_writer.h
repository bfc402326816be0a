// Which process of a data-parallel run writes its run directory (docs/scaling.md): rank 0 of the current
// torch.distributed group, or the one process of a run without a group. The writer holds the directory's lock
// (one process per run directory; released on exit or crash); the other ranks train and follow its word.
// Shared by the location run (location_run.cpp) and the VAE run (vae_run.cpp).
#pragma once

#include <filesystem>
#include <optional>

#include "core/config.h"
#include "core/dir_lock.h"
#include "train/distributed.h"

namespace songlines::runs {

class RunDirWriter {
 public:
  /// Locks run_dir when this process is the writer (train::is_writer_rank; UsageError naming the holder when
  /// another process holds the lock).
  explicit RunDirWriter(const std::filesystem::path& run_dir) : group_(train::current_group()) {
    if (train::is_writer_rank()) lock_.emplace(run_dir);
  }

  /// The current group; null for a one-process run.
  train::DistributedGroup* group() const { return group_; }
  /// Whether this process writes the run directory: the one that holds its lock.
  bool writer() const { return lock_.has_value(); }
  /// env.json's record of the group: {"world_size": N, "backend": "gloo" | "nccl" | "none"}.
  Json world() const {
    return Json{{"world_size", group_ ? group_->world_size() : 1},
                {"backend", group_ ? train::to_string(group_->backend()) : "none"}};
  }

 private:
  train::DistributedGroup* group_;
  std::optional<DirLock> lock_;
};

}  // namespace songlines::runs
