// Where the VAE's training crops come from (generate/vae_training.h): tracks held in memory (MelTrack), or
// log-mel frames read on demand from shards through a train::FrameStore with a memory budget (docs/scaling.md
// "Data larger than memory"). The trainer draws the same tracks and windows from either, and both give the same
// crop values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "geo/great_circle.h"
#include "models/torch_compat.h"
#include "shards/shard.h"
#include "train/frame_store.h"

namespace songlines::generate {

/// One track: its log-mel frames and place.
struct MelTrack {
  std::string id;
  geo::LatLon place;
  torch::Tensor mel_db;  ///< [frames, n_mels] float32 (CPU)
};

class MelCropSource {
 public:
  virtual ~MelCropSource() = default;
  virtual int64_t size() const = 0;                     ///< tracks
  virtual int64_t frames(int64_t track) const = 0;      ///< frames of a track
  virtual int64_t n_mels() const = 0;                   ///< width of every track's frames
  virtual const std::string& id(int64_t track) const = 0;
  virtual geo::LatLon place(int64_t track) const = 0;
  /// Frames [start, start + count) of a track: [count, n_mels] float32 on the CPU.
  virtual torch::Tensor crop(int64_t track, int64_t start, int64_t count) const = 0;
  /// True when crops are read from storage: the trainer then reads the next batch while one trains.
  virtual bool streamed() const = 0;
};

/// Tracks in memory; the source refers to them (they must outlive it) and copies nothing.
class InMemoryMelSource : public MelCropSource {
 public:
  explicit InMemoryMelSource(std::vector<const MelTrack*> tracks);
  int64_t size() const override { return static_cast<int64_t>(tracks_.size()); }
  int64_t frames(int64_t track) const override { return tracks_[static_cast<size_t>(track)]->mel_db.size(0); }
  int64_t n_mels() const override;
  const std::string& id(int64_t track) const override { return tracks_[static_cast<size_t>(track)]->id; }
  geo::LatLon place(int64_t track) const override { return tracks_[static_cast<size_t>(track)]->place; }
  torch::Tensor crop(int64_t track, int64_t start, int64_t count) const override;
  bool streamed() const override { return false; }

 private:
  std::vector<const MelTrack*> tracks_;
};

/// Some tracks of a shard, by their index in it.
struct ShardTracks {
  std::filesystem::path shard;
  std::vector<int64_t> tracks;
};

/// Frames of one frame array (mel_db) of shard tracks, read on demand.
class ShardMelSource : public MelCropSource {
 public:
  /// The tracks of the shards (in order) with finite coordinates and at least min_frames frames of `feature`;
  /// nothing but the layout is read here. Throws InputError naming a shard without the array.
  ShardMelSource(const std::vector<std::filesystem::path>& shards, const std::string& feature, int64_t min_frames,
                 train::FrameStoreOptions store_options = {});
  /// The given tracks, shard by shard in the order given (track i of the source is the i-th named); the caller
  /// chose them (their places are taken as they are). Throws InputError naming a shard without the array.
  ShardMelSource(const std::vector<ShardTracks>& tracks, const std::string& feature,
                 train::FrameStoreOptions store_options = {});
  int64_t size() const override { return store_->size(); }
  int64_t frames(int64_t track) const override { return store_->length(track); }
  int64_t n_mels() const override { return store_->dim(); }
  const std::string& id(int64_t track) const override { return ids_[static_cast<size_t>(track)]; }
  geo::LatLon place(int64_t track) const override { return places_[static_cast<size_t>(track)]; }
  torch::Tensor crop(int64_t track, int64_t start, int64_t count) const override;
  bool streamed() const override { return true; }
  const train::FrameStore& store() const { return *store_; }

 private:
  void add(const shards::ShardReader& reader, const std::string& feature, const std::vector<int64_t>& tracks);

  std::shared_ptr<train::FrameStore> store_;
  std::vector<std::string> ids_;
  std::vector<geo::LatLon> places_;
};

/// Some tracks of another source in a given order (track i here is track tracks[i] there): a split of one set
/// into training and held-out tracks that share one source (and, streamed, one cache). The base must outlive it.
class MelSourceSelection : public MelCropSource {
 public:
  MelSourceSelection(const MelCropSource& base, std::vector<int64_t> tracks);
  int64_t size() const override { return static_cast<int64_t>(tracks_.size()); }
  int64_t frames(int64_t track) const override { return base_.frames(at(track)); }
  int64_t n_mels() const override { return base_.n_mels(); }
  const std::string& id(int64_t track) const override { return base_.id(at(track)); }
  geo::LatLon place(int64_t track) const override { return base_.place(at(track)); }
  torch::Tensor crop(int64_t track, int64_t start, int64_t count) const override {
    return base_.crop(at(track), start, count);
  }
  bool streamed() const override { return base_.streamed(); }

 private:
  int64_t at(int64_t track) const { return tracks_[static_cast<size_t>(track)]; }
  const MelCropSource& base_;
  std::vector<int64_t> tracks_;
};

}  // namespace songlines::generate
