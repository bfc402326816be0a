// Training data for the location model: per-track summary vectors [N, D] (concatenated summary means, in the
// order of `features`) with coordinates and grouping keys; loaded from shards or straight from a feature table.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "geo/great_circle.h"
#include "train/table_import.h"

namespace songlines::train {

struct Dataset {
  int64_t dim = 0;                          ///< D
  std::vector<float> x;                     ///< [N, D] row-major
  std::vector<geo::LatLon> coords;          ///< [N] degrees
  std::vector<std::string> ids;             ///< [N]
  std::vector<std::string> countries;       ///< [N] ISO2 ("" unknown)
  std::vector<std::string> artists;         ///< [N] ("" unknown)
  std::vector<std::string> features;        ///< summary blocks, in column order
  int64_t size() const { return static_cast<int64_t>(coords.size()); }
  const float* row(int64_t i) const { return x.data() + i * dim; }
};

/// Summary means of the named blocks (all blocks, sorted by name, when `features` is empty) from shards.
/// Tracks without coordinates are left out. Throws InputError when a shard lacks a block.
Dataset load_summary_dataset(const std::vector<std::filesystem::path>& shards, const std::vector<std::string>& features);
/// The same from an imported table (no shard round trip; keeps artists for grouped folds).
Dataset dataset_from_table(const ImportedTable& table, const std::vector<std::string>& features);

/// Per-column standardisation, fitted on training rows only and saved with the model.
struct Standardizer {
  std::vector<double> mean;  ///< [D]
  std::vector<double> scale; ///< [D] standard deviation (1 where a column is constant)

  static Standardizer fit(const Dataset& data, const std::vector<int64_t>& rows);
  /// Standardised copy of the given rows: [rows, D].
  std::vector<float> apply(const Dataset& data, const std::vector<int64_t>& rows) const;
  /// Standardises a [n, D] block in place.
  void apply_inplace(float* x, int64_t n) const;
  Json to_json() const;
  static Standardizer from_json(const Json& j);
};

}  // namespace songlines::train
