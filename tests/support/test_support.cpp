#include "support/test_support.h"

#include <unistd.h>

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
