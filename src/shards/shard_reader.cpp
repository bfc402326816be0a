// ShardReader: opens a shard, validates its layout and version up front (so a bad file fails with one clear
// message naming the file and the dataset), keeps /tracks and /frames/offsets in memory and reads frame and
// summary arrays on demand with hyperslabs.
#include <glob.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "shards/hdf5_handle.h"
#include "shards/shard.h"

namespace songlines::shards {

namespace {

std::vector<std::string> group_members(hid_t group, const std::string& file, const std::string& group_name) {
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0) throw InputError(file, "cannot list " + group_name);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw InputError(file, "cannot list " + group_name);
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(name);
  }
  return names;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

struct ShardReader::Impl {
  std::filesystem::path path;
  ShardReaderOptions options;
  std::string file_name;  // for messages
  h5::Handle file;
  ShardAttributes attributes;
  int format_version = 0;
  std::vector<std::string> ids, paths, countries;
  std::vector<float> latitudes, longitudes, durations;
  std::vector<int64_t> offsets;
  struct FrameSet {
    h5::Handle dset;
    int64_t dim = 0;
    int64_t rows = 0;
  };
  std::map<std::string, FrameSet> frames;
  struct SummarySet {
    int64_t dim = 0;
    bool has_std = false;
  };
  std::map<std::string, SummarySet> summaries;

  [[noreturn]] void fail(const std::string& reason) const { throw InputError(file_name, reason); }

  /// "track 3 (\"id\")" for messages.
  std::string track_label(int64_t track) const {
    return "track " + std::to_string(track) + " (\"" + ids[static_cast<size_t>(track)] + "\")";
  }

  /// Non-finite values are refused where they enter (docs/reliability.md): values[rows x dim] read from
  /// dataset `full`, rows starting at first_row; row_to_track maps a row to its track index.
  template <class T, class RowToTrack>
  void require_finite(const std::vector<T>& values, int64_t dim, int64_t first_row, const std::string& full,
                      const char* row_word, RowToTrack row_to_track) const {
    for (size_t i = 0; i < values.size(); ++i) {
      if (std::isfinite(values[i])) continue;
      const int64_t row = first_row + static_cast<int64_t>(i) / dim, col = static_cast<int64_t>(i) % dim;
      const int64_t track = row_to_track(row);
      std::string where = full + ": non-finite value (" + std::to_string(values[i]) + ") in " + track_label(track);
      if (row_word) where += ", " + std::string(row_word) + " " + std::to_string(row - offsets[track]);
      fail(where + ", column " + std::to_string(col) + "; the shard cannot be used (re-extract the track)");
    }
  }

  h5::Handle open_dataset(hid_t loc, const std::string& name, const std::string& full) const {
    if (!h5::exists(loc, name)) fail("missing dataset " + full);
    return h5::dataset(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), file_name + ": cannot open " + full);
  }

  // The dataset `name` of loc (full: its path in messages), failing unless it holds floats; dims gets its shape.
  h5::Handle open_float_dataset(hid_t loc, const std::string& name, const std::string& full,
                                std::vector<hsize_t>& dims) const {
    h5::Handle dset = open_dataset(loc, name, full);
    h5::Handle type = h5::datatype(H5Dget_type(dset), file_name + ": type of " + full);
    if (H5Tget_class(type) != H5T_FLOAT) fail(full + " is not a float dataset");
    dims = h5::dataset_dims(dset);
    return dset;
  }

