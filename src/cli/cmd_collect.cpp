// songlines collect: Last.fm + MusicBrainz metadata crawl to catalog.csv (docs/collect.md).
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "collect/api_key.h"
#include "collect/collect_options.h"
#include "collect/crawler.h"
#include "core/config.h"
#include "core/error.h"
#include "geo/gazetteer.h"

namespace songlines::cli {
namespace {

cxxopts::Options collect_options() {
  cxxopts::Options o("songlines collect",
                     "Crawls Last.fm (tag.getTopTracks, artist.getInfo) and MusicBrainz (artist and area lookups) "
                     "into a catalog CSV. The API key comes from LASTFM_API_KEY or ./.env. Every response is "
                     "cached, so an interrupted crawl resumes where it stopped.");
  o.add_options("Input")("config", "JSON config (keys as in docs/collect.md); flags override it",
                         cxxopts::value<std::string>())(
      "tags", "tag_to_country.json (with optional \"countries\" section)", cxxopts::value<std::string>())(
      "genres", "genre_mapping.json", cxxopts::value<std::string>());
  o.add_options("Crawl")("per-tag", "top tracks per tag (default 20)", cxxopts::value<int>())(
      "max-per-country", "rows per resolved country (default 50)", cxxopts::value<int>())(
      "coordinates", "capital or centre of the country", cxxopts::value<std::string>())(
      "no-country-tags", "do not crawl the names/demonyms of the extended \"countries\" section");
  o.add_options("Output")("output", "catalog CSV, written atomically", cxxopts::value<std::string>())(
      "cache", "response cache directory (default .songlines-cache)", cxxopts::value<std::string>())(
      "resume",
      "continue the crawl whose answers are in --cache: ask again only what was skipped or never asked "
      "(the cache is always used; with --resume a missing cache is an error rather than a fresh crawl)");
  o.add_options("Network")("lastfm-url", "Last.fm API root (default https://ws.audioscrobbler.com/2.0/)",
                           cxxopts::value<std::string>())(
      "musicbrainz-url", "MusicBrainz API root (default https://musicbrainz.org/ws/2/)", cxxopts::value<std::string>())(
      "lastfm-rate", "Last.fm requests per second (default 2)", cxxopts::value<double>())(
      "musicbrainz-rate", "MusicBrainz requests per second (default 1, at most 1 for musicbrainz.org)",
      cxxopts::value<double>())("user-agent", "application name in the User-Agent", cxxopts::value<std::string>())(
      "contact", "e-mail or URL in the User-Agent (MusicBrainz asks for one)", cxxopts::value<std::string>());
  return o;
}

int collect_main(const cxxopts::ParseResult& args) {
  collect::CollectOptions o;
  if (args.count("config")) collect::apply_config(load_json_file(args["config"].as<std::string>()), o);
  auto str = [&](const char* k, auto setter) {
    if (args.count(k)) setter(args[k].as<std::string>());
  };
  str("tags", [&](const std::string& v) { o.tags_file = v; });
  str("genres", [&](const std::string& v) { o.genres_file = v; });
  str("output", [&](const std::string& v) { o.output = v; });
  str("cache", [&](const std::string& v) { o.cache_dir = v; });
  str("lastfm-url", [&](const std::string& v) { o.lastfm.base_url = v; });
  str("musicbrainz-url", [&](const std::string& v) { o.musicbrainz.base_url = v; });
  str("user-agent", [&](const std::string& v) { o.user_agent = v; });
  str("contact", [&](const std::string& v) { o.contact = v; });
  str("coordinates", [&](const std::string& v) {
    if (v == "capital") o.coordinates = collect::CoordinateRule::kCapital;
    else if (v == "centre" || v == "center") o.coordinates = collect::CoordinateRule::kCentre;
    else throw UsageError("--coordinates: expected capital or centre, got \"" + v + "\"");
  });
  if (args.count("per-tag")) o.per_tag = args["per-tag"].as<int>();
  if (args.count("max-per-country")) o.max_per_country = args["max-per-country"].as<int>();
  if (args.count("lastfm-rate")) o.lastfm.requests_per_second = args["lastfm-rate"].as<double>();
  if (args.count("musicbrainz-rate")) o.musicbrainz.requests_per_second = args["musicbrainz-rate"].as<double>();
  if (args.count("no-country-tags")) o.crawl_country_tags = false;
  collect::validate(o);
  if (args.count("resume") && !std::filesystem::exists(o.cache_dir / "responses.sqlite"))
    throw UsageError("collect --resume: no response cache at " + (o.cache_dir / "responses.sqlite").string() +
                     " (give the --cache of the crawl to resume, or leave out --resume to start one)");
  const std::string key = collect::load_lastfm_api_key();  // before any request: a clear error if missing

  auto report = collect::run_collect(o, key, geo::Gazetteer::builtin(),
                                     [](const std::string& m) { std::cerr << m << "\n"; });
  // Nothing collected because every answer was skipped: a failed job (exit 1), and a catalog already at
  // --output (from an earlier crawl) is left as it was instead of being replaced by an empty one.
  if (report.rows.empty() && !report.problems.empty())
    throw NetworkError("collect: nothing collected: all " + std::to_string(report.problems.size()) +
                       " answers that the catalog needed were skipped (listed above); " + o.output.string() +
                       " was not written. Rerun the same command (with --resume) once the services answer.");
  collect::write_catalog(o.output, report.rows);
  std::cout << "collect: " << report.rows.size() << " rows -> " << o.output.string() << " (" << report.tracks_seen
            << " tracks, " << report.artists << " artists, " << report.dropped_by_cap << " over the per-country cap, "
            << report.unlocated << " without a country; requests: Last.fm " << report.lastfm_requests
            << ", MusicBrainz " << report.musicbrainz_requests << ", cached " << report.cache_hits << ", retries "
            << report.retries << ")\n";
  if (!report.problems.empty()) {
    std::cerr << "collect: " << report.problems.size() << " responses skipped (listed above)\n";
    return static_cast<int>(ExitStatus::kPartial);
  }
  return static_cast<int>(ExitStatus::kOk);
}

SONGLINES_REGISTER_COMMAND(Command{"collect", "Last.fm + MusicBrainz metadata crawl to catalog.csv",
                                   collect_options, collect_main, {},
                                   {"songlines collect --output catalog.csv --contact you@example.org",
                                    "songlines collect --config collect.json --output catalog.csv --resume"}});

}  // namespace
}  // namespace songlines::cli
