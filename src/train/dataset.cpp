#include "train/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "shards/metadata_blocks.h"

namespace songlines::train {

namespace {
std::vector<std::string> resolve_features(const std::vector<std::string>& requested,
                                          const std::vector<std::string>& available, const std::string& where) {
  if (requested.empty()) {
    std::vector<std::string> all;
    for (const auto& a : available)
      if (!shards::is_metadata_block(a)) all.push_back(a);
    std::sort(all.begin(), all.end());
    if (all.empty()) throw InputError(where, "no audio summary features (name metadata blocks in data.features)");
    return all;
  }
  for (const auto& f : requested)
    if (std::find(available.begin(), available.end(), f) == available.end())
      throw InputError(where, "no summary feature \"" + f + "\"");
  return requested;
}
}  // namespace

std::vector<std::string> default_frame_blocks() { return {"mfcc", "chroma_stft", "spectral_contrast", "tonnetz"}; }

void FrameSequences::copy_rows(int64_t i, int64_t start, int64_t count, float* dst) const {
  if (store) return store->read(i, start, count, dst);
  std::copy(track(i) + start * dim, track(i) + (start + count) * dim, dst);
}

int64_t default_memory_budget_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  constexpr int64_t kFallback = int64_t{1} << 30;  // when the system does not say
  if (pages <= 0 || page_size <= 0) return kFallback;
  return static_cast<int64_t>(pages) * page_size / 4;
}

void append_frame_sequences(const shards::ShardReader& reader, const std::vector<int64_t>& tracks, FrameSequences& out) {
  const std::string where = reader.path().string();
  int64_t dim = 0;
  for (auto d : frame_block_dims(reader, out.blocks)) dim += d;
  if (out.dim == 0) out.dim = dim;
  if (dim != out.dim)
    throw InputError(where, "frame width " + std::to_string(dim) + " differs from " + std::to_string(out.dim));
  for (auto t : tracks) {
    std::vector<features::FeatureMatrix> parts;
    for (const auto& b : out.blocks) parts.push_back(reader.read_frames(b, t));
    const int64_t frames = parts.front().frames;
    if (frames <= 0) throw InputError(where, "track " + reader.ids()[t] + " has no frames");
    for (const auto& m : parts)
      if (m.frames != frames) throw InputError(where, "track " + reader.ids()[t] + ": frame blocks differ in length");
    const size_t base = out.frames.size();
    out.frames.resize(base + static_cast<size_t>(frames * dim));
    float* dst = out.frames.data() + base;
    for (int64_t f = 0; f < frames; ++f)
      for (const auto& m : parts) dst = std::copy(m.row(f), m.row(f) + m.dim, dst);
    out.offsets.push_back(out.offsets.back() + frames);
  }
}

Dataset load_summary_dataset(const std::vector<std::filesystem::path>& shards, const std::vector<std::string>& features,
                             const std::vector<std::string>& frame_blocks, const FrameLoading& frame_loading) {
  if (shards.empty()) throw InputError("data.shards", "no shard files");
  Dataset d;
  std::shared_ptr<FrameSequences> seq;
  // Streamed or undecided (kAuto): the store learns the layout (nothing is read); kAuto then loads the frames
  // into memory when they fit the budget.
  std::shared_ptr<FrameStore> store;
  std::vector<std::vector<int64_t>> kept_per_shard;
  const int64_t budget =
      frame_loading.memory_budget_bytes > 0 ? frame_loading.memory_budget_bytes : default_memory_budget_bytes();
  if (!frame_blocks.empty()) {
    seq = std::make_shared<FrameSequences>();
    seq->blocks = frame_blocks;
    if (frame_loading.residence != FrameResidence::kInMemory) {
      FrameStoreOptions o = frame_loading.store;
      o.budget_bytes = budget;
      store = std::make_shared<FrameStore>(frame_blocks, o);
    }
  }
  for (const auto& path : shards) {
    shards::ShardReader reader(path);
    auto names = resolve_features(features, reader.summary_feature_names(), path.string());
    if (d.features.empty()) d.features = names;
    if (names != d.features) throw InputError(path.string(), "summary features differ from the first shard's");
    std::vector<std::vector<double>> blocks;
    std::vector<int64_t> dims;
    int64_t dim = 0;
    for (const auto& n : names) {
      int64_t k = 0;
      blocks.push_back(reader.read_summary_mean(n, &k));
      dims.push_back(k);
      dim += k;
    }
    if (d.dim == 0) d.dim = dim;
    if (dim != d.dim) throw InputError(path.string(), "feature width " + std::to_string(dim) + " differs from " + std::to_string(d.dim));
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < reader.size(); ++i) {
      geo::LatLon p{reader.latitudes()[i], reader.longitudes()[i]};
      if (!geo::is_valid(p)) continue;
      kept.push_back(i);
      for (size_t b = 0; b < blocks.size(); ++b)
        for (int64_t k = 0; k < dims[b]; ++k) d.x.push_back(static_cast<float>(blocks[b][i * dims[b] + k]));
      d.coords.push_back(p);
      d.ids.push_back(reader.ids()[i]);
      d.countries.push_back(reader.countries()[i]);
      d.artists.emplace_back();
    }
    if (store) {
      store->add(reader, kept);
      kept_per_shard.push_back(std::move(kept));
    } else if (seq) {
      append_frame_sequences(reader, kept, *seq);
    }
  }
  if (d.coords.empty()) throw InputError(shards.front().string(), "no tracks with coordinates");
  if (store && frame_loading.residence == FrameResidence::kAuto && store->total_bytes() <= budget) {
    for (size_t s = 0; s < shards.size(); ++s) append_frame_sequences(shards::ShardReader(shards[s]), kept_per_shard[s], *seq);
  } else if (store) {
    seq->dim = store->dim();
    for (int64_t t = 0; t < store->size(); ++t) seq->offsets.push_back(seq->offsets.back() + store->length(t));
    seq->store = std::move(store);
  }
  d.sequences = seq;
  return d;
}

