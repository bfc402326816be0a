#include "collect/service_client.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <thread>

#include "collect/api_key.h"
#include "core/error.h"

namespace songlines::collect {
namespace {

// Last.fm error codes worth retrying: 8 operation failed, 11 service offline, 16 temporarily unavailable,
// 29 rate limit exceeded (https://www.last.fm/api/errorcodes).
bool lastfm_error_is_transient(int code) { return code == 8 || code == 11 || code == 16 || code == 29; }
// 10 invalid key, 26 suspended key: every later request would fail the same way.
bool lastfm_error_is_fatal(int code) { return code == 10 || code == 26; }

/// The relative URL without leading slashes: "artist/x" and "/artist/x" are one request and one cache entry.
std::string normalized(const std::string& relative) {
  size_t start = relative.find_first_not_of('/');
  return start == std::string::npos ? std::string() : relative.substr(start);
}

constexpr size_t kBodyShownInMessages = 160;  // characters of a response body quoted in a log line

/// The start of a body for a one-line message (an HTML error page has line breaks).
std::string excerpt(const std::string& body) {
  std::string out = body.substr(0, kBodyShownInMessages);
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return out + (body.size() > kBodyShownInMessages ? "..." : "");
}

size_t append_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Verdict classify_lastfm(long status, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    int code = j["error"].is_number_integer() ? j["error"].get<int>()
               : j["error"].is_string()       ? std::atoi(j["error"].get<std::string>().c_str())
                                              : 0;
    if (lastfm_error_is_transient(code)) return Verdict::kTransient;
    if (lastfm_error_is_fatal(code)) return Verdict::kFatal;
    return Verdict::kPermanent;
  }
  if (status == 429 || status >= 500) return Verdict::kTransient;
  if (status != 200) return Verdict::kPermanent;
  if (j.is_discarded()) return Verdict::kTransient;  // cut short or an error page: not the service's answer
  return Verdict::kOk;
}

Verdict classify_musicbrainz(long status, const std::string& body) {
  if (status == 429 || status >= 500) return Verdict::kTransient;  // 503: over the rate limit
  if (status != 200) return Verdict::kPermanent;                    // 404 unknown id, 400 bad query
  if (!nlohmann::json::accept(body)) return Verdict::kTransient;    // cut short or an error page
  return Verdict::kOk;
}

std::string join_url(const std::string& base_url, const std::string& relative) {
  size_t base_end = base_url.find_last_not_of('/');
  return base_url.substr(0, base_end == std::string::npos ? 0 : base_end + 1) + "/" + normalized(relative);
}

struct ServiceClient::CurlHandle {
  CURL* handle = nullptr;
  CurlHandle() {
    global_init();
    handle = curl_easy_init();
    if (!handle) throw NetworkError("libcurl: curl_easy_init failed");
  }
  ~CurlHandle() { curl_easy_cleanup(handle); }
};

ServiceClient::ServiceClient(std::string name, ServiceOptions options, std::string user_agent, ResponseCache& cache,
                             Classifier classifier, std::string secret_query, LogFn log, uint64_t seed)
    : name_(std::move(name)),
      options_(std::move(options)),
      user_agent_(std::move(user_agent)),
      cache_(cache),
      classifier_(std::move(classifier)),
      secret_query_(std::move(secret_query)),
      log_(std::move(log)),
      bucket_(options_.requests_per_second),
      curl_(std::make_unique<CurlHandle>()),
      rng_(seed) {}

ServiceClient::~ServiceClient() = default;

std::string ServiceClient::mask(const std::string& s) const {
  std::string secret = secret_query_.substr(std::min(secret_query_.size(), secret_query_.find('=') + 1));
  return mask_secret(s, secret);
}

std::string ServiceClient::escape(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Response ServiceClient::get(const std::string& relative_in) {
  // The cache key is the service name and the URL relative to the service root: no secret, and a crawl
  // moved to a mirror (another base URL, with or without a trailing slash) keeps its cache.
  const std::string relative = normalized(relative_in);
  const std::string key = name_ + " " + relative;
  const std::string shown = mask(display_url(relative));
  if (auto hit = cache_.get(key)) {
    Verdict v = classifier_(hit->status, hit->body);
    if (v != Verdict::kTransient) {
      ++cache_hits_;
      return Response{hit->status, std::move(hit->body), true, v == Verdict::kOk ? Verdict::kOk : Verdict::kPermanent};
    }
    // Stored by a version that cached cut or non-JSON bodies: not an answer, so ask again.
    if (log_) log_(mask(name_ + ": the cached answer is not JSON (" + shown + "); fetching it again"));
  }
  std::string url = display_url(relative);
  if (!secret_query_.empty()) url += (url.find('?') == std::string::npos ? "?" : "&") + secret_query_;

  CURL* h = curl_->handle;
  std::string last_problem;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    bucket_.acquire();
    ++requests_;
    std::string body;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent_.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // gzip when offered
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_off_t retry_after = 0;
    Verdict verdict;
    if (rc != CURLE_OK) {
      // Timeouts, resets, refused connections and bodies shorter than Content-Length are all worth retrying.
      last_problem = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
      verdict = Verdict::kTransient;
    } else {
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
      verdict = classifier_(status, body);
      if (status == 200 && verdict == Verdict::kTransient && !nlohmann::json::accept(body))
        last_problem = "HTTP 200 with a body that is not JSON (" + std::to_string(body.size()) +
                       " bytes, cut short or an error page): " + excerpt(mask(body));
      else
        last_problem = "HTTP " + std::to_string(status) + (body.size() < 300 ? ": " + body : "");
    }
    // Only answers are cached: a transient failure (a cut or non-JSON body included) must be asked again by a
    // resumed crawl, never served from the cache.
    if (verdict == Verdict::kOk || verdict == Verdict::kPermanent) {
      cache_.put(key, CachedResponse{status, body});
      return Response{status, std::move(body), false, verdict};
    }
    if (verdict == Verdict::kFatal)
      throw FatalServiceError(name_ + ": " + mask(last_problem) + " (" + shown + "); not retried");
    if (attempt == options_.max_attempts) break;
    ++retries_;
    double delay = std::min(options_.backoff_max_s, options_.backoff_initial_s * std::pow(2.0, attempt - 1));
    delay *= std::uniform_real_distribution<double>(0.5, 1.0)(rng_);  // jitter: spread out synchronized clients
    delay = std::max(delay, std::min(options_.backoff_max_s, static_cast<double>(retry_after)));
    if (log_)
      log_(mask(name_ + ": " + last_problem + " (" + shown + "); retry " + std::to_string(attempt) + " in " +
                std::to_string(delay).substr(0, 5) + " s"));
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  }
  throw NetworkError(mask(name_ + ": giving up after " + std::to_string(options_.max_attempts) + " attempts: " +
                          last_problem + " (" + shown + ")"));
}

}  // namespace songlines::collect
