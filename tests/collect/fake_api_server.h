// A small threaded HTTP/1.1 server on 127.0.0.1 that plays Last.fm and MusicBrainz for the collect tests:
// responses shaped like the real ones (numbers as strings, "@attr", Last.fm errors with HTTP 200, MusicBrainz
// 503 when a client goes over the rate, which the server measures), and faults injected per URL: stalls,
// connection resets, 500s, 200 answers cut short (with a larger Content-Length, or closed mid-body without
// one), 200 answers with a proxy's HTML page or with invalid JSON, rate-limit and "service offline" errors.
// Paths are strict, as on the real hosts: Last.fm answers only at /2.0/, MusicBrainz under /ws/2/; anything
// else gets HTTP 400. One connection per request ("Connection: close"); every request is counted by its URL
// minus the API key.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace songlines::testing {

struct FakeArea {
  std::string id, name, type;
  std::vector<std::string> iso1, iso2;  ///< ISO 3166-1 / 3166-2 codes the area carries
  std::string parent;                   ///< id of the area it is part of, "" for none
};

struct FakeArtist {
  std::string name, mbid;
  long listeners = 0;
  bool lastfm_knows = true;     ///< false: artist.getInfo answers error 6 (not found)
  bool lastfm_has_mbid = true;  ///< false: Last.fm gives an empty mbid (the client must search MusicBrainz)
  bool musicbrainz_knows = true;  ///< false: MusicBrainz 404 on lookup, no search hit
  std::string country;          ///< MusicBrainz "country", "" for none
  std::string area, begin_area;  ///< area ids
};

struct FakeTrack {
  std::string name, artist;
};

struct FakeWorld {
  std::map<std::string, std::vector<FakeTrack>> tags;
  std::vector<FakeArtist> artists;
  std::map<std::string, FakeArea> areas;
};

enum class Fault {
  kStall,            ///< no answer until the stall time has passed, then the connection is closed
  kReset,            ///< connection reset (RST) before any answer
  kServerError,      ///< HTTP 500 with an HTML body
  kTruncate,         ///< 200, the true Content-Length, half of the true body, then the connection is closed
  kCutNoLength,      ///< 200 without Content-Length (body ends at close), closed after half of the true body
  kHtml200,          ///< 200 with a proxy's HTML error page that echoes the request line (API key included)
  kLastfmRateLimit,  ///< Last.fm error 29 with HTTP 200
  kLastfmOffline,    ///< Last.fm error 11 with HTTP 200
  kMb503,            ///< MusicBrainz 503 (over the rate)
  kMalformed,        ///< 200 with invalid JSON
};

