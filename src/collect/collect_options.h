// Options of the metadata crawler (`songlines collect`): services, politeness, inputs and output.
// A JSON config maps onto CollectOptions key by key (unknown keys are errors); command-line flags override it.
#pragma once

#include <filesystem>
#include <string>

#include "core/config.h"

namespace songlines::collect {

/// How a country becomes coordinates.
enum class CoordinateRule { kCapital, kCentre };

/// Politeness and robustness settings for one web service.
struct ServiceOptions {
  std::string base_url;               ///< "https://ws.audioscrobbler.com/2.0/" or the MusicBrainz root
  double requests_per_second = 1.0;   ///< token-bucket refill rate (requests per second)
  int max_attempts = 6;               ///< tries per request, first included
  double backoff_initial_s = 1.0;     ///< delay before the 2nd try (seconds); doubles per try, with jitter
  double backoff_max_s = 60.0;        ///< cap of one backoff delay (seconds)
  double timeout_s = 30.0;            ///< whole-transfer timeout (seconds)
  double connect_timeout_s = 10.0;    ///< TCP/TLS connect timeout (seconds)
  bool operator==(const ServiceOptions&) const = default;
};

struct CollectOptions {
  std::filesystem::path tags_file;    ///< tag_to_country.json format (with optional "countries")
  std::filesystem::path genres_file;  ///< genre_mapping.json format; empty: every genre is "Other"
  std::filesystem::path output;       ///< catalog.csv
  std::filesystem::path cache_dir = ".songlines-cache";  ///< holds responses.sqlite
  int per_tag = 20;                   ///< top tracks requested per tag (pages of 50 beyond the first)
  int max_per_country = 50;           ///< cap on rows per resolved country
  CoordinateRule coordinates = CoordinateRule::kCapital;
  std::string user_agent = "songlines";  ///< product name/version is appended; MusicBrainz requires one
  std::string contact;                ///< e-mail or URL put in the User-Agent, as MusicBrainz asks
  ServiceOptions lastfm{"https://ws.audioscrobbler.com/2.0/", 2.0};
  ServiceOptions musicbrainz{"https://musicbrainz.org/ws/2/", 1.0};
  bool crawl_country_tags = true;     ///< also crawl the names/demonyms of the extended "countries" section
  bool operator==(const CollectOptions&) const = default;
};

/// Applies a JSON config (keys as the field names; "lastfm" / "musicbrainz" sections with base_url,
/// requests_per_second, max_attempts, backoff_initial_s, backoff_max_s, timeout_s, connect_timeout_s;
/// "coordinates": "capital" | "centre"). Throws ConfigError naming an unknown key or bad value.
void apply_config(const Json& config, CollectOptions& options);

/// Checks ranges (positive rates, MusicBrainz at most 1/s unless the URL is not musicbrainz.org, ...).
void validate(const CollectOptions& options);

/// The User-Agent header: "<user_agent>/<version> ( <contact> )".
std::string user_agent_header(const CollectOptions& options);

}  // namespace songlines::collect
