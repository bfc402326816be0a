// Precomputed feature tables to summary-only shard records (`songlines import-table`):
//  - gom: the UCI "Geographical Original of Music" files (Zhou, Claire and King, ICDM 2014), comma-separated,
//    no header, 68 or 116 features then latitude, longitude. One summary block "gom" [N, 68 or 116].
//  - seed-csv: the seed pipeline's all_data.csv (metadata columns, Latitude, Longitude, MFCC1..20, Chroma1..12,
//    Spectral Contrast1..7, Tonnetz1..6). Blocks named like the audio features so a model trained here can
//    predict from extracted shards: mfcc_mean [N,20], chroma_stft_mean [N,12], spectral_contrast_mean [N,7],
//    tonnetz_mean [N,6] (shard summary names "mfcc", ... with the _mean suffix implied by the shard layout).
//    Where the table has genre / listeners columns, the metadata blocks meta_genre and meta_listeners too
//    (shards/metadata_blocks.h; a run uses them only when its data.features names them).
// Rows without coordinates, or at exactly (0, 0) (the seed's "unknown"), are reported and left out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "shards/shard.h"

namespace songlines::train {

enum class TableFormat { kGom, kSeedCsv };

/// "gom" or "seed-csv"; throws UsageError otherwise.
TableFormat parse_table_format(const std::string& name);

struct ImportedTable {
  std::vector<shards::TrackRecord> tracks;  ///< rows with coordinates, summary means only
  std::vector<std::string> artists;         ///< per track ("" when the table has none): grouping key
  std::vector<std::string> skipped;         ///< "row 17: no coordinates" for every row left out
  int64_t rows = 0;                         ///< data rows read
  shards::ShardAttributes attributes;       ///< source "gom" / "seed-csv", sample_rate 0
};

/// Parses a table. Throws InputError naming the file, row and value for malformed rows.
ImportedTable read_feature_table(const std::filesystem::path& file, TableFormat format);

/// Writes the table as one shard DIR/<file stem>.h5 (directory created) and returns its path.
std::filesystem::path write_table_shard(const ImportedTable& table, const std::filesystem::path& output_dir,
                                        const std::string& stem);

}  // namespace songlines::train
