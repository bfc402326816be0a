// Progress reporting for long work: a redrawn bar with count, rate and ETA on a terminal; on a pipe or in a
// log, nothing but an occasional plain line (so logs stay quiet).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace songlines {

enum class ProgressMode { kAuto, kBar, kQuiet };

class ProgressBar {
 public:
  /// label: what is counted ("files", "epochs"); total: 0 when unknown.
  ProgressBar(std::string label, int64_t total, ProgressMode mode = ProgressMode::kAuto);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Thread-safe. detail is a short suffix ("loss 0.42").
  void advance(int64_t n = 1, const std::string& detail = "");
  void set(int64_t done, const std::string& detail = "");
  /// Prints the final line (terminal only).
  void finish();
  bool enabled() const { return enabled_; }

 private:
  void draw_locked(bool force);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string detail_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mutex_;
};

/// True when stderr is a terminal and SONGLINES_NO_PROGRESS is unset.
bool stderr_is_terminal();

}  // namespace songlines
