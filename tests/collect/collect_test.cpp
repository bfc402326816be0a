// collect against a fake Last.fm + MusicBrainz on 127.0.0.1: the fixture world's exact catalog, the cap,
// retries through injected faults (cut and non-JSON 200 answers included), base URLs spelled with or without
// a trailing slash, the MusicBrainz rate, kill -9 and resume, and the API key kept secret.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "collect/api_key.h"
#include "collect/crawler.h"
#include "collect/response_cache.h"
#include "collect/tag_mapping.h"
#include "core/error.h"
#include "fake_api_server.h"
#include "geo/gazetteer.h"
#include "support/file_bytes.h"
#include "support/test_support.h"

extern char** environ;

namespace songlines::collect {
namespace {

using songlines::testing::Fault;
using songlines::testing::FakeApiServer;
using songlines::testing::FakeWorld;
using songlines::testing::read_bytes;
using songlines::testing::TempDir;

const std::string kKey = "0123456789abcdefSECRETKEYfedcba98";

FakeWorld fixture_world() {
  FakeWorld w;
  w.areas["a-lyon"] = {"a-lyon", "Lyon", "City", {}, {"FR-ARA"}, ""};
  w.areas["a-br"] = {"a-br", "Brazil", "Country", {"BR"}, {}, ""};
  w.areas["a-rj"] = {"a-rj", "Rio de Janeiro", "Subdivision", {}, {}, "a-br"};
  w.areas["a-rio"] = {"a-rio", "Rio de Janeiro", "City", {}, {}, "a-rj"};
  w.areas["a-sn"] = {"a-sn", "Senegal", "Country", {"SN"}, {}, ""};
  w.areas["a-dakar"] = {"a-dakar", "Dakar", "City", {}, {}, "a-sn"};
  // name, mbid, listeners, lastfm_knows, lastfm_has_mbid, musicbrainz_knows, country, area, begin_area
  w.artists = {{"Rosa", "m-rosa", 1000, true, true, true, "ES", "", ""},
               {"Jacques", "m-jacques", 2000, true, true, true, "", "a-lyon", ""},
               {"João", "m-joao", 3000, true, true, true, "", "a-rio", ""},
               {"Nomad", "m-nomad", 4000, true, false, true, "", "", "a-dakar"},
               {"Ghost", "m-ghost", 0, false, false, false, "", "", ""},
               {"Wanderer", "m-wand", 5, true, true, false, "", "", ""}};
  w.tags["flamenco"] = {{"Malamente", "Rosa"}, {"Pienso", "Rosa"}, {"Bulerías", "Ghost"}, {"Cante", "Rosa"}};
  w.tags["chanson"] = {{"Ne me quitte pas", "Jacques"}, {"La Vie, \"en\" rose", "Jacques"}};
  w.tags["samba"] = {{"Aquarela", "João"}};
  w.tags["world"] = {{"Malamente", "Rosa"}, {"Desert", "Nomad"}, {"Lost", "Wanderer"}};
  return w;
}

void write_text(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }

struct Fixture {
  TempDir dir;
  CollectOptions options;
  explicit Fixture(const FakeApiServer& server) {
    write_text(dir / "tags.json", R"({"with_country": {"flamenco": "Spain", "chanson": "France", "samba": "brazilian"},
      "without_country": ["world"], "countries": {"brazilian": "Brazil", "french": "France"}})");
    write_text(dir / "genres.json", R"({"genre_mapping": {"Traditional": ["flamenco", "world", "folk"],
      "Pop": ["pop", "chanson"], "Latin": ["samba", "flamenco"]}})");
    options.tags_file = dir / "tags.json";
    options.genres_file = dir / "genres.json";
    options.output = dir / "catalog.csv";
    options.cache_dir = dir / "cache";
    options.contact = "tests@example.org";
    options.lastfm.base_url = server.lastfm_url();
    options.musicbrainz.base_url = server.musicbrainz_url();
    // Half the server's MusicBrainz limit (20/s), so that scheduling jitter on a loaded machine cannot push
    // two requests closer than the server tolerates; the real 1/s spacing has its own test.
    for (ServiceOptions* s : {&options.lastfm, &options.musicbrainz}) {
      s->requests_per_second = 10;
      s->backoff_initial_s = 0.02;
      s->backoff_max_s = 0.2;
      s->timeout_s = 0.5;
      s->connect_timeout_s = 0.5;
    }
  }
};