  std::vector<float> read_float_vector(hid_t loc, const std::string& name, const std::string& full, size_t n) const {
    std::vector<hsize_t> dims;
    h5::Handle dset = open_float_dataset(loc, name, full, dims);
    if (dims.size() != 1 || dims[0] != n)
      fail(full + " has shape " + shape_string(dims) + ", expected [" + std::to_string(n) + "]");
    std::vector<float> v(n);
    if (n > 0 && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
      fail("cannot read " + full);
    return v;
  }

  static std::string shape_string(const std::vector<hsize_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }

  void open_and_validate() {
    h5::silence_errors();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail("no such file");
    if (std::filesystem::is_directory(path, ec)) fail("is a directory, not a shard file");
    if (H5Fis_hdf5(path.c_str()) <= 0) fail("not an HDF5 file");
    h5::Handle access;
    if (options.chunk_cache_bytes >= 0) {
      constexpr size_t kChunkCacheSlots = 521;  // HDF5's default slot count (a prime)
      constexpr double kPreemption = 0.75;      // HDF5's default
      access = h5::plist(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate");
      h5::check_status(H5Pset_cache(access, 0, kChunkCacheSlots, static_cast<size_t>(options.chunk_cache_bytes), kPreemption),
                       file_name + ": H5Pset_cache");
    }
    file = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.valid() ? access.get() : H5P_DEFAULT), H5Fclose);
    if (!file.valid()) fail("cannot open HDF5 file (truncated or corrupt?)");

    long long version = 0;
    try {
      version = h5::read_int_attribute(file, "format_version", file_name);
    } catch (const InputError&) {
      fail("missing or malformed root attribute format_version: not a songlines shard");
    }
    if (version > kFormatVersion)
      fail("format_version " + std::to_string(version) + " is newer than this songlines reads (" +
           std::to_string(kFormatVersion) + "); upgrade songlines");
    if (version < 1) fail("invalid format_version " + std::to_string(version));
    format_version = static_cast<int>(version);
    attributes.sample_rate = static_cast<int>(h5::read_int_attribute(file, "sample_rate", file_name));
    attributes.n_fft = static_cast<int>(h5::read_int_attribute(file, "n_fft", file_name));
    attributes.hop_length = static_cast<int>(h5::read_int_attribute(file, "hop_length", file_name));
    std::string options = h5::read_string_attribute(file, "feature_options", file_name);
    try {
      attributes.feature_options = Json::parse(options);
    } catch (const std::exception& e) {
      fail(std::string("attribute feature_options is not valid JSON: ") + e.what());
    }
    attributes.source = h5::read_string_attribute(file, "source", file_name);
    attributes.producer = h5::read_string_attribute(file, "producer", file_name);

    if (!h5::exists(file, "tracks")) fail("missing group /tracks");
    h5::Handle tracks = h5::group(H5Gopen2(file, "tracks", H5P_DEFAULT), file_name + ": cannot open /tracks");
    for (const char* name : {"id", "path", "country"})
      if (!h5::exists(tracks, name)) fail(std::string("missing dataset /tracks/") + name);
    ids = h5::read_string_dataset(tracks, "id", file_name);
    const size_t n = ids.size();
    paths = h5::read_string_dataset(tracks, "path", file_name);
    countries = h5::read_string_dataset(tracks, "country", file_name);
    if (paths.size() != n) fail("/tracks/path has " + std::to_string(paths.size()) + " entries, /tracks/id " + std::to_string(n));
    if (countries.size() != n)
      fail("/tracks/country has " + std::to_string(countries.size()) + " entries, /tracks/id " + std::to_string(n));
    latitudes = read_float_vector(tracks, "latitude", "/tracks/latitude", n);
    longitudes = read_float_vector(tracks, "longitude", "/tracks/longitude", n);
    durations = read_float_vector(tracks, "duration_s", "/tracks/duration_s", n);
    // NaN coordinates mean "unknown"; infinities are corrupt values, not unknowns.
    for (size_t i = 0; i < n; ++i) {
      if (std::isinf(latitudes[i]) || std::isinf(longitudes[i]))
        fail("/tracks/latitude, /tracks/longitude: infinite coordinate in " + track_label(static_cast<int64_t>(i)));
      if (!std::isfinite(durations[i]))
        fail("/tracks/duration_s: non-finite value in " + track_label(static_cast<int64_t>(i)));
    }

    if (h5::exists(file, "frames")) {
      h5::Handle group = h5::group(H5Gopen2(file, "frames", H5P_DEFAULT), file_name + ": cannot open /frames");
      h5::Handle off = open_dataset(group, "offsets", "/frames/offsets");
      auto dims = h5::dataset_dims(off);
      if (dims.size() != 1 || dims[0] != n + 1)
        fail("/frames/offsets has shape " + shape_string(dims) + ", expected [" + std::to_string(n + 1) + "]");
      offsets.resize(n + 1);
      if (H5Dread(off, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data()) < 0)
        fail("cannot read /frames/offsets");
      if (offsets[0] != 0) fail("/frames/offsets[0] is " + std::to_string(offsets[0]) + ", expected 0");
      for (size_t i = 0; i < n; ++i)
        if (offsets[i + 1] < offsets[i]) fail("/frames/offsets decreases at index " + std::to_string(i + 1));
      for (const auto& name : group_members(group, file_name, "/frames")) {
        if (name == "offsets") continue;
        const std::string full = "/frames/" + name;
        FrameSet fs;
        std::vector<hsize_t> d;
        fs.dset = open_float_dataset(group, name, full, d);
        if (d.size() != 2) fail(full + " has shape " + shape_string(d) + ", expected [frames, dim]");
        if (static_cast<int64_t>(d[0]) != offsets[n])
          fail(full + " has " + std::to_string(d[0]) + " rows but /frames/offsets ends at " + std::to_string(offsets[n]));
        fs.rows = static_cast<int64_t>(d[0]);
        fs.dim = static_cast<int64_t>(d[1]);
        frames.emplace(name, std::move(fs));
      }
    }

    if (h5::exists(file, "summary")) {
      h5::Handle group = h5::group(H5Gopen2(file, "summary", H5P_DEFAULT), file_name + ": cannot open /summary");
      auto members = group_members(group, file_name, "/summary");
      std::map<std::string, int64_t> std_dims;
      for (const auto& name : members) {
        const std::string full = "/summary/" + name;
        bool is_mean = ends_with(name, "_mean"), is_std = ends_with(name, "_std");
        if (!is_mean && !is_std) fail(full + ": summary datasets are named <feature>_mean or <feature>_std");
        std::vector<hsize_t> d;
        open_float_dataset(group, name, full, d);  // its type and shape only
        if (d.size() != 2 || d[0] != n)
          fail(full + " has shape " + shape_string(d) + ", expected [" + std::to_string(n) + ", dim]");
        std::string feature = name.substr(0, name.size() - (is_mean ? 5 : 4));
        if (is_mean)
          summaries[feature].dim = static_cast<int64_t>(d[1]);
        else
          std_dims[feature] = static_cast<int64_t>(d[1]);
      }
      for (const auto& [feature, dim] : std_dims) {
        auto it = summaries.find(feature);
        if (it == summaries.end()) fail("/summary/" + feature + "_std has no matching _mean");
        if (it->second.dim != dim)
          fail("/summary/" + feature + "_std has dim " + std::to_string(dim) + ", _mean " + std::to_string(it->second.dim));
        it->second.has_std = true;
      }
    }
  }

