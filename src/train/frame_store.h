// Frames of tracks in shards, read on demand (docs/scaling.md "Data larger than memory"): temporal location
// models and the VAE take crops of a few hundred frames, so a collection larger than memory is read as HDF5
// hyperslabs of just those frames through a page cache with a byte budget. Memory is then set by the budget,
// not by the collection: the cache holds at most budget_bytes of frames, and each of at most max_open_files
// open shards adds HDF5's chunk cache (chunk_cache_bytes per frame block read, none by default). A crop equals the in-memory copy of the
// same frames exactly (the same float32 values, the blocks side by side in the same column order).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "shards/shard.h"

namespace songlines::train {

/// How a FrameStore reads and caches frames.
struct FrameStoreOptions {
  int64_t budget_bytes = int64_t{256} << 20;  ///< most bytes of frames (float32) the page cache holds
  int64_t page_frames = 256;                  ///< frames per cached page; a page never spans two tracks
  int max_open_files = 16;                    ///< shards open at once (least recently used ones are closed)
  /// HDF5's chunk cache per frame array of an open shard (shards::ShardReaderOptions). 0: pages are read
  /// straight from the file, not whole chunks (up to 1 MiB for a few KiB); compressed shards want a cache.
  int64_t chunk_cache_bytes = 0;
  bool operator==(const FrameStoreOptions&) const = default;
};

/// Counters of a FrameStore since it was made (a snapshot).
struct FrameStoreStats {
  int64_t page_hits = 0;          ///< pages served from the cache
  int64_t page_misses = 0;        ///< pages read from a shard
  int64_t bytes_read = 0;         ///< float32 bytes read from shards
  double read_seconds = 0;        ///< wall time spent reading them (HDF5 and the checks)
  int64_t cached_bytes = 0;       ///< bytes of frames the cache holds now
  int64_t peak_cached_bytes = 0;  ///< the most it ever held (<= budget_bytes)
};

/// The width of each named frame block in a shard ([dim] per block, in order). Throws InputError naming the
/// shard when a block is missing (temporal models and the VAE need frames).
std::vector<int64_t> frame_block_dims(const shards::ShardReader& reader, const std::vector<std::string>& blocks);

/// Tracks' frames (named blocks side by side per frame, [frames, D]) read from shards through an LRU cache of
/// fixed-size pages. Thread-safe: a prefetch thread reads while the trainer's thread asks for statistics.
class FrameStore {
 public:
  FrameStore(std::vector<std::string> blocks, FrameStoreOptions options = {});
  ~FrameStore();
  FrameStore(const FrameStore&) = delete;
  FrameStore& operator=(const FrameStore&) = delete;

  /// Appends `tracks` of an open shard (each becomes the next track index of the store). Nothing is read but
  /// the layout: throws InputError naming the shard when a block is missing, its width differs from the first
  /// shard's, or a track has no frames.
  void add(const shards::ShardReader& reader, const std::vector<int64_t>& tracks);

  const std::vector<std::string>& blocks() const;
  int64_t dim() const;                 ///< D, 0 before the first add()
  int64_t size() const;                ///< tracks
  int64_t length(int64_t track) const; ///< frames of a track
  int64_t total_bytes() const;         ///< every track's frames as float32: what holding them in memory takes
  const FrameStoreOptions& options() const;

  /// Frames [start, start + count) of a track into dst ([count, D] row-major). A shard that disappeared,
  /// changed size or fails to read is an InputError naming the file, the dataset and the rows.
  void read(int64_t track, int64_t start, int64_t count, float* dst) const;
  FrameStoreStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace songlines::train
