#include "bench/page_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "core/error.h"

namespace songlines::bench {

namespace fs = std::filesystem;

// Drops the files' pages from the OS page cache (clean pages only; the files are synced first).
void drop_from_page_cache(const std::vector<fs::path>& files) {
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) throw IoError(f.string() + ": cannot open to drop it from the page cache");
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Reads every byte of the files once (so that they sit in the OS page cache).
void warm_page_cache(const std::vector<fs::path>& files) {
  std::vector<char> buf(1 << 20);
  for (const auto& f : files) {
    FILE* in = std::fopen(f.c_str(), "rb");
    if (!in) throw IoError(f.string() + ": cannot open");
    while (std::fread(buf.data(), 1, buf.size(), in) > 0) {
    }
    std::fclose(in);
  }
}

}  // namespace songlines::bench