CatalogRow row(const std::string& id, const std::string& track, const std::string& artist, const std::string& iso2,
               const std::string& listeners, const std::string& genre, std::vector<std::string> tags,
               const std::string& mbid, const std::string& source) {
  const auto* c = geo::Gazetteer::builtin().find_by_iso2(iso2);
  return CatalogRow{id, track, artist, c->name, listeners, genre, iso2, c->capital_coords.lat, c->capital_coords.lon,
                    std::move(tags), mbid, source};
}

std::vector<CatalogRow> expected_catalog() {
  return {row("1", "Malamente", "Rosa", "ES", "1000", "Traditional", {"flamenco", "world"}, "m-rosa", kSourceMbCountry),
          row("2", "Pienso", "Rosa", "ES", "1000", "Traditional", {"flamenco"}, "m-rosa", kSourceMbCountry),
          row("3", "Bulerías", "Ghost", "ES", "", "Traditional", {"flamenco"}, "", kSourceTag),
          row("4", "Cante", "Rosa", "ES", "1000", "Traditional", {"flamenco"}, "m-rosa", kSourceMbCountry),
          row("5", "Ne me quitte pas", "Jacques", "FR", "2000", "Pop", {"chanson"}, "m-jacques", kSourceMbArea),
          row("6", "La Vie, \"en\" rose", "Jacques", "FR", "2000", "Pop", {"chanson"}, "m-jacques", kSourceMbArea),
          row("7", "Aquarela", "João", "BR", "3000", "Latin", {"samba"}, "m-joao", kSourceMbArea),
          row("8", "Desert", "Nomad", "SN", "4000", "Traditional", {"world"}, "m-nomad", kSourceMbBeginArea)};
}

void expect_rows(const std::vector<CatalogRow>& got, const std::vector<CatalogRow>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i] == want[i]) << "row " << i + 1 << ": " << got[i].track_name;
}

std::vector<std::string> logged;
LogFn capture() {
  logged.clear();
  return [](const std::string& m) { logged.push_back(m); };
}

TEST(Collect, FixtureWorldCatalogIsExactAndRerunCostsNoRequest) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  expect_rows(report.rows, expected_catalog());
  EXPECT_EQ(report.unlocated, 1);  // Wanderer: MusicBrainz 404 and a tag without country
  // Reported, not retried: Last.fm error 6 for Ghost, MusicBrainz 404 for Wanderer.
  ASSERT_EQ(report.problems.size(), 2u);
  // The two workers report in either order.
  std::string both = report.problems[0] + "\n" + report.problems[1];
  EXPECT_NE(both.find("method=artist.getinfo&artist=Ghost"), std::string::npos) << both;
  EXPECT_NE(both.find("artist/m-wand?fmt=json: HTTP 404"), std::string::npos) << both;
  EXPECT_EQ(server.mb_rate_violations(), 0);
  for (const auto& ua : server.user_agents()) EXPECT_NE(ua.find("songlines/"), std::string::npos) << ua;
  EXPECT_NE(server.user_agents()[0].find("tests@example.org"), std::string::npos);
  for (const auto& [url, n] : server.counts()) EXPECT_EQ(n, 1) << url << " requested twice";

  write_catalog(f.options.output, report.rows);
  std::string csv = read_bytes(f.options.output);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "track_id,track_name,artist_name,location,listeners,genre,country,latitude,longitude,tags,artist_mbid,"
            "location_source");
  EXPECT_NE(csv.find("6,\"La Vie, \"\"en\"\" rose\",Jacques,France,2000,Pop,FR,"), std::string::npos) << csv;

  const int64_t before = server.total_requests();
  auto again = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  EXPECT_EQ(server.total_requests(), before) << "a rerun must be served from the cache";
  EXPECT_EQ(again.lastfm_requests + again.musicbrainz_requests, 0);
  expect_rows(again.rows, expected_catalog());
}

TEST(Collect, PerCountryCapHoldsOnResolvedCountry) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  f.options.max_per_country = 2;
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  std::map<std::string, int> per;
  for (const auto& r : report.rows) ++per[r.country];
  for (const auto& [c, n] : per) EXPECT_LE(n, 2) << c;
  EXPECT_EQ(per["ES"], 2);
  EXPECT_EQ(report.dropped_by_cap, 2);  // Bulerías and Cante
  ASSERT_EQ(report.rows.size(), 6u);
  EXPECT_EQ(report.rows[2].track_name, "Ne me quitte pas");
  EXPECT_EQ(report.rows[2].track_id, "3");
}

