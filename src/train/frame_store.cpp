#include "train/frame_store.h"

#include <algorithm>
#include <chrono>
#include <list>
#include <mutex>
#include <unordered_map>

#include "core/error.h"

namespace songlines::train {

namespace fs = std::filesystem;

std::vector<int64_t> frame_block_dims(const shards::ShardReader& reader, const std::vector<std::string>& blocks) {
  std::vector<int64_t> dims;
  for (const auto& b : blocks) {
    if (!reader.has_frames(b))
      throw InputError(reader.path().string(), "no frame array /frames/" + b + " (temporal models need frames)");
    dims.push_back(reader.frame_dim(b));
  }
  return dims;
}

namespace {
struct PageKey {
  int64_t track;
  int64_t page;
  bool operator==(const PageKey&) const = default;
};
struct PageKeyHash {
  size_t operator()(const PageKey& k) const {
    return std::hash<int64_t>()(k.track) ^ (std::hash<int64_t>()(k.page) * 0x9e3779b97f4a7c15ull);
  }
};
}  // namespace

struct FrameStore::Impl {
  std::vector<std::string> blocks;
  FrameStoreOptions options;
  int64_t dim = 0;
  int64_t total_frames = 0;

  struct Shard {
    fs::path path;
    uintmax_t bytes = 0;                          // file size when added: a change means truncated or rewritten
    std::unique_ptr<shards::ShardReader> reader;  // null while closed
    std::list<size_t>::iterator open_pos;         // its place in open_order while open
  };
  // Opening and closing files is caching, not a change of what the store holds: both are mutable.
  mutable std::vector<Shard> shards;
  mutable std::list<size_t> open_order;  // open shards, most recently used first
  std::vector<int64_t> first_block_dims;  // every shard's blocks must have these widths

  struct TrackRef {
    int32_t shard;
    int64_t first_row;  // in the shard's /frames arrays
    int64_t frames;
  };
  std::vector<TrackRef> tracks;

  // The page cache: pages [rows <= page_frames, D] float32, most recently used first.
  struct Page {
    PageKey key;
    std::vector<float> values;
  };
  mutable std::mutex mutex;
  mutable std::list<Page> pages;
  mutable std::unordered_map<PageKey, std::list<Page>::iterator, PageKeyHash> index;
  mutable std::vector<float> uncached;  // a page larger than the whole budget is read here and not kept
  mutable FrameStoreStats stats;

  int64_t page_bytes(const Page& p) const { return static_cast<int64_t>(p.values.size() * sizeof(float)); }

  const shards::ShardReader& open_shard(size_t s) const {
    Shard& sh = shards[s];
    if (sh.reader) {
      open_order.splice(open_order.begin(), open_order, sh.open_pos);
      return *sh.reader;
    }
    std::error_code ec;
    if (!fs::exists(sh.path, ec))
      throw InputError(sh.path.string(), "disappeared during the run (its frames are read on demand)");
    while (static_cast<int>(open_order.size()) >= std::max(1, options.max_open_files)) {
      shards[open_order.back()].reader.reset();
      open_order.pop_back();
    }
    auto reader = std::make_unique<shards::ShardReader>(sh.path, shards::ShardReaderOptions{options.chunk_cache_bytes});
    if (frame_block_dims(*reader, blocks) != first_block_dims)
      throw InputError(sh.path.string(), "frame arrays changed during the run (the shard was rewritten)");
    sh.reader = std::move(reader);
    open_order.push_front(s);
    sh.open_pos = open_order.begin();
    return *sh.reader;
  }
  /// Reads page `page` of a track from its shard into out ([rows, D]).
  void read_page(int64_t track, int64_t page, std::vector<float>& out) const {
    const auto started = std::chrono::steady_clock::now();
    const TrackRef& t = tracks[static_cast<size_t>(track)];
    const Shard& sh = shards[static_cast<size_t>(t.shard)];
    const int64_t begin = page * options.page_frames;
    const int64_t rows = std::min(options.page_frames, t.frames - begin);
    const int64_t row0 = t.first_row + begin;
    // HDF5 reads a truncated file's missing bytes as zeros, so a shard cut short while a run reads it would give
    // silent zeros: its size is checked before every read from it.
    std::error_code ec;
    const uintmax_t now = fs::file_size(sh.path, ec);
    if (ec) throw InputError(sh.path.string(), "disappeared during the run (" + ec.message() + ")");
    if (now != sh.bytes)
      throw InputError(sh.path.string(), "changed size during the run (" + std::to_string(sh.bytes) + " bytes when opened, " +
                                             std::to_string(now) + " now): truncated or rewritten, so its frames " +
                                             "(rows " + std::to_string(row0) + ".." + std::to_string(row0 + rows) +
                                             ") cannot be trusted");
    const shards::ShardReader& reader = open_shard(static_cast<size_t>(t.shard));
    out.assign(static_cast<size_t>(rows * dim), 0.0f);
    int64_t col = 0;
    for (const auto& b : blocks) {
      const features::FeatureMatrix m = reader.read_frame_rows(b, row0, row0 + rows);
      for (int64_t r = 0; r < rows; ++r) std::copy(m.row(r), m.row(r) + m.dim, out.data() + r * dim + col);
      col += m.dim;
    }
    stats.page_misses += 1;
    stats.bytes_read += rows * dim * static_cast<int64_t>(sizeof(float));
    stats.read_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }

