// HDF5 shards (docs/shard-format.md): N tracks per file, frame-level arrays
// concatenated over tracks with /frames/offsets, per-track metadata under /tracks, time statistics under
// /summary. A shard is complete or absent: ShardWriter writes a temporary file and renames it on close().
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "features/feature_matrix.h"

namespace songlines::shards {

/// Bumped when the layout changes incompatibly; readers reject newer versions with a clear error.
inline constexpr int kFormatVersion = 1;

inline constexpr float kUnknownCoordinate = std::numeric_limits<float>::quiet_NaN();

/// Per-feature time statistics over a track's frames (ddof 0), float64.
struct SummaryStats {
  std::vector<double> mean;  ///< [dim]
  std::vector<double> std;   ///< [dim]; empty when the source had only means (seed CSV, GOM)
};

struct TrackRecord {
  std::string id;                  ///< unique within a collection (extract: derived from the path)
  std::string path;                ///< source file or table row ("gom:17")
  std::string country;             ///< ISO 3166-1 alpha-2 or ""
  float latitude = kUnknownCoordinate;   ///< degrees, NaN when unknown
  float longitude = kUnknownCoordinate;  ///< degrees, NaN when unknown
  float duration_s = 0;            ///< seconds of audio (0 for tables)
  /// Frame-level features by name ([frames, dim]); all tracks of a shard have the same set. Empty for tables.
  std::map<std::string, features::FeatureMatrix> frames;
  /// Summaries by feature name. When frames are given and a summary is absent, the writer computes it.
  std::map<std::string, SummaryStats> summary;
};

struct ShardAttributes {
  int sample_rate = 22050;       ///< Hz of the analysed audio (0 for tables)
  int n_fft = 2048;              ///< samples
  int hop_length = 512;          ///< samples
  Json feature_options = Json::object();  ///< features::FeatureOptions::to_json(), or table description
  std::string source = "audio";  ///< "audio", "gom", "seed-csv"
  std::string producer;          ///< "songlines <version> (<git revision>)"; filled by the writer when empty
};

/// How the writer lays frame arrays out on disk. The defaults were measured (docs/shard-format.md).
struct ShardWriterOptions {
  int64_t chunk_rows = 4096;        ///< frames per chunk of /frames/<feature> (capped so a chunk is <= chunk_bytes)
  int64_t chunk_bytes = 1 << 20;    ///< upper bound of one chunk's size in bytes (wide features get fewer rows)
  int compression_level = 0;        ///< gzip level 0..9 for /frames (with byte shuffle); 0: uncompressed
  bool operator==(const ShardWriterOptions&) const = default;
};

/// Computes mean and std (ddof 0, float64) of each column.
SummaryStats summarize(const features::FeatureMatrix& m);

class ShardWriter {
 public:
  /// Opens a temporary file beside path. Throws IoError.
  /// Memory: frames go straight to chunked, extendible datasets on add() (HDF5's chunk cache holds a few MiB);
  /// only per-track metadata and summaries ([N, dim] float64) stay in RAM until close().
  ShardWriter(std::filesystem::path path, ShardAttributes attributes, ShardWriterOptions options = {});
  ~ShardWriter();  ///< without close(): removes the temporary file (the shard stays absent)
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  /// Appends one track. Throws InputError/IoError when its feature set or dims differ from earlier tracks.
  void add(const TrackRecord& track);
  int64_t size() const;
  /// Writes everything, closes and renames to the final path.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How a reader reads frame arrays.
struct ShardReaderOptions {
  /// Bytes of HDF5's chunk cache per dataset; -1: HDF5's default (1 MiB). With the cache, a read of a few rows
  /// loads and keeps their whole chunk (up to 1 MiB); 0 reads uncompressed rows straight from the file, which
  /// is what random crops want (train::FrameStore; docs/scaling.md "Data larger than memory").
  int64_t chunk_cache_bytes = -1;
};

class ShardReader {
 public:
  /// Opens and validates layout and version; throws InputError naming the file and what is wrong.
  explicit ShardReader(const std::filesystem::path& path, const ShardReaderOptions& options = {});
  ~ShardReader();
  ShardReader(ShardReader&&) noexcept;
  ShardReader& operator=(ShardReader&&) noexcept;

  const std::filesystem::path& path() const;
  const ShardAttributes& attributes() const;
  int64_t size() const;  ///< N tracks
  int format_version() const;

  const std::vector<std::string>& ids() const;
  const std::vector<std::string>& paths() const;
  const std::vector<std::string>& countries() const;
  const std::vector<float>& latitudes() const;
  const std::vector<float>& longitudes() const;
  const std::vector<float>& durations() const;
  const std::vector<int64_t>& offsets() const;  ///< [N+1]; empty for summary-only shards

  std::vector<std::string> frame_feature_names() const;
  std::vector<std::string> summary_feature_names() const;
  bool has_frames(const std::string& feature) const;
  int64_t frame_dim(const std::string& feature) const;

  /// Reads below throw InputError naming the file, the dataset and the track when a value is NaN or infinite
  /// (docs/reliability.md: non-finite values are refused where they enter).
  /// Frames of one track ([frames, dim]).
  features::FeatureMatrix read_frames(const std::string& feature, int64_t track) const;
  /// Rows [row_begin, row_end) of a frame array (for crops without reading a whole track).
  features::FeatureMatrix read_frame_rows(const std::string& feature, int64_t row_begin, int64_t row_end) const;
  /// [N, dim] row-major summary means (or stds); empty vector when std is absent.
  std::vector<double> read_summary_mean(const std::string& feature, int64_t* dim = nullptr) const;
  std::vector<double> read_summary_std(const std::string& feature, int64_t* dim = nullptr) const;
  /// One whole track back as a record (round trip).
  TrackRecord read_track(int64_t track) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// All *.h5 shard files in a directory (sorted), or the file itself.
std::vector<std::filesystem::path> list_shards(const std::filesystem::path& file_or_dir);

/// What a glob pattern (glob(3): *, ?, [...], \ escapes; no hidden names) names for list_shards: the matching
/// folders and *.h5 files, sorted; other matches (a features.csv, a job script) are left out. Empty when none.
std::vector<std::filesystem::path> glob_shard_sources(const std::string& pattern);

}  // namespace songlines::shards