TEST(Collect, TransientFaultsAreRetriedAndChangeNothing) {
  FakeApiServer server(fixture_world(), kKey, 20);
  server.set_stall_seconds(1.5);
  server.inject("tag=flamenco", Fault::kStall);
  server.inject("tag=chanson", Fault::kReset);
  server.inject("tag=samba", Fault::kTruncate);
  server.inject("tag=world", Fault::kServerError);
  server.inject("artist=Rosa", Fault::kLastfmRateLimit);
  server.inject("artist=Jacques", Fault::kLastfmOffline, 2);
  server.inject("artist/m-rosa", Fault::kMb503);
  server.inject("area/a-rio", Fault::kReset);
  server.inject("query=", Fault::kServerError);
  Fixture f(server);
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  expect_rows(report.rows, expected_catalog());
  EXPECT_EQ(report.problems.size(), 2u);  // only the permanent error 6 and 404
  EXPECT_EQ(report.retries, 10);
  auto counts = server.counts();
  EXPECT_EQ(counts["/2.0/?method=artist.getinfo&artist=Jacques&autocorrect=0&format=json"], 3);
  EXPECT_EQ(server.mb_rate_violations(), 0);
}

/// The cache key of a URL as the fake server counts it ("/2.0/?method=..." or "/ws/2/artist/...").
std::string cache_key_of(const std::string& counted) {
  const std::string mb = "/ws/2/", lastfm = "/2.0/";
  if (counted.rfind(mb, 0) == 0) return "musicbrainz " + counted.substr(mb.size());
  return "lastfm " + counted.substr(lastfm.size());
}

bool contains_any(const std::string& url, const std::vector<std::pair<std::string, Fault>>& faults) {
  for (const auto& [needle, fault] : faults)
    if (url.find(needle) != std::string::npos) return true;
  return false;
}

// Each kind of cut or non-JSON 200 once, on Last.fm and on MusicBrainz: retried like a 5xx, the crawl is whole,
// and the cache holds only the good answers.
TEST(Collect, CutOrNonJsonAnswersAreRetriedAndNeverCached) {
  FakeApiServer server(fixture_world(), kKey, 20);
  const std::vector<std::pair<std::string, Fault>> faults = {
      {"tag=flamenco", Fault::kTruncate},  {"tag=chanson", Fault::kCutNoLength}, {"artist=Rosa", Fault::kHtml200},
      {"artist=Jacques", Fault::kMalformed}, {"artist/m-rosa", Fault::kTruncate}, {"area/a-rio", Fault::kCutNoLength},
      {"%22Nomad%22", Fault::kHtml200},     {"area/a-rj", Fault::kMalformed}};
  for (const auto& [needle, fault] : faults) server.inject(needle, fault);
  Fixture f(server);
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  expect_rows(report.rows, expected_catalog());
  EXPECT_EQ(report.problems.size(), 2u) << "only the permanent error 6 and 404";
  EXPECT_EQ(report.retries, static_cast<int64_t>(faults.size()));
  int faulted = 0;
  for (const auto& [url, n] : server.counts()) {
    const bool hit = contains_any(url, faults);
    faulted += hit;
    EXPECT_EQ(n, hit ? 2 : 1) << url;
  }
  EXPECT_EQ(faulted, static_cast<int>(faults.size()));
  for (const auto& line : logged) EXPECT_EQ(line.find(kKey), std::string::npos) << line;
  {
    ResponseCache cache(f.options.cache_dir);
    for (const auto& [url, n] : server.counts()) {
      if (!contains_any(url, faults)) continue;
      auto stored = cache.get(cache_key_of(url));
      ASSERT_TRUE(stored.has_value()) << url;
      EXPECT_EQ(stored->status, 200) << url;
      EXPECT_TRUE(nlohmann::json::accept(stored->body)) << url << ": " << stored->body;
    }
  }
  const int64_t before = server.total_requests();
  auto again = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  EXPECT_EQ(server.total_requests(), before) << "a rerun must be served from the cache";
  expect_rows(again.rows, expected_catalog());
}

