// A benchmark's scratch folder for the data it writes: <temp>/songlines-bench-<name>-<pid>, made at once and
// removed with everything in it when the benchmark ends (also on an exception).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace songlines::bench {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("songlines-bench-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace songlines::bench
