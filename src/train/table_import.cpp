#include "train/table_import.h"

#include <cmath>
#include <map>
#include <optional>

#include "core/csv.h"
#include "core/error.h"
#include "geo/gazetteer.h"
#include "shards/metadata_blocks.h"

namespace songlines::train {

namespace {

// where: "file:line"; column: 1-based, with its header name when the table has one. Non-finite values (nan,
// inf, or a number that overflows a double) are refused at this boundary so they never reach a model
// (docs/reliability.md).
double parse_number(const std::string& text, const std::string& where, size_t column, const std::string& name = "") {
  const std::string col = "column " + std::to_string(column) + (name.empty() ? "" : " (" + name + ")");
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(text, &used);
    while (used < text.size() && std::isspace(static_cast<unsigned char>(text[used]))) ++used;
    if (used != text.size()) throw std::invalid_argument(text);
  } catch (const std::out_of_range&) {
    v = HUGE_VAL;  // stod's overflow: as non-finite as "inf"
  } catch (const std::exception&) {
    throw InputError(where, col + ": not a number: \"" + text + "\"");
  }
  if (!std::isfinite(v))
    throw InputError(where, col + ": non-finite value \"" + text + "\" (NaN and infinity are refused; fix or drop the row)");
  return v;
}

bool is_missing(const std::string& s) { return s.empty() || s == "nan" || s == "NaN" || s == "NA"; }

}  // namespace

TableFormat parse_table_format(const std::string& name) {
  if (name == "gom") return TableFormat::kGom;
  if (name == "seed-csv") return TableFormat::kSeedCsv;
  throw UsageError("--format: expected gom or seed-csv, got \"" + name + "\"");
}

