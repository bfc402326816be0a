// An exclusive lock on a run or sweep directory while a process works in it: flock(2) on DIR/.lock, so two
// `run` or `sweep` processes never train into one directory at once, and a crashed or killed holder releases
// it with its last descriptor (nothing stale to clean up). The descriptor is close-on-exec: processes a holder
// starts (sweep trials) do not inherit the lock. The file records the holder's pid for the message.
#pragma once

#include <filesystem>

namespace songlines {

class DirLock {
 public:
  /// Creates dir if needed and locks it; throws UsageError naming the directory and the holder's pid when
  /// another process holds it, IoError when the lock file cannot be made.
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  /// DIR/.lock
  static std::filesystem::path lock_file(const std::filesystem::path& dir);

 private:
  int fd_ = -1;
};

}  // namespace songlines
