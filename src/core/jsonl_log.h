// Append-only JSON Lines files (metrics.jsonl) that survive a kill at any moment: every record is written as one
// whole line by one write(2) on an O_APPEND descriptor (no user-space buffer that a kill could cut), and opening
// a file cuts a torn tail left by an earlier kill, so a resumed run never appends after half a line.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/config.h"

namespace songlines {

class JsonlLog {
 public:
  /// Opens (creates) path for appending; bytes after the last newline (a line cut by a kill) are removed first.
  /// Throws IoError naming the path.
  explicit JsonlLog(const std::filesystem::path& path);
  ~JsonlLog();
  JsonlLog(const JsonlLog&) = delete;
  JsonlLog& operator=(const JsonlLog&) = delete;

  /// Appends record.dump() and a newline as one line; throws IoError (disk full, ...) naming the path.
  void append(const Json& record);

  /// Bytes of a torn tail removed when this file was opened (0 for a clean file).
  int64_t torn_bytes_removed() const { return torn_bytes_removed_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  int64_t torn_bytes_removed_ = 0;
};

}  // namespace songlines