TEST(Collect, PersistentMalformedJsonIsSkippedWithTheUrlAndAskedAgainByTheNextRun) {
  FakeApiServer server(fixture_world(), kKey, 20);
  const std::string jacques = "/2.0/?method=artist.getinfo&artist=Jacques&autocorrect=0&format=json";
  server.inject_until_cleared("artist=Jacques", Fault::kMalformed);
  Fixture f(server);
  f.options.lastfm.max_attempts = 3;
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  ASSERT_EQ(report.rows.size(), 8u);
  EXPECT_EQ(report.rows[4].listeners, "");  // getInfo skipped; the track's mbid still locates the artist
  EXPECT_EQ(report.rows[4].country, "FR");
  EXPECT_EQ(server.counts()[jacques], 3);
  int named = 0;
  for (const auto& p : report.problems)
    named += p.find("method=artist.getinfo&artist=Jacques") != std::string::npos &&
             p.find("not JSON") != std::string::npos && p.find("skipped") != std::string::npos;
  EXPECT_EQ(named, 1);
  EXPECT_EQ(report.problems.size(), 3u);

  server.clear_faults();
  const int64_t before = server.total_requests();
  auto again = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  EXPECT_EQ(server.total_requests(), before + 1) << "only the skipped request is asked again";
  EXPECT_EQ(server.counts()[jacques], 4);
  expect_rows(again.rows, expected_catalog());
}

TEST(Collect, NonJsonAnswerLeftInTheCacheByAnOlderVersionIsFetchedAgain) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  const std::string jacques = "/2.0/?method=artist.getinfo&artist=Jacques&autocorrect=0&format=json";
  {
    ResponseCache cache(f.options.cache_dir);
    cache.put(cache_key_of(jacques), CachedResponse{200, "{\"artist\": {\"name\": \"Jacq"});
  }
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  expect_rows(report.rows, expected_catalog());
  EXPECT_EQ(report.problems.size(), 2u);
  EXPECT_EQ(server.counts()[jacques], 1);
  ResponseCache cache(f.options.cache_dir);
  EXPECT_TRUE(nlohmann::json::accept(cache.get(cache_key_of(jacques))->body));
}

TEST(Collect, ClassifiersCallA200WithoutJsonTransient) {
  for (const Classifier& classify : {Classifier(classify_lastfm), Classifier(classify_musicbrainz)}) {
    EXPECT_EQ(classify(200, R"({"artist": {"name": "x"}})"), Verdict::kOk);
    EXPECT_EQ(classify(200, R"({"artist": {"name": "x")"), Verdict::kTransient);  // cut short
    EXPECT_EQ(classify(200, "<html><body>502 Bad Gateway</body></html>"), Verdict::kTransient);
    EXPECT_EQ(classify(200, ""), Verdict::kTransient);
    EXPECT_EQ(classify(404, "<html>Not Found</html>"), Verdict::kPermanent);
    EXPECT_EQ(classify(502, "<html>Bad Gateway</html>"), Verdict::kTransient);
  }
  EXPECT_EQ(classify_lastfm(200, R"({"error":6,"message":"not found"})"), Verdict::kPermanent);
}

// ---- base URLs: "http://host/ws/2" and "http://host/ws/2/" are the same root ----------------------------------

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

TEST(Collect, JoinUrlPutsOneSlashBetweenBaseAndPath) {
  for (std::string base : {"http://h:1/ws/2", "http://h:1/ws/2/", "http://h:1/ws/2//"})
    for (std::string rel : {"artist/x?fmt=json", "/artist/x?fmt=json"})
      EXPECT_EQ(join_url(base, rel), "http://h:1/ws/2/artist/x?fmt=json") << base << " + " << rel;
  for (std::string base : {"https://ws.audioscrobbler.com/2.0", "https://ws.audioscrobbler.com/2.0/"})
    for (std::string rel : {"?method=x&format=json", "/?method=x&format=json"})
      EXPECT_EQ(join_url(base, rel), "https://ws.audioscrobbler.com/2.0/?method=x&format=json") << base << " + " << rel;
  EXPECT_EQ(join_url("http://h:1", "?method=x"), "http://h:1/?method=x");
}

TEST(Collect, BaseUrlWithQueryOrWithoutSchemeIsAConfigError) {
  TempDir dir;
  for (std::string bad : {"ws.audioscrobbler.com/2.0/", "ftp://h/2.0/", "https://h/2.0/?format=json", "http:///2.0"}) {
    CollectOptions o;
    o.tags_file = dir / "tags.json";
    o.output = dir / "catalog.csv";
    o.lastfm.base_url = bad;
    try {
      validate(o);
      ADD_FAILURE() << bad << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("lastfm.base_url"), std::string::npos) << e.what();
    }
  }
  CollectOptions o;
  o.tags_file = dir / "tags.json";
  o.output = dir / "catalog.csv";
  o.lastfm.base_url = "http://127.0.0.1:8080/2.0";
  o.musicbrainz.base_url = "http://mirror.example:5000/ws/2";
  EXPECT_NO_THROW(validate(o));
}

