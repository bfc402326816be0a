// A token bucket that spaces requests to one host: `rate` tokens per second, at most `burst` saved up.
// With burst 1 (the default) consecutive requests start at least 1/rate seconds apart.
#pragma once

#include <chrono>
#include <mutex>

namespace songlines::collect {

class TokenBucket {
 public:
  explicit TokenBucket(double rate_per_second, double burst = 1.0);
  /// Blocks until a token is available, then takes it. Thread-safe.
  void acquire();

 private:
  using Clock = std::chrono::steady_clock;
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
  std::mutex mutex_;
};

}  // namespace songlines::collect
