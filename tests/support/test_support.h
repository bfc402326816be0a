// Helpers shared by the test executables: data paths, temporary directories, relative-error comparison that
// prints the worst element, and running the songlines binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace songlines::testing {

/// tests/data/<relative>.
std::filesystem::path data_path(const std::string& relative);
/// Path of the built songlines binary.
std::filesystem::path binary_path();
/// Project source root.
std::filesystem::path source_dir();

/// A fresh directory removed at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// A real, small file system for full-disk tests: a tmpfs of `size` ("2M") mounted on a fresh directory. The
/// process first moves into a private mount namespace where it can, so the mount disappears with the process
/// even if a test crashes; the destructor unmounts (lazily if busy) and removes the directory in every case.
/// mounted() is false where mount(2) is not permitted (not root, no CAP_SYS_ADMIN): tests then GTEST_SKIP with
/// skip_reason().
class TmpfsMount {
 public:
  explicit TmpfsMount(const std::string& size = "2M");
  ~TmpfsMount();
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  std::string skip_reason() const;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  /// Bytes free on the mount (statvfs).
  int64_t free_bytes() const;
  /// Writes a filler file until the disk is full, then gives back `leave_bytes` (rounded to pages).
  void fill_leaving(int64_t leave_bytes);
  /// Unmounts now without forcing; false (and errno's text in *why) when the mount is busy, e.g. because a
  /// file on it is still open.
  bool unmount(std::string* why = nullptr);

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
  std::string error_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};
/// Runs a shell command line, capturing stdout+stderr.
CommandResult run_command(const std::string& command_line);
/// Runs `songlines <args>`.
CommandResult run_songlines(const std::string& args);

/// Relative L2 error ||a-b|| / max(||b||, floor); on failure the message names the worst element.
::testing::AssertionResult RelativeL2Near(const std::vector<double>& actual, const std::vector<double>& expected,
                                          double tolerance, const std::string& what = "", int64_t row_length = 0);
/// Max abs error; the message names the worst element (row/col when row_length > 0).
::testing::AssertionResult MaxAbsNear(const std::vector<double>& actual, const std::vector<double>& expected,
                                      double tolerance, const std::string& what = "", int64_t row_length = 0);

}  // namespace songlines::testing