// Both services, each spelled both ways, through the crawler and the real libcurl client; the fake answers
// 400 for any path that is not /2.0/ or under /ws/2/, as the real hosts do.
TEST(Collect, BaseUrlsWithOrWithoutTrailingSlashReachBothServices) {
  for (bool lastfm_slash : {true, false})
    for (bool mb_slash : {true, false}) {
      SCOPED_TRACE(std::string("Last.fm ") + (lastfm_slash ? "with" : "without") + " slash, MusicBrainz " +
                   (mb_slash ? "with" : "without"));
      FakeApiServer server(fixture_world(), kKey, 20);
      Fixture f(server);
      if (!lastfm_slash) f.options.lastfm.base_url = without_trailing_slash(server.lastfm_url());
      if (!mb_slash) f.options.musicbrainz.base_url = without_trailing_slash(server.musicbrainz_url());
      auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
      auto bad = server.bad_paths();
      EXPECT_TRUE(bad.empty()) << bad.size() << " bad paths, first: " << bad[0];
      expect_rows(report.rows, expected_catalog());
      EXPECT_EQ(report.problems.size(), 2u);
      for (const auto& [url, n] : server.counts()) EXPECT_EQ(n, 1) << url;
    }

  // A path with or without a leading slash is one request and one cache entry.
  FakeApiServer server(fixture_world(), kKey, 20);
  TempDir dir;
  ResponseCache cache(dir.path());
  const std::string ua = "songlines-test/0 ( tests@example.org )";
  ServiceOptions mb_options;
  mb_options.base_url = without_trailing_slash(server.musicbrainz_url());
  mb_options.requests_per_second = 20;
  ServiceClient mb("musicbrainz", mb_options, ua, cache, classify_musicbrainz, "", nullptr);
  auto a = mb.get("/artist/m-rosa?fmt=json");
  EXPECT_EQ(a.status, 200);
  EXPECT_FALSE(a.from_cache);
  EXPECT_TRUE(mb.get("artist/m-rosa?fmt=json").from_cache);
  ServiceOptions lastfm_options = mb_options;
  lastfm_options.base_url = without_trailing_slash(server.lastfm_url());
  ServiceClient lastfm("lastfm", lastfm_options, ua, cache, classify_lastfm, "api_key=" + kKey, nullptr);
  auto b = lastfm.get("/?method=artist.getinfo&artist=Rosa&autocorrect=0&format=json");
  EXPECT_EQ(b.verdict, Verdict::kOk) << b.body;
  EXPECT_TRUE(lastfm.get("?method=artist.getinfo&artist=Rosa&autocorrect=0&format=json").from_cache);
  EXPECT_EQ(server.total_requests(), 2);
  EXPECT_TRUE(server.bad_paths().empty());
}

TEST(Collect, BadKeyIsFatalNotRetriedAndNotLeaked) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  const std::string wrong = "WRONGKEY0000wrongkey";
  try {
    run_collect(f.options, wrong, geo::Gazetteer::builtin(), capture());
    FAIL() << "expected FatalServiceError";
  } catch (const FatalServiceError& e) {
    EXPECT_EQ(std::string(e.what()).find(wrong), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Invalid API key"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.total_requests(), 1);
}

TEST(Collect, ApiKeyFromEnvironmentOrDotenvElseClearError) {
  TempDir dir;
  const char* saved = std::getenv("LASTFM_API_KEY");
  std::string saved_value = saved ? saved : "";
  unsetenv("LASTFM_API_KEY");
  EXPECT_THROW(load_lastfm_api_key(dir.path()), UsageError);
  write_text(dir / ".env", "# comment\nexport LASTFM_API_KEY=\"abc123\"\n");
  EXPECT_EQ(load_lastfm_api_key(dir.path()), "abc123");
  setenv("LASTFM_API_KEY", "fromenv", 1);
  EXPECT_EQ(load_lastfm_api_key(dir.path()), "fromenv");
  if (saved) setenv("LASTFM_API_KEY", saved_value.c_str(), 1);
  else unsetenv("LASTFM_API_KEY");
}

TEST(Collect, MaskSecretHidesKeyInQueriesAndText) {
  EXPECT_EQ(mask_secret("http://h/2.0/?method=x&api_key=abc&format=json", "abc"),
            "http://h/2.0/?method=x&api_key=***&format=json");
  EXPECT_EQ(mask_secret("key abc in text", "abc"), "key *** in text");
}

TEST(Collect, GenreRuleForAmbiguousAndCompoundTags) {
  TempDir dir;
  write_text(dir / "g.json", R"({"genre_mapping": {"Traditional": ["flamenco", "folk"], "Latin": ["flamenco"],
    "Pop": ["pop", "k-pop"]}})");
  auto g = GenreMapping::load(dir / "g.json");
  EXPECT_EQ(g.genre_for({"flamenco"}), "Traditional");        // listed twice: first genre in the file
  EXPECT_EQ(g.genre_for({"unknown", "folk"}), "Traditional");  // first tag that is listed exactly
  EXPECT_EQ(g.genre_for({"spanish pop"}), "Pop");              // contains a listed tag as a word
  EXPECT_EQ(g.genre_for({"popular"}), "Other");                // not a whole word
}

