#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace songlines {

std::filesystem::path temporary_path_for(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  auto name = target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return target.parent_path() / name;
}

void commit_atomic(const std::filesystem::path& tmp, const std::filesystem::path& target) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw IoError(target.string() + ": cannot rename from temporary file: " + std::strerror(err));
  }
}

void write_file_atomic(const std::filesystem::path& target, const std::string& content) {
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  auto tmp = temporary_path_for(target);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(target.string() + ": cannot open for writing (" + tmp.string() + ")");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw IoError(target.string() + ": write failed");
    }
  }
  commit_atomic(tmp, target);
}

}  // namespace songlines
