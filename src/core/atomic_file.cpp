#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace songlines {

std::filesystem::path temporary_path_for(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  auto name = target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return target.parent_path() / name;
}

namespace {
// Removes tmp and throws IoError naming target, what failed and the system's reason (e.g. "No space left on
// device"), so a full disk reads as one line and leaves no partial file behind.
[[noreturn]] void fail_atomic(const std::filesystem::path& tmp, const std::filesystem::path& target,
                              const std::string& what, int err) {
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  throw IoError(target.string() + ": " + what + ": " + std::strerror(err));
}
}  // namespace

void commit_atomic(const std::filesystem::path& tmp, const std::filesystem::path& target) {
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const bool synced = ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!synced && err != EINVAL && err != EROFS) fail_atomic(tmp, target, "cannot sync temporary file", err);
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0)
    fail_atomic(tmp, target, "cannot rename from temporary file " + tmp.filename().string(), errno);
}

void write_file_atomic(const std::filesystem::path& target, const std::string& content) {
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  const auto tmp = temporary_path_for(target);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    throw IoError(target.string() + ": cannot create temporary file " + tmp.string() + ": " + std::strerror(err));
  }
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      fail_atomic(tmp, target, "write failed", err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // Some file systems report a full disk only when the data is flushed.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    const int err = errno;
    ::close(fd);
    fail_atomic(tmp, target, "write failed", err);
  }
  if (::close(fd) != 0) fail_atomic(tmp, target, "write failed", errno);
  if (std::rename(tmp.c_str(), target.c_str()) != 0)
    fail_atomic(tmp, target, "cannot rename from temporary file " + tmp.filename().string(), errno);
}

}  // namespace songlines