TEST(Collect, MusicBrainzRealRateOfOnePerSecondIsNeverExceeded) {
  FakeWorld w = fixture_world();
  w.tags = {{"samba", {{"Aquarela", "João"}}}};  // João: artist + two area walks = 3 MusicBrainz requests
  FakeApiServer server(w, kKey, 1.0);
  Fixture f(server);
  f.options.musicbrainz.requests_per_second = 1.0;
  f.options.crawl_country_tags = false;
  write_text(f.dir / "tags.json", R"({"with_country": {"samba": "Brazil"}})");
  auto report = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture());
  ASSERT_EQ(report.rows.size(), 1u);
  EXPECT_EQ(report.rows[0].location_source, kSourceMbArea);
  EXPECT_EQ(server.musicbrainz_requests(), 3);
  EXPECT_EQ(server.mb_rate_violations(), 0);
  EXPECT_GE(server.min_mb_interval(), 0.95);
}

// ---- the songlines binary: kill -9 mid-crawl, resume --------------------------------------------------------

FakeWorld big_world() {
  FakeWorld w = fixture_world();
  for (int t = 0; t < 4; ++t) {
    std::string tag = "tag" + std::to_string(t);
    for (int i = 0; i < 10; ++i) {
      std::string artist = "Artist " + std::to_string(t) + "-" + std::to_string(i);
      w.artists.push_back({artist, "m-" + std::to_string(t) + "-" + std::to_string(i), 10 + i, true, true, true,
                           i % 2 ? "DE" : "", i % 2 ? "" : "a-lyon", ""});
      w.tags[tag].push_back({"Song " + std::to_string(i), artist});
    }
  }
  return w;
}

void write_big_tags(const Fixture& f) {
  write_text(f.dir / "tags.json", R"({"with_country": {"flamenco": "Spain", "chanson": "France", "tag0": "Germany",
    "tag1": "Germany", "tag2": "Austria", "tag3": "Austria"}, "without_country": ["world"]})");
}

