#include "core/jsonl_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/test_kill_point.h"

namespace songlines {

namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what, int err) {
  throw IoError(path.string() + ": " + what + ": " + std::strerror(err));
}

// Offset just past the last '\n' of the file open on fd (0 when there is none), reading backwards in blocks.
off_t end_of_last_line(int fd, off_t size, const std::filesystem::path& path) {
  constexpr off_t kBlock = 4096;
  char buf[kBlock];
  for (off_t end = size; end > 0;) {
    const off_t start = end > kBlock ? end - kBlock : 0;
    const ssize_t n = ::pread(fd, buf, static_cast<size_t>(end - start), start);
    if (n < 0) fail(path, "cannot read", errno);
    for (ssize_t i = n - 1; i >= 0; --i)
      if (buf[i] == '\n') return start + i + 1;
    end = start;
  }
  return 0;
}

}  // namespace

JsonlLog::JsonlLog(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, "cannot open for appending", errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail(path, "cannot stat", err);
  }
  if (st.st_size > 0) {
    const off_t keep = end_of_last_line(fd_, st.st_size, path);
    if (keep != st.st_size) {
      if (::ftruncate(fd_, keep) != 0) {
        const int err = errno;
        ::close(fd_);
        fail(path, "cannot cut the torn last line", err);
      }
      torn_bytes_removed_ = st.st_size - keep;
    }
  }
}

JsonlLog::~JsonlLog() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlLog::append(const Json& record) {
  const std::string line = record.dump() + "\n";
  size_t size = line.size();
  // Test hook: a kill in the middle of a line, as a kill between two buffered writes would leave it.
  if (test_kill_point_reached("jsonl-mid-line")) size /= 2;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, line.data() + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path_, "cannot append a line", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (size != line.size()) test_kill_now();
}

}  // namespace songlines
