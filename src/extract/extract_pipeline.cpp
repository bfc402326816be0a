#include "extract/extract_pipeline.h"

#include <algorithm>
#include <atomic>
#include <span>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/test_kill_point.h"
#include "features/stft.h"

namespace songlines::extract {

std::string failure_reason(const InputError& e, const std::string& file) {
  return e.path() == file ? e.reason() : std::string(e.what());
}

// ---- OutcomeQueue ----

OutcomeQueue::OutcomeQueue(size_t n, size_t window) : slots_(n), window_(std::max<size_t>(window, 1)) {}

bool OutcomeQueue::wait_for_room(size_t i) {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [&] { return stop_ || i < next_take_ + window_; });
  return !stop_;
}

void OutcomeQueue::put(size_t i, Outcome outcome) {
  {
    std::lock_guard lock(mutex_);
    slots_.at(i) = std::move(outcome);
  }
  filled_.notify_all();
}

Outcome OutcomeQueue::take(size_t i) {
  Outcome o;
  {
    std::unique_lock lock(mutex_);
    filled_.wait(lock, [&] { return slots_.at(i).has_value() || error_ != nullptr; });
    if (!slots_[i].has_value()) std::rethrow_exception(error_);
    o = std::move(*slots_[i]);
    slots_[i].reset();
    next_take_ = i + 1;
  }
  room_.notify_all();
  return o;
}

void OutcomeQueue::fail(std::exception_ptr error) {
  {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(error);
    stop_ = true;
  }
  filled_.notify_all();
  room_.notify_all();
}

void OutcomeQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  room_.notify_all();
}

bool OutcomeQueue::stopped() const {
  std::lock_guard lock(mutex_);
  return stop_;
}

namespace {

/// The outcome of one decoded track's features: its record, or why none could be made.
Outcome outcome_of(size_t task, features::TrackFeatures tf, double duration_s, const RecordMaker& make_record) {
  Outcome o;
  try {
    shards::TrackRecord rec = make_record(task, std::move(tf), duration_s);
    o.frames = rec.frames.empty() ? 0 : rec.frames.begin()->second.frames;
    o.track = std::move(rec);
  } catch (const std::exception& e) {
    o.error = e.what();
  }
  return o;
}

Outcome failed(std::string reason) {
  Outcome o;
  o.error = std::move(reason);
  return o;
}

// ---- per-track producer ----

class PerTrackProducer final : public TrackProducer {
 public:
  PerTrackProducer(const std::vector<ExtractTask>& tasks, const audio::LoadOptions& load, int jobs,
                   TrackCompute compute, RecordMaker make_record, OutcomeQueue& queue)
      : tasks_(tasks), load_(load), compute_(std::move(compute)), make_record_(std::move(make_record)), queue_(queue) {
    const size_t n_threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), tasks.size());
    for (size_t k = 0; k < n_threads; ++k) threads_.emplace_back([this] { run(); });
  }
  ~PerTrackProducer() override {
    queue_.stop();
    for (auto& t : threads_) t.join();
  }

 private:
  void run() {
    for (;;) {
      const size_t i = next_++;
      if (i >= tasks_.size() || !queue_.wait_for_room(i)) return;
      queue_.put(i, process(i));
    }
  }
  Outcome process(size_t i) {
    const std::string file = tasks_[i].path.string();
    try {
      const audio::MonoAudio audio = audio::load_audio(file, load_);
      return outcome_of(i, compute_(audio), audio.duration_s(), make_record_);
    } catch (const InputError& e) {
      return failed(failure_reason(e, file));
    } catch (const std::exception& e) {
      return failed(e.what());
    }
  }

  const std::vector<ExtractTask>& tasks_;
  const audio::LoadOptions load_;
  const TrackCompute compute_;
  const RecordMaker make_record_;
  OutcomeQueue& queue_;
  std::atomic<size_t> next_{0};
  std::vector<std::thread> threads_;
};

// ---- device producer: decode threads -> batcher -> one engine thread ----