/// Starts `songlines collect` on the fixture's files and base URLs (extra: more flags); output goes to log.
pid_t spawn_collect(const Fixture& f, const std::filesystem::path& log, const std::string& extra = "") {
  std::string cmd = "exec " + songlines::testing::binary_path().string() + " collect --tags " +
                    (f.dir / "tags.json").string() + " --genres " + (f.dir / "genres.json").string() + " --output " +
                    f.options.output.string() + " --cache " + f.options.cache_dir.string() + " --lastfm-url " +
                    f.options.lastfm.base_url + " --musicbrainz-url " + f.options.musicbrainz.base_url +
                    " --lastfm-rate 20 --musicbrainz-rate 10 --contact tests@example.org " + extra + " > " + log.string() +
                    " 2>&1";
  std::string env_key = "LASTFM_API_KEY=" + kKey;
  std::vector<char*> env;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("LASTFM_API_KEY=", 0) != 0) env.push_back(*e);
  env.push_back(env_key.data());
  env.push_back(nullptr);
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), env.data()), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(Collect, KilledCrawlResumesWithoutRepeatingRequestsAndKeyNeverLeaks) {
  // Reference: one uninterrupted run.
  std::vector<CatalogRow> reference;
  {
    FakeApiServer server(big_world(), kKey, 20);
    Fixture f(server);
    write_big_tags(f);
    reference = run_collect(f.options, kKey, geo::Gazetteer::builtin(), capture()).rows;
  }
  ASSERT_GT(reference.size(), 40u);

  FakeApiServer server(big_world(), kKey, 20);
  Fixture f(server);
  write_big_tags(f);
  pid_t pid = spawn_collect(f, f.dir / "run1.log");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server.total_requests() < 40 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(f.options.output)) << "killed before the end: no catalog yet";
  const int64_t first = server.total_requests();

  pid = spawn_collect(f, f.dir / "run2.log");
  EXPECT_EQ(wait_exit(pid), 3) << read_bytes(f.dir / "run2.log");  // 3: Wanderer's 404 was reported
  int repeated = 0;
  for (const auto& [url, n] : server.counts()) repeated += n - 1;
  // At most the requests in flight at the kill (one per host) are asked again.
  EXPECT_LE(repeated, 2) << "first run made " << first << " requests";
  EXPECT_GT(server.total_requests(), first);

  const int64_t before = server.total_requests();
  pid = spawn_collect(f, f.dir / "run3.log");
  EXPECT_EQ(wait_exit(pid), 3);
  EXPECT_EQ(server.total_requests(), before) << "a finished crawl reruns from the cache alone";

  // The catalog equals the uninterrupted run's.
  TempDir ref_dir;
  write_catalog(ref_dir / "ref.csv", reference);
  EXPECT_EQ(read_bytes(f.options.output), read_bytes(ref_dir / "ref.csv"));

  // The key is in no log, cache file or catalog.
  std::vector<std::filesystem::path> files = {f.dir / "run1.log", f.dir / "run2.log", f.dir / "run3.log",
                                              f.options.output};
  for (const auto& e : std::filesystem::directory_iterator(f.options.cache_dir)) files.push_back(e.path());
  for (const auto& p : files) EXPECT_EQ(read_bytes(p).find(kKey), std::string::npos) << p;
  EXPECT_NE(read_bytes(f.dir / "run2.log").find("collect:"), std::string::npos);
}