class FakeApiServer {
 public:
  /// mb_max_rate: MusicBrainz requests per second above which the server answers 503 (and counts a violation).
  FakeApiServer(FakeWorld world, std::string api_key, double mb_max_rate)
      : world_(std::move(world)), key_(std::move(api_key)), mb_min_interval_(1.0 / mb_max_rate) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0)
      throw std::runtime_error("fake server: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~FakeApiServer() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    acceptor_.join();
    for (auto& t : workers_) t.join();
    ::close(fd_);
  }
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  std::string lastfm_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/2.0/"; }
  std::string musicbrainz_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/ws/2/"; }

  /// The next `times` requests whose URL (minus the key) contains needle get the fault.
  void inject(const std::string& needle, Fault fault, int times = 1) {
    std::lock_guard lock(m_);
    faults_.push_back({needle, fault, times});
  }
  /// Every request whose URL contains needle gets the fault until clear_faults().
  void inject_until_cleared(const std::string& needle, Fault fault) { inject(needle, fault, kUntilCleared); }
  /// Removes every pending fault: the server heals.
  void clear_faults() {
    std::lock_guard lock(m_);
    faults_.clear();
  }
  /// Requests answered with 400 because their path is neither /2.0/ nor under /ws/2/.
  std::vector<std::string> bad_paths() const {
    std::lock_guard lock(m_);
    return bad_paths_;
  }
  /// Seconds a stalled request waits before the server closes it.
  void set_stall_seconds(double s) { stall_s_ = s; }

  int64_t total_requests() const {
    std::lock_guard lock(m_);
    return total_;
  }
  /// URL (path and query, api_key removed) -> times requested.
  std::map<std::string, int> counts() const {
    std::lock_guard lock(m_);
    return counts_;
  }
  int64_t musicbrainz_requests() const {
    std::lock_guard lock(m_);
    return mb_times_.size();
  }
  int mb_rate_violations() const {
    std::lock_guard lock(m_);
    return violations_;
  }
  /// Smallest gap between two MusicBrainz requests (seconds); +inf with fewer than two.
  double min_mb_interval() const {
    std::lock_guard lock(m_);
    double best = 1e300;
    for (size_t i = 1; i < mb_times_.size(); ++i)
      best = std::min(best, std::chrono::duration<double>(mb_times_[i] - mb_times_[i - 1]).count());
    return best;
  }
  std::vector<std::string> user_agents() const {
    std::lock_guard lock(m_);
    return user_agents_;
  }
  /// True when some Last.fm request arrived while another MusicBrainz request was between two of its own
  /// (the client overlaps the hosts).
  std::vector<std::pair<char, double>> arrivals() const {
    std::lock_guard lock(m_);
    return arrivals_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Reply {
    int status = 200;
    std::string body;
  };
  struct PendingFault {
    std::string needle;
    Fault fault;
    int remaining;  ///< requests still to fault; kUntilCleared: every one
  };
  static constexpr int kUntilCleared = -1;

  static std::string url_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i] == '+' ? ' ' : s[i];
      }
    }
    return out;
  }
  static std::map<std::string, std::string> query_of(const std::string& target) {
    std::map<std::string, std::string> q;
    size_t qm = target.find('?');
    if (qm == std::string::npos) return q;
    std::string rest = target.substr(qm + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
      size_t amp = rest.find('&', pos);
      if (amp == std::string::npos) amp = rest.size();
      std::string kv = rest.substr(pos, amp - pos);
      size_t eq = kv.find('=');
      if (eq != std::string::npos) q[kv.substr(0, eq)] = url_decode(kv.substr(eq + 1));
      pos = amp + 1;
    }
    return q;
  }
  static std::string without_key(std::string target) {
    size_t p = target.find("api_key=");
    if (p == std::string::npos) return target;
    size_t end = target.find('&', p);
    size_t start = (p > 0 && (target[p - 1] == '&')) ? p - 1 : p;
    target.erase(start, (end == std::string::npos ? target.size() : end + (start == p ? 1 : 0)) - start);
    return target;
  }

  const FakeArtist* artist_by_name(const std::string& name) const {
    for (const auto& a : world_.artists)
      if (a.name == name) return &a;
    return nullptr;
  }
  const FakeArtist* artist_by_mbid(const std::string& id) const {
    for (const auto& a : world_.artists)
      if (a.mbid == id) return &a;
    return nullptr;
  }
  nlohmann::json area_json(const std::string& id) const {
    const FakeArea& a = world_.areas.at(id);
    nlohmann::json j = {{"id", a.id}, {"name", a.name}, {"type", a.type}, {"sort-name", a.name}};
    if (!a.iso1.empty()) j["iso-3166-1-codes"] = a.iso1;
    if (!a.iso2.empty()) j["iso-3166-2-codes"] = a.iso2;
    return j;
  }
  nlohmann::json mb_artist_json(const FakeArtist& a) const {
    nlohmann::json j = {{"id", a.mbid}, {"name", a.name}, {"sort-name", a.name}, {"type", "Person"},
                        {"country", a.country.empty() ? nlohmann::json() : nlohmann::json(a.country)},
                        {"area", a.area.empty() ? nlohmann::json() : area_json(a.area)},
                        {"begin-area", a.begin_area.empty() ? nlohmann::json() : area_json(a.begin_area)},
                        {"life-span", {{"ended", false}, {"begin", nullptr}, {"end", nullptr}}}};
    return j;
  }

  Reply lastfm(const std::string& target) {
    auto q = query_of(target);
    if (q["api_key"] != key_)
      return {403, R"({"error":10,"message":"Invalid API key - You must be granted a valid key by last.fm"})"};
    std::string method = q["method"];
    if (method == "tag.gettoptracks") {
      int limit = q.count("limit") ? std::stoi(q["limit"]) : 50;
      int page = q.count("page") ? std::stoi(q["page"]) : 1;
      auto it = world_.tags.find(q["tag"]);
      std::vector<FakeTrack> all = it == world_.tags.end() ? std::vector<FakeTrack>{} : it->second;
      nlohmann::json list = nlohmann::json::array();
      for (int i = (page - 1) * limit; i < page * limit && i < static_cast<int>(all.size()); ++i) {
        const FakeArtist* a = artist_by_name(all[i].artist);
        list.push_back({{"name", all[i].name},
                        {"duration", "0"},
                        {"mbid", ""},
                        {"url", "https://www.last.fm/music/x"},
                        {"streamable", {{"#text", "0"}, {"fulltrack", "0"}}},
                        {"artist", {{"name", all[i].artist}, {"mbid", a && a->lastfm_has_mbid ? a->mbid : ""},
                                    {"url", "https://www.last.fm/music/y"}}},
                        {"image", nlohmann::json::array()},
                        {"@attr", {{"rank", std::to_string(i + 1)}}}});
      }
      int total_pages = std::max<int>(1, (static_cast<int>(all.size()) + limit - 1) / limit);
      nlohmann::json j = {{"tracks",
                           {{"track", list},
                            {"@attr",
                             {{"tag", q["tag"]}, {"page", std::to_string(page)}, {"perPage", std::to_string(limit)},
                              {"totalPages", std::to_string(total_pages)}, {"total", std::to_string(all.size())}}}}}};
      return {200, j.dump()};
    }
    if (method == "artist.getinfo") {
      const FakeArtist* a = artist_by_name(q["artist"]);
      if (!a || !a->lastfm_knows)
        return {200, R"({"error":6,"message":"The artist you supplied could not be found","links":[]})"};
      nlohmann::json j = {{"artist",
                           {{"name", a->name}, {"mbid", a->lastfm_has_mbid ? a->mbid : ""}, {"url", "u"},
                            {"stats", {{"listeners", std::to_string(a->listeners)},
                                       {"playcount", std::to_string(a->listeners * 7)}}},
                            {"tags", {{"tag", nlohmann::json::array()}}}}}};
      return {200, j.dump()};
    }
    return {200, R"({"error":3,"message":"Invalid Method - No method with that name in this package"})"};
  }

  Reply musicbrainz(const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    const std::string artist_prefix = "/ws/2/artist/", area_prefix = "/ws/2/area/";
    auto not_found = Reply{404, R"({"error":"Not Found","help":"For usage, please see: https://musicbrainz.org/development/mmd"})"};
    if (path == artist_prefix) {  // search
      auto q = query_of(target);
      std::string query = q["query"];  // artist:"Name"
      size_t a = query.find('"'), b = query.rfind('"');
      std::string name = a != std::string::npos && b > a ? query.substr(a + 1, b - a - 1) : query;
      const FakeArtist* art = artist_by_name(name);
      nlohmann::json list = nlohmann::json::array();
      if (art && art->musicbrainz_knows) {
        auto j = mb_artist_json(*art);
        j["score"] = 100;
        list.push_back(j);
      }
      nlohmann::json j = {{"created", "2024-01-01T00:00:00.000Z"}, {"count", list.size()}, {"offset", 0},
                          {"artists", list}};
      return {200, j.dump()};
    }
    if (path.rfind(artist_prefix, 0) == 0) {
      const FakeArtist* a = artist_by_mbid(path.substr(artist_prefix.size()));
      if (!a || !a->musicbrainz_knows) return not_found;
      return {200, mb_artist_json(*a).dump()};
    }
    if (path.rfind(area_prefix, 0) == 0) {
      std::string id = path.substr(area_prefix.size());
      if (!world_.areas.count(id)) return not_found;
      auto j = area_json(id);
      j["relations"] = nlohmann::json::array();
      if (!world_.areas.at(id).parent.empty())
        j["relations"].push_back({{"type", "part of"}, {"direction", "backward"},
                                  {"type-id", "de7cc874-8b1b-3a05-8272-f3834c968fb7"},
                                  {"area", area_json(world_.areas.at(id).parent)}});
      return {200, j.dump()};
    }
    return not_found;
  }

  void accept_loop() {
    for (;;) {
      {
        std::lock_guard lock(m_);
        if (stop_) return;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::lock_guard lock(m_);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }

  static void send_all(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  void serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(c);
        return;
      }
      req.append(buf, static_cast<size_t>(n));
    }
    size_t sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    std::string target = req.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string ua;
    if (size_t u = req.find("User-Agent: "); u != std::string::npos)
      ua = req.substr(u + 12, req.find("\r\n", u) - u - 12);
    const std::string path = target.substr(0, target.find('?'));
    const bool is_mb = path.rfind("/ws/2/", 0) == 0;
    const bool is_lastfm = path == "/2.0/";
    const std::string counted = without_key(target);
    Reply reply;
    std::optional<Fault> fault;
    bool over_rate = false;
    {
      std::lock_guard lock(m_);
      auto now = Clock::now();
      ++total_;
      ++counts_[counted];
      user_agents_.push_back(ua);
      arrivals_.push_back({is_mb ? 'm' : 'l', std::chrono::duration<double>(now - start_).count()});
      if (is_mb) {
        // 10% slack for scheduling jitter between the client's clock and ours.
        if (!mb_times_.empty() &&
            std::chrono::duration<double>(now - mb_times_.back()).count() < 0.9 * mb_min_interval_) {
          ++violations_;
          over_rate = true;
        }
        mb_times_.push_back(now);
      }
      for (auto it = faults_.begin(); it != faults_.end(); ++it)
        if (counted.find(it->needle) != std::string::npos) {
          fault = it->fault;
          if (it->remaining != kUntilCleared && --it->remaining == 0) faults_.erase(it);
          break;
        }
      if (!is_mb && !is_lastfm) bad_paths_.push_back(counted);
    }
    if (!is_mb && !is_lastfm) {
      reply = {400, R"({"error":"Invalid path: )" + path + R"("})"};
    } else if (fault) {
      reply = is_mb ? musicbrainz(target) : lastfm(target);  // the answer a fault cuts or replaces
    } else if (over_rate) {
      reply = {503, R"({"error":"Your requests are exceeding the allowable rate limit."})"};
    } else {
      reply = is_mb ? musicbrainz(target) : lastfm(target);
    }
    if (fault && (is_mb || is_lastfm)) {
      switch (*fault) {
        case Fault::kStall: {
          std::unique_lock lock(m_);
          cv_.wait_for(lock, std::chrono::duration<double>(stall_s_), [&] { return stop_; });
          ::close(c);
          return;
        }
        case Fault::kReset: {
          linger l{1, 0};  // close with RST
          ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          ::close(c);
          return;
        }
        case Fault::kServerError: reply = {500, "<html>Internal Server Error</html>"}; break;
        case Fault::kTruncate:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n" +
                          reply.body.substr(0, reply.body.size() / 2));
          ::shutdown(c, SHUT_WR);
          ::close(c);
          return;
        case Fault::kCutNoLength:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
                          reply.body.substr(0, reply.body.size() / 2));
          ::shutdown(c, SHUT_WR);
          ::close(c);
          return;
        case Fault::kHtml200:
          reply = {200, "<html><body><h1>502 Bad Gateway</h1><p>GET " + target +
                            "</p>\n<p>upstream timed out</p></body></html>\n"};
          break;
        case Fault::kLastfmRateLimit:
          reply = {200, R"({"error":29,"message":"Rate Limit Exceded - Your IP has made too many requests"})"};
          break;
        case Fault::kLastfmOffline: reply = {200, R"({"error":11,"message":"Service Offline"})"}; break;
        case Fault::kMb503: reply = {503, R"({"error":"Your requests are exceeding the allowable rate limit."})"}; break;
        case Fault::kMalformed: reply = {200, "{\"artist\": {\"name\": \"oops\", "}; break;
      }
    }
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) + (reply.status == 200 ? " OK" : " Error") +
                       "\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
                       std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n";
    send_all(c, head + reply.body);
    ::shutdown(c, SHUT_WR);
    ::close(c);
  }

  FakeWorld world_;
  std::string key_;
  double mb_min_interval_;
  double stall_s_ = 2.0;
  int fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<PendingFault> faults_;
  std::vector<std::string> bad_paths_;
  int64_t total_ = 0;
  std::map<std::string, int> counts_;
  std::vector<Clock::time_point> mb_times_;
  int violations_ = 0;
  std::vector<std::string> user_agents_;
  std::vector<std::pair<char, double>> arrivals_;
  Clock::time_point start_ = Clock::now();
};

}  // namespace songlines::testing