  const FrameSet& frame_set(const std::string& feature) const {
    auto it = frames.find(feature);
    if (it == frames.end()) fail("missing dataset /frames/" + feature);
    return it->second;
  }

  features::FeatureMatrix read_rows(const std::string& feature, int64_t begin, int64_t end) const {
    h5::silence_errors();
    const FrameSet& fs = frame_set(feature);
    if (begin < 0 || end < begin || end > fs.rows)
      fail("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for /frames/" + feature +
           " with " + std::to_string(fs.rows) + " rows");
    features::FeatureMatrix m(end - begin, fs.dim);
    if (end == begin) return m;
    h5::Handle space = h5::dataspace(H5Dget_space(fs.dset), "H5Dget_space");
    hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
    hsize_t count[2] = {static_cast<hsize_t>(end - begin), static_cast<hsize_t>(fs.dim)};
    h5::check_status(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), "hyperslab");
    h5::Handle mem = h5::dataspace(H5Screate_simple(2, count, nullptr), "H5Screate_simple");
    if (H5Dread(fs.dset, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, m.data.data()) < 0)
      fail("cannot read /frames/" + feature + " (corrupt?)");
    require_finite(m.data, fs.dim, begin, "/frames/" + feature, "frame", [&](int64_t row) {
      return static_cast<int64_t>(std::upper_bound(offsets.begin(), offsets.end(), row) - offsets.begin()) - 1;
    });
    return m;
  }

  /// [rows, dim] of /summary/<name>; row_begin/row_count select tracks.
  std::vector<double> read_summary(const std::string& feature, const std::string& suffix, int64_t row_begin,
                                    int64_t row_count, int64_t* dim_out) const {
    h5::silence_errors();
    auto it = summaries.find(feature);
    const std::string full = "/summary/" + feature + suffix;
    if (it == summaries.end()) fail("missing dataset " + full);
    if (dim_out) *dim_out = it->second.dim;
    if (suffix == "_std" && !it->second.has_std) return {};
    h5::Handle group = h5::group(H5Gopen2(file, "summary", H5P_DEFAULT), file_name + ": cannot open /summary");
    h5::Handle dset = open_dataset(group, feature + suffix, full);
    std::vector<double> out(static_cast<size_t>(row_count * it->second.dim));
    if (out.empty()) return out;
    h5::Handle space = h5::dataspace(H5Dget_space(dset), "H5Dget_space");
    hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0};
    hsize_t count[2] = {static_cast<hsize_t>(row_count), static_cast<hsize_t>(it->second.dim)};
    h5::check_status(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), "hyperslab");
    h5::Handle mem = h5::dataspace(H5Screate_simple(2, count, nullptr), "H5Screate_simple");
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, out.data()) < 0) fail("cannot read " + full);
    require_finite(out, it->second.dim, row_begin, full, nullptr, [](int64_t row) { return row; });
    return out;
  }
};