class DeviceProducer final : public TrackProducer {
 public:
  DeviceProducer(const std::vector<ExtractTask>& tasks, const audio::LoadOptions& load, int jobs,
                 std::unique_ptr<features::DeviceFeatureEngine> engine, RecordMaker make_record, OutcomeQueue& queue)
      : tasks_(tasks),
        load_(load),
        engine_(std::move(engine)),
        make_record_(std::move(make_record)),
        queue_(queue),
        decoded_(tasks.size()),
        budget_frames_(engine_->engine_options().max_batch_frames),
        max_pending_samples_(2 * budget_frames_ * engine_->options().stft.hop_length) {
    const size_t n_threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), tasks.size());
    for (size_t k = 0; k < n_threads; ++k) decoders_.emplace_back([this] { decode_loop(); });
    engine_thread_ = std::thread([this] { engine_loop(); });
  }
  int64_t device_batches() const override { return batches_; }
  ~DeviceProducer() override {
    stop();
    queue_.stop();
    engine_thread_.join();
    for (auto& t : decoders_) t.join();
  }

 private:
  struct Decoded {
    std::optional<audio::MonoAudio> audio;
    std::string error;  // when !audio
  };

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    decoded_cv_.notify_all();
    room_cv_.notify_all();
  }

  /// Whether track i may be decoded now: the next track the batcher needs always may; others while the decoded
  /// audio not yet released stays under two batches' worth.
  bool room_for(size_t i) const { return i == released_ || pending_samples_ < max_pending_samples_; }

  void decode_loop() {
    for (;;) {
      const size_t i = next_decode_++;
      if (i >= tasks_.size()) return;
      {
        std::unique_lock lock(mutex_);
        room_cv_.wait(lock, [&] { return stop_ || room_for(i); });
        if (stop_) return;
      }
      Decoded d;
      const std::string file = tasks_[i].path.string();
      try {
        d.audio = audio::load_audio(file, load_);
      } catch (const InputError& e) {
        d.error = failure_reason(e, file);
      } catch (const std::exception& e) {
        d.error = e.what();
      }
      {
        std::lock_guard lock(mutex_);
        if (d.audio) pending_samples_ += static_cast<int64_t>(d.audio->samples.size());
        decoded_[i] = std::move(d);
      }
      decoded_cv_.notify_all();
    }
  }

  void engine_loop() {
    try {
      for (size_t i = 0; i < tasks_.size();) {
        const std::optional<size_t> end = gather_batch(i);
        if (!end || !run_batch(i, *end)) return;
        i = *end;
      }
    } catch (...) {  // a device failure: the job stops (per-track problems never reach here)
      queue_.fail(std::current_exception());
      stop();
    }
  }

  /// The batch starting at track i (every track before it released): tracks in input order while their frames
  /// fit the budget (the first one always; a longer one alone, for the engine to chunk). Stops early when the
  /// next track is not decoded and cannot be (the decoders wait for memory). nullopt when stopped.
  std::optional<size_t> gather_batch(size_t i) {
    const features::StftOptions& stft = engine_->options().stft;
    int64_t frames = 0;
    size_t b = i;
    std::unique_lock lock(mutex_);
    while (b < tasks_.size()) {
      decoded_cv_.wait(lock, [&] { return stop_ || decoded_[b].has_value() || (b > i && !room_for(b)); });
      if (stop_) return std::nullopt;
      if (!decoded_[b].has_value()) break;
      const Decoded& d = *decoded_[b];
      const int64_t t = d.audio ? features::stft_num_frames(static_cast<int64_t>(d.audio->samples.size()), stft) : 0;
      if (b > i && frames + t > budget_frames_) break;
      frames += t;
      ++b;
    }
    return b;
  }

  /// Runs tracks [i, end) as one engine call, releases their audio, and hands their outcomes to the writer in
  /// order. false when the queue was stopped.
  bool run_batch(size_t i, size_t end) {
    std::vector<std::optional<Outcome>> outcomes(end - i);
    std::vector<std::span<const float>> spans;
    std::vector<size_t> members;
    for (size_t k = i; k < end; ++k) {  // slots [i, end) are the engine thread's until released
      const Decoded& d = *decoded_[k];
      const std::string file = tasks_[k].path.string();
      if (!d.audio) {
        outcomes[k - i] = failed(d.error);
        continue;
      }
      try {
        engine_->check(d.audio->samples, file);
      } catch (const InputError& e) {
        outcomes[k - i] = failed(failure_reason(e, file));
        continue;
      }
      spans.emplace_back(d.audio->samples);
      members.push_back(k);
    }
    if (!spans.empty()) {
      // Fault injection for the tests (SONGLINES_TEST_KILL_AT=device-batch-error:N): the N-th batch fails as a
      // device would, by throwing instead of killing the process.
      if (test_kill_point_reached("device-batch-error"))
        throw DeviceError("device engine: injected failure of batch " + std::to_string(i) + ".." + std::to_string(end));
      std::vector<features::TrackFeatures> tf = engine_->compute_batch(spans);
      batches_ += engine_->last_batch_count();
      for (size_t j = 0; j < members.size(); ++j)
        outcomes[members[j] - i] =
            outcome_of(members[j], std::move(tf[j]), decoded_[members[j]]->audio->duration_s(), make_record_);
    }
    {
      std::lock_guard lock(mutex_);
      for (size_t k = i; k < end; ++k) {
        if (decoded_[k]->audio) pending_samples_ -= static_cast<int64_t>(decoded_[k]->audio->samples.size());
        decoded_[k].reset();
      }
      released_ = end;
    }
    room_cv_.notify_all();
    for (size_t k = i; k < end; ++k) {
      if (!queue_.wait_for_room(k)) return false;
      queue_.put(k, std::move(*outcomes[k - i]));
    }
    return true;
  }

  const std::vector<ExtractTask>& tasks_;
  const audio::LoadOptions load_;
  const std::unique_ptr<features::DeviceFeatureEngine> engine_;
  const RecordMaker make_record_;
  OutcomeQueue& queue_;
  std::mutex mutex_;
  std::condition_variable decoded_cv_, room_cv_;
  std::vector<std::optional<Decoded>> decoded_;  // by task: decoded and not yet released
  size_t released_ = 0;                          // tracks before this one are done and their audio freed
  int64_t pending_samples_ = 0;                  // decoded samples not yet released
  bool stop_ = false;
  const int64_t budget_frames_;
  const int64_t max_pending_samples_;
  std::atomic<size_t> next_decode_{0};
  std::atomic<int64_t> batches_{0};
  std::vector<std::thread> decoders_;
  std::thread engine_thread_;
};

}  // namespace

std::unique_ptr<TrackProducer> start_per_track_producer(const std::vector<ExtractTask>& tasks,
                                                        const audio::LoadOptions& load, int jobs,
                                                        TrackCompute compute, RecordMaker make_record,
                                                        OutcomeQueue& queue) {
  return std::make_unique<PerTrackProducer>(tasks, load, jobs, std::move(compute), std::move(make_record), queue);
}

std::unique_ptr<TrackProducer> start_device_producer(const std::vector<ExtractTask>& tasks,
                                                     const audio::LoadOptions& load, int jobs,
                                                     std::unique_ptr<features::DeviceFeatureEngine> engine,
                                                     RecordMaker make_record, OutcomeQueue& queue) {
  return std::make_unique<DeviceProducer>(tasks, load, jobs, std::move(engine), std::move(make_record), queue);
}

}  // namespace songlines::extract
