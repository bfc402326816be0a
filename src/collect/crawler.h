// The crawl: Last.fm tag.getTopTracks per tag, artist.getInfo per new artist, MusicBrainz for where each
// artist comes from, then one catalog row per distinct (track, artist) with country, coordinates and genre.
// Two worker threads, one per host, so Last.fm and MusicBrainz requests overlap; the catalog is assembled
// afterwards in crawl order, so it does not depend on thread timing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "collect/collect_options.h"
#include "collect/service_client.h"
#include "geo/gazetteer.h"

namespace songlines::collect {

/// Which source gave a row its country.
inline constexpr const char* kSourceMbCountry = "musicbrainz-country";        ///< artist "country"
inline constexpr const char* kSourceMbArea = "musicbrainz-area";              ///< artist "area" (walked up)
inline constexpr const char* kSourceMbBeginArea = "musicbrainz-begin-area";  ///< artist "begin-area"
inline constexpr const char* kSourceTag = "lastfm-tag";                      ///< the tag's country

struct CatalogRow {
  std::string track_id;  ///< 1, 2, ... in catalog order (as in the seed)
  std::string track_name;
  std::string artist_name;
  std::string location;  ///< country name ("Spain")
  std::string listeners;  ///< artist listeners from artist.getInfo, "" when unknown
  std::string genre;
  std::string country;  ///< ISO2
  double latitude = 0, longitude = 0;
  std::vector<std::string> tags;  ///< every crawled tag the track was found under, crawl order
  std::string artist_mbid;
  std::string location_source;
  bool operator==(const CatalogRow&) const = default;
};

struct CollectReport {
  std::vector<CatalogRow> rows;
  int64_t tracks_seen = 0;          ///< distinct (track, artist) found
  int64_t dropped_by_cap = 0;       ///< over max_per_country
  int64_t unlocated = 0;            ///< no country from MusicBrainz or the tag
  int64_t artists = 0;
  int64_t lastfm_requests = 0, musicbrainz_requests = 0, cache_hits = 0, retries = 0;
  std::vector<std::string> problems;  ///< skipped responses, each naming the (masked) URL
};

/// Runs the crawl and returns the rows; does not write the catalog. log gets progress problems (masked).
/// Throws NetworkError when a service fails for good (bad key, retries exhausted on a tag page), UsageError /
/// InputError for bad options or input files.
CollectReport run_collect(const CollectOptions& options, const std::string& api_key, const geo::Gazetteer& gazetteer,
                          const LogFn& log);

/// The catalog's columns: the seed's six first (track_id, track_name, artist_name, location, listeners, genre),
/// then country, latitude, longitude, tags (";"-joined), artist_mbid, location_source.
std::vector<std::string> catalog_columns();
/// Writes the CSV atomically (temporary name, then rename). RFC 4180 quoting.
void write_catalog(const std::filesystem::path& path, const std::vector<CatalogRow>& rows);

}  // namespace songlines::collect