ShardReader::ShardReader(const std::filesystem::path& path, const ShardReaderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->file_name = path.string();
  impl_->open_and_validate();
}
ShardReader::~ShardReader() = default;
ShardReader::ShardReader(ShardReader&&) noexcept = default;
ShardReader& ShardReader::operator=(ShardReader&&) noexcept = default;

const std::filesystem::path& ShardReader::path() const { return impl_->path; }
const ShardAttributes& ShardReader::attributes() const { return impl_->attributes; }
int64_t ShardReader::size() const { return static_cast<int64_t>(impl_->ids.size()); }
int ShardReader::format_version() const { return impl_->format_version; }
const std::vector<std::string>& ShardReader::ids() const { return impl_->ids; }
const std::vector<std::string>& ShardReader::paths() const { return impl_->paths; }
const std::vector<std::string>& ShardReader::countries() const { return impl_->countries; }
const std::vector<float>& ShardReader::latitudes() const { return impl_->latitudes; }
const std::vector<float>& ShardReader::longitudes() const { return impl_->longitudes; }
const std::vector<float>& ShardReader::durations() const { return impl_->durations; }
const std::vector<int64_t>& ShardReader::offsets() const { return impl_->offsets; }

std::vector<std::string> ShardReader::frame_feature_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : impl_->frames) names.push_back(name);
  return names;
}
std::vector<std::string> ShardReader::summary_feature_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : impl_->summaries) names.push_back(name);
  return names;
}
bool ShardReader::has_frames(const std::string& feature) const { return impl_->frames.count(feature) > 0; }
int64_t ShardReader::frame_dim(const std::string& feature) const { return impl_->frame_set(feature).dim; }

