#include "collect/collect_options.h"

#include "core/error.h"
#include "songlines/version.h"

namespace songlines::collect {
namespace {

void apply_service(ConfigReader r, ServiceOptions& s) {
  r.read("base_url", s.base_url);
  r.read("requests_per_second", s.requests_per_second);
  r.read("max_attempts", s.max_attempts);
  r.read("backoff_initial_s", s.backoff_initial_s);
  r.read("backoff_max_s", s.backoff_max_s);
  r.read("timeout_s", s.timeout_s);
  r.read("connect_timeout_s", s.connect_timeout_s);
  r.finish();
}

void validate_service(const std::string& name, const ServiceOptions& s) {
  auto bad = [&](const std::string& key, double v) {
    return ConfigError(name + "." + key + ": must be positive, got " + std::to_string(v));
  };
  if (s.base_url.empty()) throw ConfigError(name + ".base_url: empty");
  // Request paths are joined to the base with one '/', so "https://host/ws/2" and "https://host/ws/2/" are
  // the same root; a query or fragment in the base would end up in the middle of every request URL.
  const bool http = s.base_url.rfind("http://", 0) == 0 || s.base_url.rfind("https://", 0) == 0;
  const size_t host = s.base_url.find("://") + 3;
  if (!http || host >= s.base_url.size() || s.base_url[host] == '/' ||
      s.base_url.find_first_of("?# ") != std::string::npos)
    throw ConfigError(name + ".base_url: expected http(s)://host[:port][/path] without a query, got \"" +
                      s.base_url + "\"");
  if (!(s.requests_per_second > 0)) throw bad("requests_per_second", s.requests_per_second);
  if (s.max_attempts < 1) throw bad("max_attempts", s.max_attempts);
  if (!(s.backoff_initial_s >= 0)) throw bad("backoff_initial_s", s.backoff_initial_s);
  if (!(s.timeout_s > 0)) throw bad("timeout_s", s.timeout_s);
  if (!(s.connect_timeout_s > 0)) throw bad("connect_timeout_s", s.connect_timeout_s);
}

}  // namespace

void apply_config(const Json& config, CollectOptions& o) {
  if (!config.is_object()) throw ConfigError("collect config: expected an object, got " + json_type_name(config));
  ConfigReader r(config, "");
  std::string tags = o.tags_file.string(), genres = o.genres_file.string(), output = o.output.string(),
              cache = o.cache_dir.string();
  r.read("tags", tags);
  r.read("genres", genres);
  r.read("output", output);
  r.read("cache", cache);
  o.tags_file = tags;
  o.genres_file = genres;
  o.output = output;
  o.cache_dir = cache;
  r.read("per_tag", o.per_tag);
  r.read("max_per_country", o.max_per_country);
  r.read("user_agent", o.user_agent);
  r.read("contact", o.contact);
  r.read("crawl_country_tags", o.crawl_country_tags);
  std::string coords = o.coordinates == CoordinateRule::kCapital ? "capital" : "centre";
  r.read("coordinates", coords);
  if (coords == "capital") o.coordinates = CoordinateRule::kCapital;
  else if (coords == "centre" || coords == "center") o.coordinates = CoordinateRule::kCentre;
  else throw ConfigError("coordinates: expected \"capital\" or \"centre\", got \"" + coords + "\"");
  if (r.has("lastfm")) apply_service(r.child("lastfm"), o.lastfm);
  else r.accept("lastfm");
  if (r.has("musicbrainz")) apply_service(r.child("musicbrainz"), o.musicbrainz);
  else r.accept("musicbrainz");
  r.finish();
}

void validate(const CollectOptions& o) {
  if (o.tags_file.empty()) throw UsageError("collect: no tag file (--tags or \"tags\" in the config)");
  if (o.output.empty()) throw UsageError("collect: no output (--output or \"output\" in the config)");
  if (o.per_tag < 1) throw ConfigError("per_tag: must be at least 1, got " + std::to_string(o.per_tag));
  if (o.max_per_country < 1)
    throw ConfigError("max_per_country: must be at least 1, got " + std::to_string(o.max_per_country));
  validate_service("lastfm", o.lastfm);
  validate_service("musicbrainz", o.musicbrainz);
  // MusicBrainz's rule is one request per second per client; only a mirror may be asked faster.
  if (o.musicbrainz.base_url.find("musicbrainz.org") != std::string::npos && o.musicbrainz.requests_per_second > 1.0)
    throw ConfigError("musicbrainz.requests_per_second: musicbrainz.org allows at most 1 request per second, got " +
                      std::to_string(o.musicbrainz.requests_per_second));
  if (o.user_agent.empty()) throw ConfigError("user_agent: empty (MusicBrainz refuses anonymous clients)");
}

std::string user_agent_header(const CollectOptions& o) {
  std::string ua = o.user_agent + "/" + kVersion;
  ua += " ( " + (o.contact.empty() ? std::string("https://github.com/songlines") : o.contact) + " )";
  return ua;
}

}  // namespace songlines::collect