  /// The page, from the cache or read (and cached when it fits the budget). Valid while the mutex is held.
  const std::vector<float>& page(int64_t track, int64_t page) const {
    const PageKey key{track, page};
    if (auto it = index.find(key); it != index.end()) {
      pages.splice(pages.begin(), pages, it->second);
      stats.page_hits += 1;
      return it->second->values;
    }
    Page p{key, {}};
    read_page(track, page, p.values);
    const int64_t bytes = page_bytes(p);
    if (bytes > options.budget_bytes) {
      uncached = std::move(p.values);
      return uncached;
    }
    while (stats.cached_bytes + bytes > options.budget_bytes) {
      stats.cached_bytes -= page_bytes(pages.back());
      index.erase(pages.back().key);
      pages.pop_back();
    }
    pages.push_front(std::move(p));
    index.emplace(key, pages.begin());
    stats.cached_bytes += bytes;
    stats.peak_cached_bytes = std::max(stats.peak_cached_bytes, stats.cached_bytes);
    return pages.front().values;
  }
};

FrameStore::FrameStore(std::vector<std::string> blocks, FrameStoreOptions options) : impl_(std::make_unique<Impl>()) {
  if (blocks.empty()) throw UsageError("FrameStore: no frame blocks named");
  if (options.page_frames < 1) throw UsageError("FrameStore: page_frames must be >= 1");
  if (options.budget_bytes < 0) throw UsageError("FrameStore: budget_bytes must be >= 0");
  impl_->blocks = std::move(blocks);
  impl_->options = options;
}
FrameStore::~FrameStore() = default;

void FrameStore::add(const shards::ShardReader& reader, const std::vector<int64_t>& tracks) {
  const std::string where = reader.path().string();
  const auto dims = frame_block_dims(reader, impl_->blocks);
  int64_t dim = 0;
  for (auto d : dims) dim += d;
  if (impl_->dim == 0) {
    impl_->dim = dim;
    impl_->first_block_dims = dims;
  }
  if (dims != impl_->first_block_dims)
    throw InputError(where, "frame width " + std::to_string(dim) + " differs from " + std::to_string(impl_->dim));
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(reader.path(), ec);
  if (ec) throw InputError(where, "cannot stat: " + ec.message());
  impl_->shards.push_back({reader.path(), bytes, nullptr, {}});
  const auto shard = static_cast<int32_t>(impl_->shards.size() - 1);
  const auto& offsets = reader.offsets();
  for (auto t : tracks) {
    const int64_t frames = offsets[t + 1] - offsets[t];
    if (frames <= 0) throw InputError(where, "track " + reader.ids()[t] + " has no frames");
    impl_->tracks.push_back({shard, offsets[t], frames});
    impl_->total_frames += frames;
  }
}

const std::vector<std::string>& FrameStore::blocks() const { return impl_->blocks; }
int64_t FrameStore::dim() const { return impl_->dim; }
int64_t FrameStore::size() const { return static_cast<int64_t>(impl_->tracks.size()); }
int64_t FrameStore::length(int64_t track) const { return impl_->tracks.at(static_cast<size_t>(track)).frames; }
int64_t FrameStore::total_bytes() const {
  return impl_->total_frames * impl_->dim * static_cast<int64_t>(sizeof(float));
}
const FrameStoreOptions& FrameStore::options() const { return impl_->options; }

void FrameStore::read(int64_t track, int64_t start, int64_t count, float* dst) const {
  if (track < 0 || track >= size() || start < 0 || count < 0 || start + count > length(track))
    throw UsageError("FrameStore::read: frames [" + std::to_string(start) + ", " + std::to_string(start + count) +
                     ") of track " + std::to_string(track) + " out of range");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const int64_t page_frames = impl_->options.page_frames, d = impl_->dim;
  for (int64_t f = start; f < start + count;) {
    const int64_t p = f / page_frames, first = p * page_frames;
    const std::vector<float>& values = impl_->page(track, p);
    const int64_t rows_in_page = static_cast<int64_t>(values.size()) / d;
    const int64_t take = std::min(start + count, first + rows_in_page) - f;
    dst = std::copy(values.data() + (f - first) * d, values.data() + (f - first + take) * d, dst);
    f += take;
  }
}

FrameStoreStats FrameStore::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

}  // namespace songlines::train