TEST(Collect, BinaryReachesBothServicesWithEitherBaseUrlSpelling) {
  TempDir ref;
  write_catalog(ref / "expected.csv", expected_catalog());
  for (bool slash : {false, true}) {
    SCOPED_TRACE(slash ? "base URLs with a trailing slash" : "base URLs without a trailing slash");
    FakeApiServer server(fixture_world(), kKey, 20);
    Fixture f(server);
    if (!slash) {
      f.options.lastfm.base_url = without_trailing_slash(server.lastfm_url());
      f.options.musicbrainz.base_url = without_trailing_slash(server.musicbrainz_url());
    }
    EXPECT_EQ(wait_exit(spawn_collect(f, f.dir / "run.log")), 3) << read_bytes(f.dir / "run.log");  // Ghost, Wanderer
    auto bad = server.bad_paths();
    EXPECT_TRUE(bad.empty()) << bad.size() << " bad paths, first: " << bad[0];
    EXPECT_EQ(read_bytes(f.options.output), read_bytes(ref / "expected.csv"));
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Persistent cut and non-JSON answers through the binary: retried, then skipped and listed (exit 3, the
// partial-failure status), the key nowhere; after the server heals, `--resume` asks the skipped requests once
// more, the requests they lead to once, and nothing that was answered.
// Every tag page skipped: nothing collected is a failed job (exit 1, not the partial 3), and the catalog
// already at --output is not replaced by an empty one.
TEST(Collect, NothingCollectedIsAFailureAndKeepsTheOldCatalog) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  write_text(f.dir / "retry.json",
             R"({"lastfm": {"max_attempts": 2, "backoff_initial_s": 0.02, "backoff_max_s": 0.05},
                 "musicbrainz": {"max_attempts": 2, "backoff_initial_s": 0.02, "backoff_max_s": 0.05}})");
  write_text(f.options.output, "an earlier crawl's catalog\n");
  server.inject_until_cleared("method=tag", Fault::kMalformed);
  EXPECT_EQ(wait_exit(spawn_collect(f, f.dir / "run.log", "--config " + (f.dir / "retry.json").string())), 1)
      << read_bytes(f.dir / "run.log");
  const std::string log = read_bytes(f.dir / "run.log");
  EXPECT_NE(log.find("nothing collected"), std::string::npos) << log;
  EXPECT_EQ(read_bytes(f.options.output), "an earlier crawl's catalog\n");
  EXPECT_EQ(log.find(kKey), std::string::npos) << log;
}

TEST(Collect, BinarySkipsPersistentCutAnswersAndResumeAsksOnlyThose) {
  FakeApiServer server(fixture_world(), kKey, 20);
  Fixture f(server);
  constexpr int kAttempts = 3;
  write_text(f.dir / "retry.json",
             R"({"lastfm": {"max_attempts": 3, "backoff_initial_s": 0.02, "backoff_max_s": 0.1},
                 "musicbrainz": {"max_attempts": 3, "backoff_initial_s": 0.02, "backoff_max_s": 0.1}})");
  const std::string config = "--config " + (f.dir / "retry.json").string();

  // --resume with no cache to resume from: a usage error before any request.
  EXPECT_EQ(wait_exit(spawn_collect(f, f.dir / "none.log", config + " --resume")), 2) << read_bytes(f.dir / "none.log");
  EXPECT_NE(read_bytes(f.dir / "none.log").find("--resume: no response cache"), std::string::npos);
  EXPECT_EQ(server.total_requests(), 0);

  const std::vector<std::pair<std::string, Fault>> faults = {{"tag=samba", Fault::kCutNoLength},
                                                             {"artist=Jacques", Fault::kHtml200},
                                                             {"artist/m-rosa", Fault::kTruncate},
                                                             {"area/a-dakar", Fault::kMalformed}};
  for (const auto& [needle, fault] : faults) server.inject_until_cleared(needle, fault);
  EXPECT_EQ(wait_exit(spawn_collect(f, f.dir / "run1.log", config)), 3) << read_bytes(f.dir / "run1.log");
  const std::string log1 = read_bytes(f.dir / "run1.log");
  const auto first = server.counts();
  std::set<std::string> skipped;
  for (const auto& [url, n] : first)
    if (contains_any(url, faults)) {
      skipped.insert(url);
      EXPECT_EQ(n, kAttempts) << url;
    }
  ASSERT_EQ(skipped.size(), faults.size());
  for (const auto& url : skipped) {
    int listed = 0;
    for (const auto& line : lines_of(log1))
      listed += line.find("giving up after 3 attempts") != std::string::npos &&
                line.find(url + "); skipped") != std::string::npos;
    EXPECT_EQ(listed, 1) << url << " not listed as skipped in:\n" << log1;
  }
  // The four, and Ghost's error 6 and Wanderer's 404 (answers, listed but cached).
  EXPECT_NE(log1.find("collect: 6 responses skipped"), std::string::npos) << log1;
  // The proxy page echoes the request line, key included: it must show up masked, never in clear.
  EXPECT_NE(log1.find("api_key=***"), std::string::npos) << log1;
  EXPECT_EQ(log1.find(kKey), std::string::npos) << log1;

  server.clear_faults();
  // MusicBrainz's rate is per client host, not per process: a rerun that starts within the rate interval of the
  // last run's last request is (rightly) answered 503 and retries, which would count one more request here.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(wait_exit(spawn_collect(f, f.dir / "run2.log", config + " --resume")), 3) << read_bytes(f.dir / "run2.log");
  const std::string log2 = read_bytes(f.dir / "run2.log");
  EXPECT_EQ(log2.find("giving up"), std::string::npos) << log2;
  auto after = server.counts();
  for (const auto& [url, n] : first) {
    if (skipped.count(url)) EXPECT_EQ(after[url], n + 1) << url << ": skipped, so asked once more";
    else EXPECT_EQ(after[url], n) << url << ": answered, so never asked again";
  }
  // What the skipped tag page leads to (João and the walk up his areas) was never asked before: once now.
  std::set<std::string> fresh;
  for (const auto& [url, n] : after)
    if (!first.count(url)) {
      fresh.insert(url);
      EXPECT_EQ(n, 1) << url;
    }
  EXPECT_EQ(fresh, (std::set<std::string>{"/2.0/?method=artist.getinfo&artist=Jo%C3%A3o&autocorrect=0&format=json",
                                          "/ws/2/artist/m-joao?fmt=json", "/ws/2/area/a-rio?inc=area-rels&fmt=json",
                                          "/ws/2/area/a-rj?inc=area-rels&fmt=json"}));
  TempDir ref;
  write_catalog(ref / "expected.csv", expected_catalog());
  EXPECT_EQ(read_bytes(f.options.output), read_bytes(ref / "expected.csv"));

  std::vector<std::filesystem::path> files = {f.dir / "run1.log", f.dir / "run2.log", f.options.output};
  for (const auto& e : std::filesystem::directory_iterator(f.options.cache_dir)) files.push_back(e.path());
  for (const auto& p : files) EXPECT_EQ(read_bytes(p).find(kKey), std::string::npos) << p;
}

}  // namespace
}  // namespace songlines::collect
