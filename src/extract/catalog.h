// Track metadata for extract (--catalog CSV): names, artist, location, coordinates, keyed to audio files.
//
// How a catalog row finds its file (docs/extract.md):
//   1. a `path` or `file` column (case-insensitive): the audio file, relative to the catalog's folder unless
//      absolute; compared after resolving to a canonical absolute path;
//   2. otherwise `track_id` equals the file name without extension ("1234.mp3" <- track_id 1234).
// Recognised columns (case-insensitive, all optional except the key): track_id, track_name, artist_name,
// location, listeners, genre, country (ISO 3166-1 alpha-2; other spellings are kept only in location),
// latitude, longitude. Unknown columns are ignored (catalogs from `collect` carry more).
#pragma once

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>

namespace songlines::extract {

struct CatalogEntry {
  std::string track_id;  ///< empty: extract derives one from the path
  std::string track_name;
  std::string artist_name;
  std::string location;
  std::string listeners;
  std::string genre;
  std::string country;  ///< ISO2 or ""
  float latitude = std::numeric_limits<float>::quiet_NaN();
  float longitude = std::numeric_limits<float>::quiet_NaN();
};

class Catalog {
 public:
  Catalog() = default;
  /// Reads the CSV; InputError names the file and line of anything malformed (a bad coordinate, a duplicate key).
  static Catalog load(const std::filesystem::path& csv);

  /// The row for an audio file (canonical absolute path), or nullopt.
  std::optional<CatalogEntry> find(const std::filesystem::path& audio_path) const;
  size_t size() const { return by_path_.size() + by_id_.size(); }
  bool empty() const { return size() == 0; }

 private:
  std::map<std::string, CatalogEntry> by_path_;  // canonical path -> entry
  std::map<std::string, CatalogEntry> by_id_;    // track_id -> entry (when there is no path column)
};

}  // namespace songlines::extract