features::FeatureMatrix ShardReader::read_frames(const std::string& feature, int64_t track) const {
  if (track < 0 || track >= size())
    impl_->fail("track index " + std::to_string(track) + " out of range [0, " + std::to_string(size()) + ")");
  if (impl_->offsets.empty()) impl_->fail("summary-only shard has no /frames/" + feature);
  return impl_->read_rows(feature, impl_->offsets[track], impl_->offsets[track + 1]);
}

features::FeatureMatrix ShardReader::read_frame_rows(const std::string& feature, int64_t row_begin,
                                                     int64_t row_end) const {
  return impl_->read_rows(feature, row_begin, row_end);
}

std::vector<double> ShardReader::read_summary_mean(const std::string& feature, int64_t* dim) const {
  return impl_->read_summary(feature, "_mean", 0, size(), dim);
}
std::vector<double> ShardReader::read_summary_std(const std::string& feature, int64_t* dim) const {
  return impl_->read_summary(feature, "_std", 0, size(), dim);
}

TrackRecord ShardReader::read_track(int64_t track) const {
  if (track < 0 || track >= size())
    impl_->fail("track index " + std::to_string(track) + " out of range [0, " + std::to_string(size()) + ")");
  const auto i = static_cast<size_t>(track);
  TrackRecord r;
  r.id = impl_->ids[i];
  r.path = impl_->paths[i];
  r.country = impl_->countries[i];
  r.latitude = impl_->latitudes[i];
  r.longitude = impl_->longitudes[i];
  r.duration_s = impl_->durations[i];
  for (const auto& [name, _] : impl_->frames) r.frames[name] = read_frames(name, track);
  for (const auto& [name, _] : impl_->summaries) {
    SummaryStats st;
    st.mean = impl_->read_summary(name, "_mean", track, 1, nullptr);
    st.std = impl_->read_summary(name, "_std", track, 1, nullptr);
    r.summary[name] = std::move(st);
  }
  return r;
}

// ---- free functions ---------------------------------------------------------------------------------------

SummaryStats summarize(const features::FeatureMatrix& m) {
  // Two passes in float64 (numpy's mean/std with ddof 0 accumulate pairwise in float32 for float32 input; we
  // summarise in float64 so the CSV means do not depend on summation order beyond ~1e-12).
  SummaryStats s;
  s.mean.assign(static_cast<size_t>(m.dim), 0.0);
  s.std.assign(static_cast<size_t>(m.dim), 0.0);
  if (m.frames == 0) return s;
  for (int64_t t = 0; t < m.frames; ++t) {
    const float* row = m.row(t);
    for (int64_t k = 0; k < m.dim; ++k) s.mean[k] += row[k];
  }
  for (auto& v : s.mean) v /= static_cast<double>(m.frames);
  for (int64_t t = 0; t < m.frames; ++t) {
    const float* row = m.row(t);
    for (int64_t k = 0; k < m.dim; ++k) {
      double d = row[k] - s.mean[k];
      s.std[k] += d * d;
    }
  }
  for (auto& v : s.std) v = std::sqrt(v / static_cast<double>(m.frames));
  return s;
}

std::vector<std::filesystem::path> list_shards(const std::filesystem::path& file_or_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(file_or_dir, ec)) throw InputError(file_or_dir.string(), "no such file or directory");
  if (!std::filesystem::is_directory(file_or_dir, ec)) return {file_or_dir};
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(file_or_dir)) {
    const auto name = entry.path().filename().string();
    // Temporary shards are "<name>.h5.tmp.<pid>.<n>" and never match; hidden files are skipped.
    if (entry.is_regular_file() && entry.path().extension() == ".h5" && !name.empty() && name[0] != '.')
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::filesystem::path> glob_shard_sources(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::filesystem::path> out;
  if (rc == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i) out.emplace_back(matches.gl_pathv[i]);
  ::globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) throw IoError(pattern + ": glob failed (code " + std::to_string(rc) + ")");
  std::erase_if(out, [](const std::filesystem::path& p) {
    std::error_code ec;
    return !std::filesystem::is_directory(p, ec) && p.extension() != ".h5";
  });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace songlines::shards
