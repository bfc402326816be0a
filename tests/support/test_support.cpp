#include "support/test_support.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

namespace songlines::testing {

std::filesystem::path data_path(const std::string& relative) { return std::filesystem::path(SONGLINES_TEST_DATA) / relative; }
std::filesystem::path binary_path() { return SONGLINES_BINARY; }
std::filesystem::path source_dir() { return SONGLINES_SOURCE_DIR; }

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "songlines-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TmpfsMount::TmpfsMount(const std::string& size) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "songlines-tmpfs-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
  // A private mount namespace (once per process, where allowed): a crashed test cannot leave the mount behind.
  static const bool private_namespace = [] {
    return ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  }();
  (void)private_namespace;
  const std::string options = "size=" + size + ",mode=0755";
  if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
    mounted_ = true;
  } else {
    error_ = std::strerror(errno);
  }
}

TmpfsMount::~TmpfsMount() {
  if (mounted_ && !unmount()) ::umount2(path_.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool TmpfsMount::unmount(std::string* why) {
  if (!mounted_) return true;
  if (::umount2(path_.c_str(), 0) == 0) {
    mounted_ = false;
    return true;
  }
  if (why) *why = std::strerror(errno);
  return false;
}

std::string TmpfsMount::skip_reason() const {
  return "cannot mount a tmpfs on " + path_.string() + " (" + error_ +
         "): full-disk tests need root or CAP_SYS_ADMIN, as in the project's container";
}

int64_t TmpfsMount::free_bytes() const {
  struct statvfs st {};
  if (::statvfs(path_.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

void TmpfsMount::fill_leaving(int64_t leave_bytes) {
  const auto filler = path_ / ".filler";
  const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + filler.string());
  std::vector<char> block(64 * 1024, 'x');
  int64_t written = 0;
  for (;;) {
    const ssize_t n = ::write(fd, block.data(), block.size());
    if (n <= 0) break;
    written += n;
  }
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  const int64_t keep = std::max<int64_t>(0, written - (leave_bytes + page - 1) / page * page);
  if (::ftruncate(fd, keep) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot truncate " + filler.string());
  }
  ::close(fd);
}

CommandResult run_command(const std::string& command_line) {
  CommandResult r;
  std::string cmd = command_line + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult run_songlines(const std::string& args) {
  return run_command("SONGLINES_NO_PROGRESS=1 '" + binary_path().string() + "' " + args);
}

static std::string element_name(size_t i, int64_t row_length) {
  if (row_length <= 0) return "[" + std::to_string(i) + "]";
  return "[" + std::to_string(i / row_length) + "," + std::to_string(i % row_length) + "]";
}

::testing::AssertionResult RelativeL2Near(const std::vector<double>& actual, const std::vector<double>& expected,
                                          double tolerance, const std::string& what, int64_t row_length) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " != expected " << expected.size();
  double num = 0, den = 0, worst = -1;
  size_t worst_i = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i]))
      return ::testing::AssertionFailure() << what << ": non-finite value " << actual[i] << " at " << element_name(i, row_length);
    double d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
    if (std::abs(d) > worst) {
      worst = std::abs(d);
      worst_i = i;
    }
  }
  double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  if (den == 0) rel = std::sqrt(num);
  std::ostringstream msg;
  msg << what << ": relative L2 " << rel << " (tolerance " << tolerance << "); worst element "
      << element_name(worst_i, row_length) << " actual " << (actual.empty() ? 0 : actual[worst_i]) << " expected "
      << (expected.empty() ? 0 : expected[worst_i]);
  if (rel <= tolerance) return ::testing::AssertionSuccess() << msg.str();
  return ::testing::AssertionFailure() << msg.str();
}

::testing::AssertionResult MaxAbsNear(const std::vector<double>& actual, const std::vector<double>& expected,
                                      double tolerance, const std::string& what, int64_t row_length) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " != expected " << expected.size();
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i]))
      return ::testing::AssertionFailure() << what << ": non-finite value at " << element_name(i, row_length);
    double d = std::abs(actual[i] - expected[i]);
    if (d > worst) {
      worst = d;
      worst_i = i;
    }
  }
  std::ostringstream msg;
  msg << what << ": max abs error " << worst << " (tolerance " << tolerance << ") at " << element_name(worst_i, row_length);
  if (!actual.empty()) msg << " actual " << actual[worst_i] << " expected " << expected[worst_i];
  if (worst <= tolerance) return ::testing::AssertionSuccess() << msg.str();
  return ::testing::AssertionFailure() << msg.str();
}

}  // namespace songlines::testing
