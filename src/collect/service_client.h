// One web service (Last.fm or MusicBrainz) behind libcurl: rate-limited by a token bucket, retried with
// exponential backoff and jitter on transient failures, every final answer cached on disk.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "collect/collect_options.h"
#include "collect/response_cache.h"
#include "collect/token_bucket.h"
#include "core/error.h"

namespace songlines::collect {

/// What a response means for the crawl.
enum class Verdict {
  kOk,         ///< usable: cache and return
  kTransient,  ///< try again after a backoff (429, 5xx, MusicBrainz 503, Last.fm errors 8/11/16/29, a 200 whose
               ///< body is not JSON: cut short or a proxy's HTML page)
  kPermanent,  ///< will not change by retrying (not found, ...): cache and return for the caller to report
  kFatal,      ///< nothing else will work either (bad API key): throw NetworkError, do not cache
};

/// Judges a response: (HTTP status, body) -> verdict.
using Classifier = std::function<Verdict(long status, const std::string& body)>;
/// Last.fm: errors come as {"error": N, "message": ...}, often with HTTP 200.
Verdict classify_lastfm(long status, const std::string& body);
/// MusicBrainz: 503 when over the rate, 404 for an unknown id.
Verdict classify_musicbrainz(long status, const std::string& body);

/// base_url and a path relative to it joined by exactly one '/', however either is spelled:
/// ("http://h/ws/2" or "http://h/ws/2/") + ("artist/x" or "/artist/x") -> "http://h/ws/2/artist/x";
/// a relative that is only a query ("?method=...") gives "http://h/2.0/?method=...".
std::string join_url(const std::string& base_url, const std::string& relative);

using LogFn = std::function<void(const std::string&)>;

/// A failure no retry or later request can fix (the API key was refused): the crawl stops.
class FatalServiceError : public NetworkError {
 public:
  using NetworkError::NetworkError;
};

struct Response {
  long status = 0;
  std::string body;
  bool from_cache = false;
  Verdict verdict = Verdict::kOk;
};

class ServiceClient {
 public:
  /// secret_query: appended to each request ("api_key=..."), never part of the cache key or a message.
  ServiceClient(std::string name, ServiceOptions options, std::string user_agent, ResponseCache& cache,
                Classifier classifier, std::string secret_query, LogFn log, uint64_t seed = 0x5eed);
  ~ServiceClient();
  ServiceClient(const ServiceClient&) = delete;
  ServiceClient& operator=(const ServiceClient&) = delete;

  /// GET join_url(base_url, relative). Returns a kOk or kPermanent response (cached or fetched); throws
  /// NetworkError (URL masked) when retries run out or the verdict is kFatal. Only kOk and kPermanent answers are
  /// cached; a cached entry that the classifier now calls transient (a cut body stored by an older version) is
  /// fetched again.
  Response get(const std::string& relative);

  /// The URL as it appears in messages and cache keys (no secret).
  std::string display_url(const std::string& relative) const { return join_url(options_.base_url, relative); }
  int64_t requests() const { return requests_; }
  int64_t cache_hits() const { return cache_hits_; }
  int64_t retries() const { return retries_; }
  /// Percent-encodes a query value (RFC 3986 unreserved characters kept).
  static std::string escape(const std::string& value);

 private:
  struct CurlHandle;
  std::string mask(const std::string& s) const;
  std::string name_;
  ServiceOptions options_;
  std::string user_agent_;
  ResponseCache& cache_;
  Classifier classifier_;
  std::string secret_query_;
  LogFn log_;
  TokenBucket bucket_;
  std::unique_ptr<CurlHandle> curl_;
  std::mt19937_64 rng_;
  std::atomic<int64_t> requests_{0}, cache_hits_{0}, retries_{0};
};

}  // namespace songlines::collect
