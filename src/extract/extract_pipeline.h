// The producers of `songlines extract` (docs/extract.md; docs/cuda.md "Production path"): the work list's
// files in, one outcome per file out (a shard record, or the reason the file failed), handed to the shard writer
// in input order through an OutcomeQueue.
//
//   per-track producer (reference engine; the old CUDA engine): `jobs` threads, each decoding one file and
//     computing its features, one track at a time;
//   device producer (the device engine, --device host|cuda): `jobs` decode threads -> a batcher that packs the
//     decoded tracks, in input order, into ragged batches of the engine's frame budget -> one engine thread
//     (one engine per device) -> records.
//
// A file that cannot be decoded, or whose samples the engine refuses, is a per-track error; anything else the
// engine throws mid-run (a device failure) stops the producers and is rethrown to the writer: the job fails,
// the shards already committed stay, and --resume continues.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "core/error.h"
#include "extract/catalog.h"
#include "features/device_engine.h"
#include "features/feature_extractor.h"
#include "shards/shard.h"

namespace songlines::extract {

/// One file of the work list.
struct ExtractTask {
  std::filesystem::path path;
  std::string id;
  std::optional<CatalogEntry> meta;
};

/// One file's outcome.
struct Outcome {
  std::optional<shards::TrackRecord> track;
  std::string error;  ///< when !track
  int64_t frames = 0;
};

/// The reason a file failed: the InputError's reason when it names the file, else its whole message.
std::string failure_reason(const InputError& e, const std::string& file);

/// Ordered hand-over from producers to the writer: slot i is filled once, in any order; a producer waits while i
/// is `window` or more past the next slot the writer takes, so finished outcomes held in memory stay bounded.
class OutcomeQueue {
 public:
  OutcomeQueue(size_t n, size_t window);
  /// Blocks until slot i may be filled; false when the queue was stopped (the producer then returns).
  bool wait_for_room(size_t i);
  void put(size_t i, Outcome outcome);
  /// Blocks until slot i is filled and returns it; rethrows a producer's failure (fail()) instead.
  Outcome take(size_t i);
  /// A producer failed: the writer's next take() rethrows it; every producer's wait ends.
  void fail(std::exception_ptr error);
  /// Ends every wait (the writer is done or failed).
  void stop();
  bool stopped() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable filled_, room_;
  std::vector<std::optional<Outcome>> slots_;
  size_t window_;
  size_t next_take_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

/// Builds task i's shard record from its features (ids, path, duration, catalog metadata, summaries); throws for
/// a record that cannot be made (a per-track error).
using RecordMaker = std::function<shards::TrackRecord(size_t task, features::TrackFeatures tf, double duration_s)>;

/// Threads that fill an OutcomeQueue; the destructor stops the queue and joins them.
class TrackProducer {
 public:
  virtual ~TrackProducer() = default;
  /// Device batches run so far (the device producer; 0 for the per-track one).
  virtual int64_t device_batches() const { return 0; }
};

/// Per-track producer: `jobs` threads each decode one file and compute its features with `compute`
/// (thread-safe), one track at a time.
using TrackCompute = std::function<features::TrackFeatures(const audio::MonoAudio& audio)>;
std::unique_ptr<TrackProducer> start_per_track_producer(const std::vector<ExtractTask>& tasks,
                                                        const audio::LoadOptions& load, int jobs,
                                                        TrackCompute compute, RecordMaker make_record,
                                                        OutcomeQueue& queue);

/// Device producer: `jobs` decode threads feed a batcher that packs decoded tracks, in input order, until a
/// batch holds the engine's max_batch_frames frames (a longer track is one batch; the engine cuts it into
/// chunks); one thread runs the batches on `engine`. Decoding runs ahead by at most two batches' worth of audio
/// (plus one track per decode thread), so memory does not grow with the work list.
std::unique_ptr<TrackProducer> start_device_producer(const std::vector<ExtractTask>& tasks,
                                                     const audio::LoadOptions& load, int jobs,
                                                     std::unique_ptr<features::DeviceFeatureEngine> engine,
                                                     RecordMaker make_record, OutcomeQueue& queue);

}  // namespace songlines::extract
