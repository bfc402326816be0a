#include "extract/catalog.h"

#include <cctype>

#include "core/error.h"
#include "core/csv.h"
#include "shards/metadata_blocks.h"

namespace songlines::extract {

namespace {

float parse_coordinate(const std::string& text, double limit, const std::string& file, size_t row,
                       const std::string& column) {
  if (text.empty()) return std::numeric_limits<float>::quiet_NaN();
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v) && std::fabs(v) <= limit) return static_cast<float>(v);
  } catch (const std::exception&) {
  }
  throw InputError(file, "row " + std::to_string(row + 2) + ": " + column + " \"" + text + "\" is not a number in [-" +
                             std::to_string(static_cast<int>(limit)) + ", " + std::to_string(static_cast<int>(limit)) + "]");
}

bool is_iso2(const std::string& s) {
  return s.size() == 2 && std::isalpha(static_cast<unsigned char>(s[0])) && std::isalpha(static_cast<unsigned char>(s[1]));
}

}  // namespace

Catalog Catalog::load(const std::filesystem::path& csv) {
  const std::string file = csv.string();
  CsvTable t = read_csv(file);
  int c_path = t.column_ignore_case("path");
  if (c_path < 0) c_path = t.column_ignore_case("file");
  int c_id = t.column_ignore_case("track_id");
  if (c_path < 0 && c_id < 0)
    throw InputError(file, "catalog needs a `path` (or `file`) column or a `track_id` column to find audio files");
  auto col = [&](const char* name) { return t.column_ignore_case(name); };
  const int c_name = col("track_name"), c_artist = col("artist_name"), c_loc = col("location"), c_listeners = col("listeners"),
            c_genre = col("genre"), c_country = col("country"), c_lat = col("latitude"), c_lon = col("longitude");
  const std::filesystem::path base = std::filesystem::absolute(csv).parent_path();

  Catalog cat;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    auto get = [&](int c) { return c >= 0 ? row[static_cast<size_t>(c)] : std::string(); };
    CatalogEntry e;
    e.track_id = get(c_id);
    e.track_name = get(c_name);
    e.artist_name = get(c_artist);
    e.location = get(c_loc);
    e.listeners = get(c_listeners);
    shards::listeners_features(e.listeners, file + ":" + std::to_string(r + 2));  // checked now, not per track
    e.genre = get(c_genre);
    std::string country = get(c_country);
    if (is_iso2(country)) {
      e.country = country;
      for (auto& ch : e.country) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    e.latitude = parse_coordinate(get(c_lat), 90.0, file, r, "latitude");
    e.longitude = parse_coordinate(get(c_lon), 180.0, file, r, "longitude");
    if (c_path >= 0) {
      std::filesystem::path p = get(c_path);
      if (p.empty()) throw InputError(file, "row " + std::to_string(r + 2) + ": empty " + t.header[c_path]);
      if (p.is_relative()) p = base / p;
      std::string key = std::filesystem::weakly_canonical(p).string();
      if (!cat.by_path_.emplace(key, e).second)
        throw InputError(file, "row " + std::to_string(r + 2) + ": second row for file " + key);
    } else {
      if (e.track_id.empty()) throw InputError(file, "row " + std::to_string(r + 2) + ": empty track_id");
      if (!cat.by_id_.emplace(e.track_id, e).second)
        throw InputError(file, "row " + std::to_string(r + 2) + ": duplicate track_id " + e.track_id);
    }
  }
  return cat;
}

std::optional<CatalogEntry> Catalog::find(const std::filesystem::path& audio_path) const {
  if (!by_path_.empty()) {
    auto it = by_path_.find(audio_path.string());
    if (it != by_path_.end()) return it->second;
  }
  if (!by_id_.empty()) {
    auto it = by_id_.find(audio_path.stem().string());
    if (it != by_id_.end()) return it->second;
  }
  return std::nullopt;
}

}  // namespace songlines::extract
