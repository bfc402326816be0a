// Synthetic shards of frame arrays for the benchmarks that read frames from shards (bench crops, bench
// vae-crops): seeded normal values, random places, uncompressed, as `extract` writes them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "shards/shard.h"

namespace songlines::bench {

struct SyntheticShards {
  int64_t tracks = 400;                  ///< tracks in all
  int64_t frames = 7752;                 ///< frames per track (180 s at 22050 Hz, hop 512)
  int64_t tracks_per_shard = 100;
  std::map<std::string, int64_t> blocks;  ///< frame array name -> width
  float mean = 0.0f, stddev = 1.0f;       ///< of every value
  shards::ShardAttributes attributes;     ///< of every shard
};

/// Writes dir/shard-NNNNN.h5 (track ids t0, t1, ...; values drawn from one seeded generator, track by track,
/// blocks in name order); returns their paths.
std::vector<std::filesystem::path> write_synthetic_shards(const std::filesystem::path& dir, const SyntheticShards& s);

}  // namespace songlines::bench
