#include "collect/crawler.h"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <algorithm>
#include <atomic>
#include <sstream>
#include <thread>

#include "collect/api_key.h"
#include "collect/tag_mapping.h"
#include "core/atomic_file.h"
#include "core/csv.h"
#include "core/error.h"
#include "core/progress.h"

namespace songlines::collect {
namespace {

using nlohmann::json;

constexpr int kLastfmPageSize = 50;  // tag.getTopTracks pages: the seed's size, and Last.fm's default
constexpr int kMaxAreaDepth = 6;     // city -> district -> region -> country is at most a few steps
constexpr int kMinSearchScore = 90;  // MusicBrainz search score (0-100) accepted for a name-only artist

/// A string field that Last.fm/MusicBrainz may send as a string or a number.
std::string text_of(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  return "";
}

/// Last.fm sends a one-element list as a bare object.
std::vector<json> as_list(const json& j) {
  if (j.is_array()) return std::vector<json>(j.begin(), j.end());
  if (j.is_object()) return {j};
  return {};
}

struct FoundTrack {
  std::string name, artist, artist_mbid;
  std::vector<std::string> tags;
};

struct ArtistJob {
  std::string key, name, mbid;
};

struct ArtistLocation {
  std::string mbid, iso2, source;
};

/// Thread-safe queue from the Last.fm worker to the MusicBrainz worker.
class JobQueue {
 public:
  void push(ArtistJob job) {
    {
      std::lock_guard lock(m_);
      q_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  void close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::optional<ArtistJob> pop() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return std::nullopt;
    ArtistJob j = std::move(q_.front());
    q_.pop_front();
    return j;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<ArtistJob> q_;
  bool closed_ = false;
};

class Crawl {
 public:
  Crawl(const CollectOptions& o, const std::string& key, const geo::Gazetteer& g, const LogFn& log)
      : o_(o),
        key_(key),
        gaz_(g),
        log_(log),
        cache_(o.cache_dir),
        lastfm_("lastfm", o.lastfm, user_agent_header(o), cache_, classify_lastfm, "api_key=" + key,
                [this](const std::string& m) { note(m); }),
        mb_("musicbrainz", o.musicbrainz, user_agent_header(o), cache_, classify_musicbrainz, "",
            [this](const std::string& m) { note(m); }) {}

  CollectReport run() {
    TagMapping tags = TagMapping::load(o_.tags_file, gaz_, o_.crawl_country_tags);
    for (const auto& w : tags.warnings()) note(w);
    GenreMapping genres = o_.genres_file.empty() ? GenreMapping() : GenreMapping::load(o_.genres_file);
    std::exception_ptr lastfm_error, mb_error;
    std::thread mb_thread([&] {
      try {
        while (auto job = queue_.pop()) {
          if (stop_) continue;  // drain without working after a fatal error
          ArtistLocation loc = locate(*job);
          std::lock_guard lock(m_);
          locations_[job->key] = loc;
        }
      } catch (...) {
        mb_error = std::current_exception();
        stop_ = true;
      }
    });
    try {
      crawl_lastfm(tags);
    } catch (...) {
      lastfm_error = std::current_exception();
      stop_ = true;
    }
    queue_.close();
    mb_thread.join();
    if (lastfm_error) std::rethrow_exception(lastfm_error);
    if (mb_error) std::rethrow_exception(mb_error);
    return assemble(tags, genres);
  }

 private:
  void say(const std::string& m) {
    std::string masked = mask_secret(m, key_);
    {
      std::lock_guard lock(m_);
      report_.problems.push_back(masked);
    }
    if (log_) log_(masked);
  }
  void note(const std::string& m) {  // retries and the like: logged, not counted as skipped data
    if (log_) log_(mask_secret(m, key_));
  }

  /// Parses a cached/fetched body; reports and returns nullopt when it is not the expected JSON.
  std::optional<json> parse(const Response& r, ServiceClient& c, const std::string& rel, const char* want) {
    if (r.verdict != Verdict::kOk) {
      say(c.display_url(rel) + ": HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) + "; skipped");
      return std::nullopt;
    }
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || (want && !j.contains(want))) {
      say(c.display_url(rel) + ": malformed or unexpected JSON" + (want ? std::string(" (no \"") + want + "\")" : "") +
          "; skipped");
      return std::nullopt;
    }
    return j;
  }

  /// GET that turns a failure after retries into a reported skip (fatal errors still propagate).
  std::optional<json> fetch(ServiceClient& c, const std::string& rel, const char* want) {
    try {
      return parse(c.get(rel), c, rel, want);
    } catch (const FatalServiceError&) {
      throw;
    } catch (const NetworkError& e) {
      say(std::string(e.what()) + "; skipped");
      return std::nullopt;
    }
  }

  void crawl_lastfm(const TagMapping& tags) {
    ProgressBar bar("tags", static_cast<int64_t>(tags.tags().size()));
    const int pages = (o_.per_tag + kLastfmPageSize - 1) / kLastfmPageSize;
    const int limit = std::min(o_.per_tag, kLastfmPageSize);
    for (const CrawlTag& t : tags.tags()) {
      if (stop_) break;
      int taken = 0;
      for (int page = 1; page <= pages && taken < o_.per_tag; ++page) {
        std::string rel = "?method=tag.gettoptracks&tag=" + ServiceClient::escape(t.tag) + "&limit=" +
                          std::to_string(limit) + "&page=" + std::to_string(page) + "&format=json";
        auto j = fetch(lastfm_, rel, "tracks");
        if (!j) break;
        const json& tracks = (*j)["tracks"];
        auto list = as_list(tracks.is_object() && tracks.contains("track") ? tracks["track"] : json());
        for (const json& tr : list) {
          if (taken >= o_.per_tag) break;
          std::string name = text_of(tr, "name");
          const json& a = tr.is_object() && tr.contains("artist") ? tr["artist"] : json();
          std::string artist = a.is_string() ? a.get<std::string>() : text_of(a, "name");
          if (name.empty() || artist.empty()) {
            say(lastfm_.display_url(rel) + ": a track without name or artist; skipped");
            continue;
          }
          ++taken;
          add_track(t.tag, name, artist, text_of(a, "mbid"));
        }
        int total_pages = tracks.is_object() && tracks.contains("@attr")
                              ? std::atoi(text_of(tracks["@attr"], "totalPages").c_str())
                              : 0;
        if (static_cast<int>(list.size()) < limit || (total_pages > 0 && page >= total_pages)) break;
      }
      bar.advance(1, std::to_string(track_order_.size()) + " tracks, " + std::to_string(artist_keys_.size()) +
                         " artists");
    }
    bar.finish();
  }

  void add_track(const std::string& tag, const std::string& name, const std::string& artist,
                 const std::string& artist_mbid) {
    std::string key = lower(artist) + '\t' + lower(name);
    auto it = tracks_.find(key);
    if (it == tracks_.end()) {
      tracks_[key] = FoundTrack{name, artist, artist_mbid, {tag}};
      track_order_.push_back(key);
    } else if (std::find(it->second.tags.begin(), it->second.tags.end(), tag) == it->second.tags.end()) {
      it->second.tags.push_back(tag);
    }
    std::string akey = lower(artist);
    if (artist_keys_.count(akey)) return;
    artist_keys_.insert(akey);
    // artist.getInfo: listeners and the MusicBrainz id (the track's artist mbid is often empty).
    std::string rel = "?method=artist.getinfo&artist=" + ServiceClient::escape(artist) + "&autocorrect=0&format=json";
    std::string mbid = artist_mbid, listeners;
    if (auto j = fetch(lastfm_, rel, "artist")) {
      const json& a = (*j)["artist"];
      if (!text_of(a, "mbid").empty()) mbid = text_of(a, "mbid");
      if (a.is_object() && a.contains("stats")) listeners = text_of(a["stats"], "listeners");
    }
    {
      std::lock_guard lock(m_);
      listeners_[akey] = listeners;
    }
    queue_.push(ArtistJob{akey, artist, mbid});
  }

  /// ISO2 of an area object: its own ISO 3166-1 code, the country part of an ISO 3166-2 code, or (walking
  /// up "part of" relations with area lookups) its parent's.
  std::string area_country(const json& area, int depth) {
    if (!area.is_object()) return "";
    for (const char* field : {"iso-3166-1-codes", "iso-3166-2-codes"})
      if (area.contains(field) && area[field].is_array())
        for (const json& c : area[field])
          if (c.is_string() && c.get<std::string>().size() >= 2) {
            std::string iso2 = c.get<std::string>().substr(0, 2);
            if (gaz_.find_by_iso2(iso2)) return gaz_.find_by_iso2(iso2)->iso2;
          }
    std::string id = text_of(area, "id");
    if (id.empty() || depth >= kMaxAreaDepth) return "";
    if (auto memo = area_memo_.find(id); memo != area_memo_.end()) return memo->second;
    std::string result;
    if (auto j = fetch(mb_, "area/" + ServiceClient::escape(id) + "?inc=area-rels&fmt=json", "id")) {
      if (j->contains("relations") && (*j)["relations"].is_array())
        for (const json& rel : (*j)["relations"]) {
          // "part of", direction "backward": the related area contains this one.
          if (text_of(rel, "type") == "part of" && text_of(rel, "direction") == "backward" && rel.contains("area")) {
            result = area_country(rel["area"], depth + 1);
            if (!result.empty()) break;
          }
        }
    }
    area_memo_[id] = result;
    return result;
  }

  ArtistLocation locate(const ArtistJob& job) {
    ArtistLocation loc;
    std::optional<json> artist;
    if (!job.mbid.empty()) {
      artist = fetch(mb_, "artist/" + ServiceClient::escape(job.mbid) + "?fmt=json", "id");
    } else {
      std::string q = "artist:\"" + job.name + "\"";
      if (auto j = fetch(mb_, "artist/?query=" + ServiceClient::escape(q) + "&limit=1&fmt=json", "artists")) {
        const json& list = (*j)["artists"];
        if (list.is_array() && !list.empty() && list[0].is_object() &&
            std::atoi(text_of(list[0], "score").c_str()) >= kMinSearchScore)
          artist = list[0];
      }
    }
    if (!artist) return loc;
    loc.mbid = text_of(*artist, "id");
    std::string c = text_of(*artist, "country");
    if (c.size() == 2 && gaz_.find_by_iso2(c)) {
      loc.iso2 = gaz_.find_by_iso2(c)->iso2;
      loc.source = kSourceMbCountry;
      return loc;
    }
    for (auto [field, source] : {std::pair{"area", kSourceMbArea}, std::pair{"begin-area", kSourceMbBeginArea}}) {
      if (!artist->contains(field)) continue;
      std::string iso2 = area_country((*artist)[field], 0);
      if (!iso2.empty()) {
        loc.iso2 = iso2;
        loc.source = source;
        return loc;
      }
    }
    return loc;
  }

  CollectReport assemble(const TagMapping& tags, const GenreMapping& genres) {
    std::map<std::string, std::string> tag_country;
    for (const auto& t : tags.tags()) tag_country[t.tag] = t.country;
    std::map<std::string, int> per_country;
    CollectReport rep = std::move(report_);
    rep.tracks_seen = static_cast<int64_t>(track_order_.size());
    rep.artists = static_cast<int64_t>(artist_keys_.size());
    for (const std::string& key : track_order_) {
      const FoundTrack& t = tracks_[key];
      std::string akey = lower(t.artist);
      ArtistLocation loc = locations_[akey];
      if (loc.iso2.empty()) {
        for (const auto& tag : t.tags)
          if (!tag_country[tag].empty()) {
            loc.iso2 = tag_country[tag];
            loc.source = kSourceTag;
            break;
          }
      }
      if (loc.iso2.empty()) {
        ++rep.unlocated;
        continue;
      }
      if (per_country[loc.iso2] >= o_.max_per_country) {
        ++rep.dropped_by_cap;
        continue;
      }
      ++per_country[loc.iso2];
      const geo::Country* c = gaz_.find_by_iso2(loc.iso2);
      geo::LatLon p = o_.coordinates == CoordinateRule::kCapital ? c->capital_coords : c->centre;
      CatalogRow row;
      row.track_id = std::to_string(rep.rows.size() + 1);
      row.track_name = t.name;
      row.artist_name = t.artist;
      row.location = c->name;
      row.listeners = listeners_[akey];
      row.genre = genres.genre_for(t.tags);
      row.country = c->iso2;
      row.latitude = p.lat;
      row.longitude = p.lon;
      row.tags = t.tags;
      row.artist_mbid = loc.mbid.empty() ? t.artist_mbid : loc.mbid;
      row.location_source = loc.source;
      rep.rows.push_back(std::move(row));
    }
    rep.lastfm_requests = lastfm_.requests();
    rep.musicbrainz_requests = mb_.requests();
    rep.cache_hits = lastfm_.cache_hits() + mb_.cache_hits();
    rep.retries = lastfm_.retries() + mb_.retries();
    return rep;
  }

  const CollectOptions& o_;
  const std::string& key_;
  const geo::Gazetteer& gaz_;
  const LogFn& log_;
  ResponseCache cache_;
  ServiceClient lastfm_, mb_;
  JobQueue queue_;
  std::atomic<bool> stop_{false};
  std::mutex m_;
  CollectReport report_;
  // Last.fm worker only:
  std::map<std::string, FoundTrack> tracks_;
  std::vector<std::string> track_order_;
  std::set<std::string> artist_keys_;
  // shared (m_): artist key -> listeners / location
  std::map<std::string, std::string> listeners_;
  std::map<std::string, ArtistLocation> locations_;
  // MusicBrainz worker only:
  std::map<std::string, std::string> area_memo_;
};

std::string coordinate(double v) {
  std::ostringstream os;
  os.precision(8);
  os << v;
  return os.str();
}

}  // namespace

CollectReport run_collect(const CollectOptions& options, const std::string& api_key, const geo::Gazetteer& gazetteer,
                          const LogFn& log) {
  validate(options);
  if (api_key.empty()) throw UsageError("collect: empty Last.fm API key");
  Crawl crawl(options, api_key, gazetteer, log);
  return crawl.run();
}

std::vector<std::string> catalog_columns() {
  return {"track_id", "track_name", "artist_name", "location", "listeners",   "genre",
          "country",  "latitude",   "longitude",   "tags",     "artist_mbid", "location_source"};
}

void write_catalog(const std::filesystem::path& path, const std::vector<CatalogRow>& rows) {
  std::string out;
  auto cols = catalog_columns();
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + cols[i];
  out += "\n";
  for (const auto& r : rows) {
    std::string tags;
    for (size_t i = 0; i < r.tags.size(); ++i) tags += (i ? ";" : "") + r.tags[i];
    const std::string fields[] = {r.track_id, r.track_name, r.artist_name, r.location,
                                  r.listeners, r.genre, r.country, coordinate(r.latitude),
                                  coordinate(r.longitude), tags, r.artist_mbid, r.location_source};
    bool first = true;
    for (const auto& f : fields) {
      out += (first ? "" : ",") + csv_field(f);
      first = false;
    }
    out += "\n";
  }
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  write_file_atomic(path, out);
}

}  // namespace songlines::collect
