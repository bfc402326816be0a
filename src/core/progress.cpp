#include "core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace songlines {

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1 && std::getenv("SONGLINES_NO_PROGRESS") == nullptr; }

ProgressBar::ProgressBar(std::string label, int64_t total, ProgressMode mode)
    : label_(std::move(label)),
      total_(total),
      enabled_(mode == ProgressMode::kBar || (mode == ProgressMode::kAuto && stderr_is_terminal())),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(int64_t n, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  if (!detail.empty()) detail_ = detail;
  draw_locked(false);
}

void ProgressBar::set(int64_t done, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = done;
  if (!detail.empty()) detail_ = detail;
  draw_locked(false);
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ || !enabled_) return;
  draw_locked(true);
  std::fputc('\n', stderr);
  finished_ = true;
}

static std::string format_duration(double s) {
  char buf[32];
  if (s < 0 || s > 1e7) return "--:--";
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02d:%02d", t / 60, t % 60);
  return buf;
}

void ProgressBar::draw_locked(bool force) {
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100) && done_ != total_) return;
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  constexpr int kWidth = 28;
  std::string line;
  line.reserve(160);
  line += "\r";
  line += label_;
  line += " ";
  if (total_ > 0) {
    int filled = static_cast<int>(kWidth * std::min<double>(1.0, static_cast<double>(done_) / total_));
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    line += std::to_string(done_) + "/" + std::to_string(total_);
    double eta = rate > 0 ? (total_ - done_) / rate : -1;
    char buf[96];
    std::snprintf(buf, sizeof buf, " %.1f/s elapsed %s ETA %s", rate, format_duration(elapsed).c_str(),
                  format_duration(eta).c_str());
    line += buf;
  } else {
    line += std::to_string(done_);
  }
  if (!detail_.empty()) line += "  " + detail_;
  line += "\033[K";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace songlines
