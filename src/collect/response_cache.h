// On-disk cache of web responses (SQLite, one row per request), so that a crawl killed at any moment resumes
// without repeating a request and a rerun makes none. Keys are request URLs with the API key removed.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

struct sqlite3;

namespace songlines::collect {

struct CachedResponse {
  long status = 0;   ///< HTTP status
  std::string body;  ///< response body as received
};

class ResponseCache {
 public:
  /// Opens (creating) <dir>/responses.sqlite. Throws IoError naming the file.
  explicit ResponseCache(const std::filesystem::path& dir);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  /// Thread-safe.
  std::optional<CachedResponse> get(const std::string& key);
  /// Stores (replacing) and commits before returning, so the response survives a kill right after.
  void put(const std::string& key, const CachedResponse& response);
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Deleter {
    void operator()(sqlite3* db) const;
  };
  std::filesystem::path path_;
  std::unique_ptr<sqlite3, Deleter> db_;
  std::mutex mutex_;
};

}  // namespace songlines::collect
