// `songlines extract`: audio files and folders -> HDF5 shards + features.csv (docs/extract.md).
//
// Flow: the engine is set up first (configuration and device errors: exit 2 before any file is read) -> walk the
// inputs (sorted, deduplicated by canonical path) -> a producer (extract_pipeline.h) turns files into records:
// with the reference engine, N worker threads each decode (audio::load_audio) and compute one track; with the
// device engine (--device host|cuda), N decode threads feed a batcher that packs tracks into ragged batches of the
// engine's frame budget, run by one engine thread -> the calling thread writes tracks in input order into shards
// of shard_size tracks (DIR/shard-00000.h5, ...) and journals each committed shard (extract_journal.h) ->
// DIR/features.csv is rebuilt from all shards' summaries.
// Memory: at most 2 x jobs finished tracks wait for the writer (producers block beyond that window), the device
// producer decodes at most two batches' worth of audio ahead, and the shard writer streams frames to disk, so
// memory does not grow with the collection.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "features/device.h"
#include "features/feature_options.h"

namespace songlines::extract {

/// Part K of N of the sorted work list (`--part K/N`; partition.h).
struct ExtractPart {
  int index = 1;  ///< K, 1..count
  int count = 1;  ///< N >= 1
  bool operator==(const ExtractPart&) const = default;
};

struct ExtractOptions {
  std::vector<std::filesystem::path> inputs;   ///< files and folders (folders are walked recursively)
  std::filesystem::path output_dir;            ///< shards, features.csv and the journal go here
  int jobs = 0;                                ///< worker threads; 0: std::thread::hardware_concurrency()
  bool resume = false;                         ///< continue an interrupted run in output_dir
  std::filesystem::path catalog;               ///< optional metadata CSV (catalog.h); empty: none
  features::Device device = features::Device::kAuto;
  /// Frames per device batch (--batch-frames; the device engine only); 0: the engine's default (8192 on the
  /// host, 131072 on CUDA). A track longer than this is processed in chunks.
  int64_t max_batch_frames = 0;
  /// Feature options; options.features lists what goes into the shards (empty: default_shard_feature_names()).
  features::FeatureOptions feature_options;
  int64_t shard_size = 256;                    ///< tracks per shard
  ProgressMode progress = ProgressMode::kAuto; ///< bar on a terminal
  bool write_csv = true;                       ///< write DIR/features.csv
  /// --part K/N: only the K-th contiguous range of the sorted list, into output_dir/part-K-of-N (partition.h).
  std::optional<ExtractPart> part;
};

struct FailedFile {
  std::string path;
  std::string reason;
};

struct ExtractResult {
  int64_t tracks_written = 0;    ///< this run
  int64_t tracks_resumed = 0;    ///< already in shards from an earlier run (--resume)
  int64_t frames_written = 0;    ///< this run
  double audio_seconds = 0;      ///< this run
  double wall_seconds = 0;
  std::vector<std::filesystem::path> shards;  ///< every shard in the output (old and new), sorted
  std::vector<FailedFile> failed;             ///< files skipped, with reasons
  /// Folder entries left out while walking (a dangling symbolic link, a loop of links, an unreadable
  /// subfolder), with reasons; listed as warnings, they do not change the exit status.
  std::vector<FailedFile> skipped;
  features::Device device = features::Device::kCpu;  ///< the engine that ran
  int64_t device_batches = 0;  ///< batches the device engine ran (0 with the reference engine)
  int jobs = 1;
  std::filesystem::path output_dir;  ///< where the shards are: the options' output_dir, or its part folder
};

/// Runs the whole job. Throws UsageError for bad options (or a non-empty output without --resume), Error when
/// no audio file is found; per-file problems land in ExtractResult::failed instead.
ExtractResult run_extract(const ExtractOptions& options);

/// Audio files under the inputs: folders walked recursively for audio::audio_extensions() (case-insensitive);
/// a folder whose name has an audio extension ("x.wav/") is taken as a file so that it is reported as bad;
/// a file named explicitly is taken whatever its extension. Missing inputs go to failed. Sorted, canonical paths.
/// Symbolic links are followed, but each real directory (device, inode) is walked once, so link cycles end;
/// entries that cannot be resolved (dangling links, loops of links) go to skipped (docs/reliability.md).
struct AudioFileList {
  std::vector<std::filesystem::path> files;
  std::vector<std::string> ids;  ///< per file: path relative to its input folder without extension (stem for files)
  std::vector<FailedFile> skipped;  ///< entries left out while walking, with reasons
};
AudioFileList find_audio_files(const std::vector<std::filesystem::path>& inputs, std::vector<FailedFile>& failed);

/// The seed pipeline's features.csv header (shared/data/seed/all_data.csv without Country, Capital, Latitude,
/// Longitude): track_id, track_name, artist_name, location, listeners, genre, MFCC1..20, Chroma1..12,
/// Spectral Contrast1..7, Tonnetz1..6.
std::vector<std::string> features_csv_header();

/// Rebuilds DIR/features.csv (atomically) from the shards' summary means; catalog metadata where given.
void write_features_csv(const std::filesystem::path& output_dir, const std::vector<std::filesystem::path>& shards,
                        const std::filesystem::path& catalog);

/// Exit status for a finished extract (core/error.h ExitStatus): 0 all good, 3 some files failed (every good
/// track is in the shards), 1 no track at all could be extracted.
int extract_exit_status(const ExtractResult& r);

}  // namespace songlines::extract
