// Extraction over many machines (docs/extract.md, "Many machines"): `extract --part K/N` takes the K-th of N
// contiguous ranges of the sorted work list into OUTPUT/part-K-of-N/, and `extract --emit slurm --parts N`
// writes the job array that runs every part.
//
// Contiguous ranges, not round-robin: read in part order, the parts' shards hold the tracks in the order of a
// one-machine extract, so a run over the part folders sees the same rows in the same order (the same folds,
// hence the same metrics). Range sizes differ by at most one file (the first n % N parts take one more), so the
// work is balanced by count of files; a folder of long tracks lands in one or two parts, not spread over all.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "extract/catalog.h"
#include "extract/extract.h"

namespace songlines::extract {

/// Parses "K/N" (decimal digits only, 1 <= K <= N). UsageError naming --part and the value otherwise.
ExtractPart parse_part(const std::string& text);

/// [begin, end) of part K/N in a list of n items: contiguous; the first n % N parts hold floor(n/N) + 1 items,
/// the others floor(n/N). Over K = 1..N the ranges are disjoint and cover [0, n).
std::pair<size_t, size_t> part_range(size_t n, ExtractPart part);

/// "part-K-of-N", K zero-padded to N's width so that the folders sort in part order ("part-03-of-12").
std::string part_dir_name(ExtractPart part);

/// UsageError when output holds part folders of a split into another number of parts ("part-2-of-4" beside
/// --part 1/8): a glob over the folders would read some tracks twice.
void check_sibling_parts(const std::filesystem::path& output, ExtractPart part);

/// Track ids for every file of the list, decided over the whole sorted list before it is cut into parts, so
/// that a part's tracks carry the ids a one-machine extract gives them: the catalog's track_id, else the id
/// derived from the path; a repeated one gets "#2", "#3", ... in path order.
std::vector<std::string> unique_track_ids(const AudioFileList& list, const Catalog& catalog);

/// The `songlines extract` arguments that decide what a part contains and how: --input (absolute), --output
/// (absolute), --catalog, --device, --features, --shard-size. Not --jobs, --part, --resume: the job script adds
/// them per task.
std::vector<std::string> part_command_args(const ExtractOptions& options);

struct SlurmExtractOptions {
  int parts = 1;                    ///< N: array tasks 1..N
  std::filesystem::path executable; ///< absolute path of the songlines binary
  int cpus_per_task = 8;            ///< #SBATCH --cpus-per-task, and --jobs when Slurm does not say
  bool gpu = false;                 ///< #SBATCH --gres=gpu:1 (--device cuda)
};

/// The job-array script: task K runs `songlines extract ARGS --jobs C --part K/N --resume` with ARGS from
/// part_command_args; options.output_dir must be absolute. The script is meant to sit at OUTPUT/extract.slurm.
std::string extract_slurm_script(const ExtractOptions& options, const SlurmExtractOptions& slurm);

}  // namespace songlines::extract
