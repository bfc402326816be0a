// CPU time consumed by the calling thread (POSIX CLOCK_THREAD_CPUTIME_ID). Benchmarks report it beside wall time:
// on a shared machine a thread that waits for a core accrues wall time but not CPU time.
#pragma once

#include <ctime>

namespace songlines {

/// Seconds of CPU time the calling thread has used so far (0 if the clock is unavailable).
inline double thread_cpu_seconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0.0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace songlines