ImportedTable read_feature_table(const std::filesystem::path& file, TableFormat format) {
  ImportedTable out;
  out.attributes.sample_rate = 0;
  out.attributes.n_fft = 0;
  out.attributes.hop_length = 0;
  const auto& gazetteer = geo::Gazetteer::builtin();
  std::vector<std::vector<std::string>> records;
  std::vector<int64_t> lines;  // file line where each record starts (blank lines and quoted newlines counted)
  for (auto& r : read_csv_records(file)) {
    records.push_back(std::move(r.fields));
    lines.push_back(r.line);
  }
  const std::string fname = file.string();

  auto accept_coords = [&](double lat, double lon, int64_t row, const std::string& what) {
    if (std::isnan(lat) || std::isnan(lon)) {
      out.skipped.push_back("line " + std::to_string(row) + " (" + what + "): no coordinates");
      return false;
    }
    if (lat == 0.0 && lon == 0.0) {
      out.skipped.push_back("line " + std::to_string(row) + " (" + what + "): coordinates (0, 0) mean unknown");
      return false;
    }
    if (!geo::is_valid({lat, lon}))
      throw InputError(fname + ":" + std::to_string(row), "coordinates out of range: " + std::to_string(lat) + ", " +
                                                              std::to_string(lon));
    return true;
  };

  if (format == TableFormat::kGom) {
    out.attributes.source = "gom";
    size_t width = 0;
    for (size_t r = 0; r < records.size(); ++r) {
      const auto& f = records[r];
      std::string where = fname + ":" + std::to_string(lines[r]);
      if (width == 0) width = f.size();
      if (f.size() != width || width < 3)
        throw InputError(where, "expected " + std::to_string(width) + " comma-separated values, got " +
                                    std::to_string(f.size()));
      ++out.rows;
      double lat = is_missing(f[width - 2]) ? NAN : parse_number(f[width - 2], where, width - 1, "latitude");
      double lon = is_missing(f[width - 1]) ? NAN : parse_number(f[width - 1], where, width, "longitude");
      if (!accept_coords(lat, lon, lines[r], "gom:" + std::to_string(r))) continue;
      shards::TrackRecord t;
      t.id = "gom-" + std::to_string(r);
      t.path = "gom:" + std::to_string(r);
      t.latitude = static_cast<float>(lat);
      t.longitude = static_cast<float>(lon);
      t.country = gazetteer.nearest({lat, lon}).iso2;  // GOM places are capitals (see gom_locations_to_country)
      auto& s = t.summary["gom"];
      for (size_t k = 0; k + 2 < width; ++k) s.mean.push_back(parse_number(f[k], where, k + 1));
      out.tracks.push_back(std::move(t));
      out.artists.emplace_back();
    }
    out.attributes.feature_options = {{"table", "gom"}, {"features", width - 2}};
  } else {
    out.attributes.source = "seed-csv";
    if (records.empty()) throw InputError(fname, "empty file");
    std::map<std::string, size_t> col;
    for (size_t i = 0; i < records[0].size(); ++i) col[records[0][i]] = i;
    auto need = [&](const std::string& name) {
      auto it = col.find(name);
      if (it == col.end()) throw InputError(fname, "missing column \"" + name + "\"");
      return it->second;
    };
    size_t lat_c = need("Latitude"), lon_c = need("Longitude");
    std::vector<std::vector<size_t>> block_cols;
    for (const auto& b : kSeedCsvBlocks) {
      block_cols.emplace_back();
      for (int k = 1; k <= b.dim; ++k) block_cols.back().push_back(need(std::string(b.prefix) + std::to_string(k)));
    }
    auto optional_col = [&](const char* name) -> std::optional<size_t> {
      auto it = col.find(name);
      return it == col.end() ? std::nullopt : std::optional<size_t>(it->second);
    };
    auto id_c = optional_col("track_id"), artist_c = optional_col("artist_name"), country_c = optional_col("Country"),
         name_c = optional_col("track_name"), genre_c = optional_col("genre"),
         listeners_c = optional_col("listeners");
    for (size_t r = 1; r < records.size(); ++r) {
      const auto& f = records[r];
      std::string where = fname + ":" + std::to_string(lines[r]);
      if (f.size() != records[0].size())
        throw InputError(where, "expected " + std::to_string(records[0].size()) + " fields, got " + std::to_string(f.size()));
      ++out.rows;
      std::string id = id_c ? f[*id_c] : std::to_string(r);
      double lat = is_missing(f[lat_c]) ? NAN : parse_number(f[lat_c], where, lat_c + 1, "Latitude");
      double lon = is_missing(f[lon_c]) ? NAN : parse_number(f[lon_c], where, lon_c + 1, "Longitude");
      std::string what = "track " + id + (name_c ? " \"" + f[*name_c] + "\"" : std::string());
      if (!accept_coords(lat, lon, lines[r], what)) continue;
      shards::TrackRecord t;
      t.id = "seed-" + id;
      t.path = "seed-csv:" + std::to_string(r);
      t.latitude = static_cast<float>(lat);
      t.longitude = static_cast<float>(lon);
      const geo::Country* c = country_c ? gazetteer.find_by_name(f[*country_c]) : nullptr;
      t.country = c ? c->iso2 : gazetteer.nearest({lat, lon}).iso2;
      for (size_t b = 0; b < block_cols.size(); ++b) {
        auto& s = t.summary[kSeedCsvBlocks[b].feature];
        for (size_t c2 : block_cols[b]) s.mean.push_back(parse_number(f[c2], where, c2 + 1, records[0][c2]));
      }
      if (genre_c) t.summary[shards::kMetaGenre].mean = shards::genre_one_hot(f[*genre_c]);
      if (listeners_c) t.summary[shards::kMetaListeners].mean = shards::listeners_features(f[*listeners_c], where);
      out.tracks.push_back(std::move(t));
      out.artists.push_back(artist_c ? f[*artist_c] : std::string());
    }
    out.attributes.feature_options = {{"table", "seed-csv"}};
  }
  if (out.tracks.empty()) throw InputError(fname, "no rows with coordinates");
  return out;
}

std::filesystem::path write_table_shard(const ImportedTable& table, const std::filesystem::path& output_dir,
                                        const std::string& stem) {
  std::filesystem::create_directories(output_dir);
  auto path = output_dir / (stem + ".h5");
  shards::ShardWriter writer(path, table.attributes);
  for (const auto& t : table.tracks) writer.add(t);
  writer.close();
  return path;
}

}  // namespace songlines::train
