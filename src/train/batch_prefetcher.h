// A background thread that makes batches 0..count-1 in order, at most `depth` ahead of the consumer, so that
// reading the next batch's crops from shards overlaps training on the current one (docs/scaling.md "Data
// larger than memory"). The batches are the ones a synchronous loop would make, in the same order: the producer
// is called once per batch index, from one thread, in increasing order, so any random draws it makes happen in
// the synchronous order too. An exception in the producer is rethrown by next() for the batch it failed on.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace songlines::train {

template <class Batch>
class BatchPrefetcher {
 public:
  using Producer = std::function<Batch(int64_t index)>;

  BatchPrefetcher(int64_t count, Producer produce, int depth = 2)
      : count_(count), depth_(depth < 1 ? 1 : depth), produce_(std::move(produce)), thread_([this] { run(); }) {}
  /// Stops the producer after the batch it is making (a consumer that leaves early, e.g. on an exception).
  ~BatchPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  /// The next batch, waiting for it when it is not made yet.
  Batch next() {
    if (taken_++ >= count_) throw std::logic_error("BatchPrefetcher::next: all batches were taken");
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || error_; });
    if (ready_.empty()) std::rethrow_exception(error_);  // batches made before the failure are handed out first
    Batch b = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    changed_.notify_all();
    return b;
  }

 private:
  void run() {
    for (int64_t i = 0; i < count_; ++i) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || static_cast<int>(ready_.size()) < depth_; });
        if (stop_) return;
      }
      try {
        Batch b = produce_(i);
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.push_back(std::move(b));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        changed_.notify_all();
        return;
      }
      changed_.notify_all();
    }
  }

  const int64_t count_;
  int64_t taken_ = 0;  // the consumer's thread only
  const int depth_;
  Producer produce_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after every member above is constructed
};

}  // namespace songlines::train