Dataset dataset_from_table(const ImportedTable& table, const std::vector<std::string>& features) {
  Dataset d;
  std::vector<std::string> available;
  for (const auto& [name, s] : table.tracks.at(0).summary) available.push_back(name);
  d.features = resolve_features(features, available, "table");
  for (size_t i = 0; i < table.tracks.size(); ++i) {
    const auto& t = table.tracks[i];
    int64_t width = 0;
    for (const auto& f : d.features) {
      const auto& m = t.summary.at(f).mean;
      for (double v : m) d.x.push_back(static_cast<float>(v));
      width += static_cast<int64_t>(m.size());
    }
    d.dim = width;
    d.coords.push_back({t.latitude, t.longitude});
    d.ids.push_back(t.id);
    d.countries.push_back(t.country);
    d.artists.push_back(table.artists.at(i));
  }
  return d;
}

namespace {
// Mean and population standard deviation of each of dim columns over n rows, which for_each_block hands to its
// visitor as blocks (x [rows, dim] row-major, rows), twice and in the same order both times. A constant column
// gets scale 1, so its centred values stay 0.
template <typename ForEachBlock>
Standardizer fit_columns(int64_t dim, double n, const ForEachBlock& for_each_block) {
  Standardizer s;
  s.mean.assign(dim, 0.0);
  s.scale.assign(dim, 0.0);
  for_each_block([&](const float* x, int64_t rows) {
    for (int64_t f = 0; f < rows; ++f)
      for (int64_t k = 0; k < dim; ++k) s.mean[k] += x[f * dim + k];
  });
  for (auto& m : s.mean) m /= n;
  for_each_block([&](const float* x, int64_t rows) {
    for (int64_t f = 0; f < rows; ++f)
      for (int64_t k = 0; k < dim; ++k) {
        double dlt = x[f * dim + k] - s.mean[k];
        s.scale[k] += dlt * dlt;
      }
  });
  for (auto& v : s.scale) {
    v = std::sqrt(v / n);
    if (!(v > 1e-12)) v = 1.0;
  }
  return s;
}
}  // namespace

Standardizer Standardizer::fit(const Dataset& data, const std::vector<int64_t>& rows) {
  SONGLINES_CHECK(!rows.empty(), "Standardizer::fit: no rows");
  return fit_columns(data.dim, static_cast<double>(rows.size()), [&](const auto& visit) {
    for (auto i : rows) visit(data.row(i), 1);
  });
}

Standardizer Standardizer::fit_frames(const FrameSequences& seq, const std::vector<int64_t>& tracks) {
  SONGLINES_CHECK(!tracks.empty(), "Standardizer::fit_frames: no tracks");
  // Every frame of the given tracks in order, in pieces ([rows, D]): the whole track in memory, a page at a time
  // when streamed. The sums run frame by frame in the same order either way.
  std::vector<float> buffer;
  auto for_each_piece = [&](int64_t t, const auto& visit) {
    if (!seq.streamed()) return visit(seq.track(t), seq.length(t));
    const int64_t piece = seq.store->options().page_frames;
    for (int64_t f = 0; f < seq.length(t); f += piece) {
      const int64_t rows = std::min(piece, seq.length(t) - f);
      buffer.resize(static_cast<size_t>(rows * seq.dim));
      seq.copy_rows(t, f, rows, buffer.data());
      visit(buffer.data(), rows);
    }
  };
  double n = 0;
  for (auto t : tracks) n += static_cast<double>(seq.length(t));
  return fit_columns(seq.dim, n, [&](const auto& visit) {
    for (auto t : tracks) for_each_piece(t, visit);
  });
}

std::vector<float> Standardizer::apply(const Dataset& data, const std::vector<int64_t>& rows) const {
  std::vector<float> out;
  out.reserve(rows.size() * data.dim);
  for (auto i : rows) out.insert(out.end(), data.row(i), data.row(i) + data.dim);
  apply_inplace(out.data(), static_cast<int64_t>(rows.size()));
  return out;
}

void Standardizer::apply_inplace(float* x, int64_t n) const {
  const int64_t dim = static_cast<int64_t>(mean.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < dim; ++k) x[i * dim + k] = static_cast<float>((x[i * dim + k] - mean[k]) / scale[k]);
}

Json Standardizer::to_json() const { return {{"mean", mean}, {"scale", scale}}; }

Standardizer Standardizer::from_json(const Json& j) {
  Standardizer s;
  s.mean = j.at("mean").get<std::vector<double>>();
  s.scale = j.at("scale").get<std::vector<double>>();
  return s;
}

}  // namespace songlines::train
