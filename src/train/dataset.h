// Training data for the location model: per-track summary vectors [N, D] (concatenated summary means, in the
// order of `features`) with coordinates and grouping keys; loaded from shards or straight from a feature table.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "geo/great_circle.h"
#include "shards/shard.h"
#include "train/frame_store.h"
#include "train/table_import.h"

namespace songlines::train {

/// Frame sequences for temporal models: the named frame blocks of each track, concatenated per frame. Held in
/// memory (frames), or streamed: read on demand from the shards through a FrameStore with a memory budget
/// (docs/scaling.md "Data larger than memory"); both give the same values.
struct FrameSequences {
  int64_t dim = 0;                  ///< D: per-frame width (sum of the blocks' widths)
  std::vector<std::string> blocks;  ///< frame arrays, in column order
  std::vector<float> frames;        ///< [F, D] row-major, all tracks one after another; empty when streamed
  std::vector<int64_t> offsets{0};  ///< [N+1]; track i = rows offsets[i]..offsets[i+1]
  std::shared_ptr<const FrameStore> store;  ///< streamed: track i of the store is track i here; null in memory
  bool streamed() const { return store != nullptr; }
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t i) const { return offsets[i + 1] - offsets[i]; }
  /// In memory only (the frames of track i); streamed sequences are read with copy_rows().
  const float* track(int64_t i) const { return frames.data() + offsets[i] * dim; }
  /// Frames [start, start + count) of track i into dst ([count, D]): a copy, or a read through the store.
  void copy_rows(int64_t i, int64_t start, int64_t count, float* dst) const;
};

/// Where load_summary_dataset keeps frame sequences.
enum class FrameResidence {
  kAuto,      ///< in memory when every frame fits in the budget, else streamed
  kInMemory,  ///< in memory (the way before streaming existed)
  kStream,    ///< streamed through a FrameStore whatever the size
};

struct FrameLoading {
  FrameResidence residence = FrameResidence::kInMemory;
  /// Bytes of frames held in memory (kAuto: the threshold; streamed: the store's cache budget).
  /// 0: a quarter of the machine's physical memory.
  int64_t memory_budget_bytes = 0;
  FrameStoreOptions store;  ///< page size and open files of a streamed store (its budget is set from the above)
};

/// A quarter of the machine's physical memory in bytes (the default budget).
int64_t default_memory_budget_bytes();

/// The seed's four frame features, the default input of temporal models ([T, 20 + 12 + 7 + 6 = 45]).
std::vector<std::string> default_frame_blocks();

/// Appends the given tracks' frames (blocks side by side) from an open shard to `out`. Throws InputError naming
/// the shard when a block is missing or a track has no frames.
void append_frame_sequences(const shards::ShardReader& reader, const std::vector<int64_t>& tracks, FrameSequences& out);

struct Dataset {
  int64_t dim = 0;                          ///< D
  std::vector<float> x;                     ///< [N, D] row-major
  std::vector<geo::LatLon> coords;          ///< [N] degrees
  std::vector<std::string> ids;             ///< [N]
  std::vector<std::string> countries;       ///< [N] ISO2 ("" unknown)
  std::vector<std::string> artists;         ///< [N] ("" unknown)
  std::vector<std::string> features;        ///< summary blocks, in column order
  std::shared_ptr<const FrameSequences> sequences;  ///< [N] tracks' frames (temporal models); null when not loaded
  int64_t size() const { return static_cast<int64_t>(coords.size()); }
  const float* row(int64_t i) const { return x.data() + i * dim; }
};

/// Summary means of the named blocks (all blocks, sorted by name, when `features` is empty) from shards.
/// Tracks without coordinates are left out. Throws InputError when a shard lacks a block. With `frame_blocks`
/// non-empty the tracks' frame sequences are loaded too (Dataset::sequences), held as `frame_loading` says.
Dataset load_summary_dataset(const std::vector<std::filesystem::path>& shards, const std::vector<std::string>& features,
                             const std::vector<std::string>& frame_blocks = {}, const FrameLoading& frame_loading = {});
/// The same from an imported table (no shard round trip; keeps artists for grouped folds).
Dataset dataset_from_table(const ImportedTable& table, const std::vector<std::string>& features);

/// Per-column standardisation, fitted on training rows only and saved with the model.
struct Standardizer {
  std::vector<double> mean;  ///< [D]
  std::vector<double> scale; ///< [D] standard deviation (1 where a column is constant)

  static Standardizer fit(const Dataset& data, const std::vector<int64_t>& rows);
  /// Per-frame-column statistics over every frame of the given tracks (temporal models). Streamed sequences are
  /// read twice (mean, then spread), a page at a time; the sums run in the same order either way.
  static Standardizer fit_frames(const FrameSequences& seq, const std::vector<int64_t>& tracks);
  /// Standardised copy of the given rows: [rows, D].
  std::vector<float> apply(const Dataset& data, const std::vector<int64_t>& rows) const;
  /// Standardises a [n, D] block in place.
  void apply_inplace(float* x, int64_t n) const;
  Json to_json() const;
  static Standardizer from_json(const Json& j);
};

}  // namespace songlines::train
