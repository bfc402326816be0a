#include "collect/token_bucket.h"

#include <algorithm>
#include <thread>

namespace songlines::collect {

TokenBucket::TokenBucket(double rate_per_second, double burst)
    : rate_(rate_per_second), burst_(burst), tokens_(burst), last_(Clock::now()) {}

void TokenBucket::acquire() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto now = Clock::now();
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return;
    }
    // Sleeping with the lock held keeps waiters in line; the bucket is per host, so nobody else waits on it.
    std::this_thread::sleep_for(std::chrono::duration<double>((1.0 - tokens_) / rate_));
  }
}

}  // namespace songlines::collect
