#include "collect/response_cache.h"

#include <sqlite3.h>

#include "core/error.h"

namespace songlines::collect {
namespace {

/// A prepared statement, finalized at scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::filesystem::path& file) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw IoError(file.string() + ": " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

void ResponseCache::Deleter::operator()(sqlite3* db) const { sqlite3_close(db); }

ResponseCache::ResponseCache(const std::filesystem::path& dir) : path_(dir / "responses.sqlite") {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create the cache directory: " + ec.message());
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) throw IoError(path_.string() + ": cannot open the response cache: " + sqlite3_errstr(rc));
  sqlite3_busy_timeout(raw, 10000);
  // WAL: a committed row survives the process being killed (only power loss could lose the last ones).
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, status INTEGER NOT NULL, body BLOB NOT NULL,"
      " fetched_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));";
  char* err = nullptr;
  if (sqlite3_exec(raw, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw IoError(path_.string() + ": " + msg);
  }
}

ResponseCache::~ResponseCache() = default;

std::optional<CachedResponse> ResponseCache::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  Statement s(db_.get(), "SELECT status, body FROM responses WHERE key = ?1", path_);
  sqlite3_bind_text(s.get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw IoError(path_.string() + ": " + sqlite3_errmsg(db_.get()));
  CachedResponse r;
  r.status = sqlite3_column_int64(s.get(), 0);
  const void* blob = sqlite3_column_blob(s.get(), 1);
  r.body.assign(static_cast<const char*>(blob), static_cast<size_t>(sqlite3_column_bytes(s.get(), 1)));
  return r;
}

void ResponseCache::put(const std::string& key, const CachedResponse& response) {
  std::lock_guard lock(mutex_);
  Statement s(db_.get(), "INSERT OR REPLACE INTO responses (key, status, body) VALUES (?1, ?2, ?3)", path_);
  sqlite3_bind_text(s.get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get(), 2, response.status);
  sqlite3_bind_blob(s.get(), 3, response.body.data(), static_cast<int>(response.body.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(s.get()) != SQLITE_DONE) throw IoError(path_.string() + ": " + sqlite3_errmsg(db_.get()));
}

}  // namespace songlines::collect
