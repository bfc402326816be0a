#include "generate/mel_crop_source.h"

#include <cmath>

#include "core/error.h"
#include "shards/shard.h"

namespace songlines::generate {

InMemoryMelSource::InMemoryMelSource(std::vector<const MelTrack*> tracks) : tracks_(std::move(tracks)) {}

int64_t InMemoryMelSource::n_mels() const { return tracks_.empty() ? 0 : tracks_.front()->mel_db.size(1); }

torch::Tensor InMemoryMelSource::crop(int64_t track, int64_t start, int64_t count) const {
  return tracks_[static_cast<size_t>(track)]->mel_db.narrow(0, start, count);
}

ShardMelSource::ShardMelSource(const std::vector<std::filesystem::path>& shards, const std::string& feature,
                               int64_t min_frames, train::FrameStoreOptions store_options)
    : store_(std::make_shared<train::FrameStore>(std::vector<std::string>{feature}, store_options)) {
  for (const auto& file : shards) {
    shards::ShardReader r(file);
    std::vector<int64_t> kept;
    for (int64_t t = 0; t < r.size(); ++t) {
      if (!std::isfinite(r.latitudes()[t]) || !std::isfinite(r.longitudes()[t])) continue;
      if (r.offsets()[t + 1] - r.offsets()[t] < min_frames) continue;
      kept.push_back(t);
    }
    add(r, feature, kept);
  }
}

ShardMelSource::ShardMelSource(const std::vector<ShardTracks>& tracks, const std::string& feature,
                               train::FrameStoreOptions store_options)
    : store_(std::make_shared<train::FrameStore>(std::vector<std::string>{feature}, store_options)) {
  for (const auto& s : tracks) add(shards::ShardReader(s.shard), feature, s.tracks);
}

void ShardMelSource::add(const shards::ShardReader& r, const std::string& feature, const std::vector<int64_t>& tracks) {
  if (!r.has_frames(feature)) throw InputError(r.path().string(), "no /frames/" + feature + " array");
  for (const int64_t t : tracks) {
    if (t < 0 || t >= r.size())
      throw UsageError("ShardMelSource: track " + std::to_string(t) + " of " + r.path().string() + " out of range");
    ids_.push_back(r.ids()[t]);
    places_.push_back({r.latitudes()[t], r.longitudes()[t]});
  }
  store_->add(r, tracks);
}

MelSourceSelection::MelSourceSelection(const MelCropSource& base, std::vector<int64_t> tracks)
    : base_(base), tracks_(std::move(tracks)) {
  for (const int64_t t : tracks_)
    if (t < 0 || t >= base_.size())
      throw UsageError("MelSourceSelection: track " + std::to_string(t) + " out of range (" +
                       std::to_string(base_.size()) + " tracks)");
}

torch::Tensor ShardMelSource::crop(int64_t track, int64_t start, int64_t count) const {
  auto out = torch::empty({count, store_->dim()}, torch::kFloat32);
  store_->read(track, start, count, out.data_ptr<float>());
  return out;
}

}  // namespace songlines::generate
