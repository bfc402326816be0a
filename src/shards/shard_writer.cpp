// ShardWriter: streams frame arrays into chunked, extendible HDF5 datasets as tracks arrive, keeps only the
// small per-track metadata and summaries in memory, and commits the file by rename on close().
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "shards/hdf5_handle.h"
#include "shards/shard.h"
#include "songlines/version.h"

namespace songlines::shards {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string s = "{";
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s + "}";
}

template <class Map>
std::vector<std::string> keys_of(const Map& m) {
  std::vector<std::string> k;
  for (const auto& [name, _] : m) k.push_back(name);
  return k;
}

/// Where a bad track is named in errors: its path, else its id.
std::string track_label(const TrackRecord& t) { return t.path.empty() ? "track \"" + t.id + "\"" : t.path; }

void write_float_vector(hid_t loc, const std::string& name, const std::vector<float>& v) {
  hsize_t n = v.size();
  h5::Handle space = h5::dataspace(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  h5::Handle dset = h5::dataset(
      H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      "cannot create dataset " + name);
  if (n > 0) h5::check_status(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write " + name);
}

void write_matrix(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const void* data, hsize_t rows,
                  hsize_t cols) {
  hsize_t dims[2] = {rows, cols};
  h5::Handle space = h5::dataspace(H5Screate_simple(2, dims, nullptr), "H5Screate_simple");
  h5::Handle dset = h5::dataset(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                "cannot create dataset " + name);
  if (rows * cols > 0) h5::check_status(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + name);
}

/// Throws IoError (ENOSPC's text) unless the file system holding tmp has room for every metadata entry HDF5
/// has cached for `file` plus a margin: what a flush can write once the raw data is on disk.
void require_room_for_metadata(hid_t file, const std::filesystem::path& tmp, const std::string& where) {
  constexpr size_t kMarginBytes = 256 << 10;  // superblock, heaps, B-tree growth beyond the cached entries
  size_t max_size = 0, min_clean = 0, cached = 0;
  int entries = 0;
  h5::check_status(H5Fget_mdc_size(file, &max_size, &min_clean, &cached, &entries), where + "H5Fget_mdc_size");
  struct statvfs st {};
  const auto dir = tmp.has_parent_path() ? tmp.parent_path() : std::filesystem::path(".");
  if (::statvfs(dir.c_str(), &st) != 0) return;  // cannot tell: let the flush try
  // Root may write into the blocks a file system reserves (ext4's 5%); others may not.
  const auto free_blocks = ::geteuid() == 0 ? st.f_bfree : st.f_bavail;
  const auto free_bytes = static_cast<unsigned long long>(free_blocks) * st.f_frsize;
  if (free_bytes < cached + kMarginBytes)
    throw IoError(where + "cannot write the shard's metadata: " + std::strerror(ENOSPC) + " (" +
                  std::to_string(free_bytes) + " bytes free, about " + std::to_string(cached + kMarginBytes) +
                  " needed)");
}

}  // namespace

struct ShardWriter::Impl {
  std::filesystem::path path;
  std::filesystem::path tmp;
  ShardAttributes attributes;
  ShardWriterOptions options;
  h5::Handle file;
  bool committed = false;

  // Schema, fixed by the first track.
  bool have_schema = false;
  std::map<std::string, int64_t> frame_dims;  // feature -> dim
  struct SummarySchema {
    int64_t dim = 0;
    bool has_std = false;
  };
  std::map<std::string, SummarySchema> summary_schema;

  // Frame datasets, open while writing.
  h5::Handle frames_group;
  std::map<std::string, h5::Handle> frame_dsets;

  // Per-track metadata and summaries (small: N strings and N x dim doubles).
  std::vector<std::string> ids, paths, countries;
  std::vector<float> latitudes, longitudes, durations;
  std::vector<int64_t> offsets{0};
  std::map<std::string, std::vector<double>> means, stds;  // feature -> [N, dim] row-major
  std::set<std::string> seen_ids;

  void create_frame_datasets() {
    frames_group = h5::group(H5Gcreate2(file, "frames", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             tmp.string() + ": cannot create group /frames");
    for (const auto& [name, dim] : frame_dims) {
      hsize_t dims[2] = {0, static_cast<hsize_t>(dim)};
      hsize_t maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(dim)};
      int64_t rows = std::min<int64_t>(options.chunk_rows,
                                       std::max<int64_t>(1, options.chunk_bytes / std::max<int64_t>(1, dim * 4)));
      hsize_t chunk[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(std::max<int64_t>(dim, 1))};
      h5::Handle space = h5::dataspace(H5Screate_simple(2, dims, maxdims), "H5Screate_simple");
      h5::Handle dcpl = h5::plist(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
      h5::check_status(H5Pset_chunk(dcpl, 2, chunk), "H5Pset_chunk /frames/" + name);
      if (options.compression_level > 0) {
        h5::check_status(H5Pset_shuffle(dcpl), "H5Pset_shuffle");
        h5::check_status(H5Pset_deflate(dcpl, static_cast<unsigned>(options.compression_level)), "H5Pset_deflate");
      }
      // Rows are appended in order, so a full chunk is never touched again: evict written chunks first (w0 = 1)
      // and give each dataset a cache of a few chunks.
      h5::Handle dapl = h5::plist(H5Pcreate(H5P_DATASET_ACCESS), "H5Pcreate");
      h5::check_status(H5Pset_chunk_cache(dapl, 521, static_cast<size_t>(4 * options.chunk_bytes), 1.0),
                       "H5Pset_chunk_cache");
      frame_dsets[name] = h5::dataset(H5Dcreate2(frames_group, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, dapl),
                                      tmp.string() + ": cannot create dataset /frames/" + name);
    }
  }

  void append_frames(const std::string& name, const features::FeatureMatrix& m) {
    if (m.frames == 0) return;
    hid_t dset = frame_dsets.at(name);
    hsize_t begin = static_cast<hsize_t>(offsets.back());
    hsize_t new_dims[2] = {begin + static_cast<hsize_t>(m.frames), static_cast<hsize_t>(m.dim)};
    h5::check_status(H5Dset_extent(dset, new_dims), tmp.string() + ": cannot extend /frames/" + name);
    h5::Handle file_space = h5::dataspace(H5Dget_space(dset), "H5Dget_space");
    hsize_t start[2] = {begin, 0};
    hsize_t count[2] = {static_cast<hsize_t>(m.frames), static_cast<hsize_t>(m.dim)};
    h5::check_status(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), "hyperslab");
    h5::Handle mem_space = h5::dataspace(H5Screate_simple(2, count, nullptr), "H5Screate_simple");
    h5::check_status(H5Dwrite(dset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, m.data.data()),
                     tmp.string() + ": cannot write /frames/" + name);
  }

  // Error path: every identifier closed, the temporary file removed. Further writes go to memory first, so the
  // closes (which flush cached chunks and metadata) cannot fail on a full disk and leave an identifier open.
  // Only closes of chunked datasets and of the file write to the disk; those are all members, closed here.
  void remove_temporary() noexcept {
    if (file.valid()) h5::discard_further_writes(file);
    frame_dsets.clear();
    frames_group.reset();
    file.reset();
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
  }
};

ShardWriter::ShardWriter(std::filesystem::path path, ShardAttributes attributes, ShardWriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  h5::silence_errors();
  impl_->path = std::move(path);
  impl_->attributes = std::move(attributes);
  impl_->options = options;
  if (impl_->attributes.producer.empty())
    impl_->attributes.producer = std::string("songlines ") + kVersion + " (" + git_revision() + ")";
  if (options.chunk_rows < 1 || options.chunk_bytes < 4 || options.compression_level < 0 || options.compression_level > 9)
    throw UsageError("ShardWriterOptions: chunk_rows >= 1, chunk_bytes >= 4 and compression_level 0..9 required");
  std::error_code ec;
  if (impl_->path.has_parent_path()) std::filesystem::create_directories(impl_->path.parent_path(), ec);
  impl_->tmp = temporary_path_for(impl_->path);
  // Strong close: closing the file closes every object still open in it, so an identifier whose own close
  // failed on the error path (a local handle destroyed while unwinding) is closed with the file, not leaked.
  h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(file access)");
  h5::check_status(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "H5Pset_fclose_degree");
  try {
    impl_->file = h5::file(H5Fcreate(impl_->tmp.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl),
                           impl_->path.string() + ": cannot create shard (temporary " + impl_->tmp.string() + ")");
  } catch (...) {
    std::filesystem::remove(impl_->tmp, ec);  // a failed create (a full disk) may leave the file behind
    throw;
  }
}

ShardWriter::~ShardWriter() {
  if (impl_ && !impl_->committed) impl_->remove_temporary();
}

int64_t ShardWriter::size() const { return static_cast<int64_t>(impl_->ids.size()); }

void ShardWriter::add(const TrackRecord& track) {
  Impl& s = *impl_;
  if (s.committed) throw Error(s.path.string() + ": add() after close()");
  h5::silence_errors();
  const std::string who = track_label(track);
  if (s.seen_ids.count(track.id)) throw InputError(who, "duplicate track id \"" + track.id + "\" in " + s.path.string());

  // ---- validate everything before writing anything, so a rejected track leaves the shard consistent ----
  int64_t n_frames = -1;
  std::string first_feature;
  for (const auto& [name, m] : track.frames) {
    if (m.frames < 0 || m.dim < 1 || static_cast<int64_t>(m.data.size()) != m.frames * m.dim)
      throw InputError(who, "feature " + name + ": data has " + std::to_string(m.data.size()) + " values, expected " +
                                std::to_string(m.frames) + " frames x " + std::to_string(m.dim));
    if (n_frames < 0) {
      n_frames = m.frames;
      first_feature = name;
    } else if (m.frames != n_frames) {
      throw InputError(who, "feature " + name + " has " + std::to_string(m.frames) + " frames but " + first_feature +
                                " has " + std::to_string(n_frames) + "; all features of a track share /frames/offsets");
    }
    for (size_t i = 0; i < m.data.size(); ++i) {
      if (!std::isfinite(m.data[i])) {
        int64_t t = static_cast<int64_t>(i) / m.dim, k = static_cast<int64_t>(i) % m.dim;
        throw InputError(who, "feature " + name + " has a non-finite value (" + std::to_string(m.data[i]) +
                                  ") at frame " + std::to_string(t) + ", column " + std::to_string(k));
      }
    }
  }
  // Summaries: given ones win; frames without a given summary are summarized here.
  std::map<std::string, SummaryStats> summary = track.summary;
  for (const auto& [name, m] : track.frames)
    if (!summary.count(name)) summary[name] = summarize(m);
  for (const auto& [name, st] : summary) {
    if (st.mean.empty()) throw InputError(who, "summary of " + name + " has no mean");
    if (!st.std.empty() && st.std.size() != st.mean.size())
      throw InputError(who, "summary of " + name + ": std has " + std::to_string(st.std.size()) + " values, mean has " +
                                std::to_string(st.mean.size()));
    for (const auto* v : {&st.mean, &st.std})
      for (size_t k = 0; k < v->size(); ++k)
        if (!std::isfinite((*v)[k]))
          throw InputError(who, "summary " + name + (v == &st.mean ? "_mean" : "_std") + " has a non-finite value (" +
                                    std::to_string((*v)[k]) + ") in column " + std::to_string(k));
  }

  if (!s.have_schema) {
    for (const auto& [name, m] : track.frames) s.frame_dims[name] = m.dim;
    for (const auto& [name, st] : summary)
      s.summary_schema[name] = {static_cast<int64_t>(st.mean.size()), !st.std.empty()};
  } else {
    if (keys_of(track.frames) != keys_of(s.frame_dims))
      throw InputError(who, "frame features " + join_names(keys_of(track.frames)) + " differ from the shard's " +
                                join_names(keys_of(s.frame_dims)) + " (" + s.path.string() + ")");
    for (const auto& [name, m] : track.frames)
      if (m.dim != s.frame_dims[name])
        throw InputError(who, "feature " + name + " has dim " + std::to_string(m.dim) + ", the shard's has " +
                                  std::to_string(s.frame_dims[name]));
    if (keys_of(summary) != keys_of(s.summary_schema))
      throw InputError(who, "summary features " + join_names(keys_of(summary)) + " differ from the shard's " +
                                join_names(keys_of(s.summary_schema)));
    for (const auto& [name, st] : summary) {
      const auto& sch = s.summary_schema[name];
      if (static_cast<int64_t>(st.mean.size()) != sch.dim || st.std.empty() == sch.has_std)
        throw InputError(who, "summary of " + name + " has dim " + std::to_string(st.mean.size()) +
                                  (st.std.empty() ? " without" : " with") + " std; the shard's has dim " +
                                  std::to_string(sch.dim) + (sch.has_std ? " with" : " without") + " std");
    }
  }

  // ---- write ----
  if (!s.have_schema) {
    if (!s.frame_dims.empty()) s.create_frame_datasets();
    s.have_schema = true;
  }
  for (const auto& [name, m] : track.frames) s.append_frames(name, m);
  s.offsets.push_back(s.offsets.back() + std::max<int64_t>(n_frames, 0));
  for (const auto& [name, st] : summary) {
    auto& mean = s.means[name];
    mean.insert(mean.end(), st.mean.begin(), st.mean.end());
    if (!st.std.empty()) {
      auto& sd = s.stds[name];
      sd.insert(sd.end(), st.std.begin(), st.std.end());
    }
  }
  s.ids.push_back(track.id);
  s.paths.push_back(track.path);
  s.countries.push_back(track.country);
  s.latitudes.push_back(track.latitude);
  s.longitudes.push_back(track.longitude);
  s.durations.push_back(track.duration_s);
  s.seen_ids.insert(track.id);
}

void ShardWriter::close() {
  Impl& s = *impl_;
  if (s.committed) return;
  h5::silence_errors();
  const std::string where = s.path.string() + ": ";
  try {
    const hsize_t n = s.ids.size();
    {
      h5::Handle tracks = h5::group(H5Gcreate2(s.file, "tracks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                    where + "cannot create /tracks");
      h5::write_string_dataset(tracks, "id", s.ids);
      h5::write_string_dataset(tracks, "path", s.paths);
      h5::write_string_dataset(tracks, "country", s.countries);
      write_float_vector(tracks, "latitude", s.latitudes);
      write_float_vector(tracks, "longitude", s.longitudes);
      write_float_vector(tracks, "duration_s", s.durations);
    }
    if (s.frames_group.valid()) {
      hsize_t m = s.offsets.size();
      h5::Handle space = h5::dataspace(H5Screate_simple(1, &m, nullptr), "H5Screate_simple");
      h5::Handle dset = h5::dataset(
          H5Dcreate2(s.frames_group, "offsets", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
          where + "cannot create /frames/offsets");
      h5::check_status(H5Dwrite(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.offsets.data()),
                       where + "cannot write /frames/offsets");
    }
    if (!s.summary_schema.empty()) {
      h5::Handle summary = h5::group(H5Gcreate2(s.file, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                     where + "cannot create /summary");
      for (const auto& [name, sch] : s.summary_schema) {
        write_matrix(summary, name + "_mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s.means[name].data(), n,
                     static_cast<hsize_t>(sch.dim));
        if (sch.has_std)
          write_matrix(summary, name + "_std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s.stds[name].data(), n,
                       static_cast<hsize_t>(sch.dim));
      }
    }
    const auto& a = s.attributes;
    h5::write_attribute(s.file, "format_version", static_cast<long long>(kFormatVersion));
    h5::write_attribute(s.file, "sample_rate", static_cast<long long>(a.sample_rate));
    h5::write_attribute(s.file, "n_fft", static_cast<long long>(a.n_fft));
    h5::write_attribute(s.file, "hop_length", static_cast<long long>(a.hop_length));
    h5::write_attribute(s.file, "feature_options", a.feature_options.dump());
    h5::write_attribute(s.file, "source", a.source);
    h5::write_attribute(s.file, "producer", a.producer);

    // Raw data first: closing a frame dataset writes its cached chunks (a failure here is recoverable).
    for (auto& [name, dset] : s.frame_dsets) h5::check_status(dset.reset(), where + "cannot write /frames/" + name);
    s.frame_dsets.clear();
    h5::check_status(s.frames_group.reset(), where + "cannot close /frames");
    // Then the metadata, in one flush. HDF5 1.10 cannot recover from a failed flush: the file can then never be
    // closed ("slist already enabled?"), and the open id crashes the exit (H5F__close_cb). So the flush is only
    // tried with room on the disk for every cached metadata entry; otherwise this is a full disk, before it.
    require_room_for_metadata(s.file, s.tmp, where);
    h5::check_status(H5Fflush(s.file, H5F_SCOPE_GLOBAL), where + "cannot write the shard");
    // The flushed file is complete. Closing can still write (free-space bookkeeping, the superblock's end of
    // file) and must not fail: those last writes go to memory, and the file is reopened below to check that
    // what the flush left is a readable HDF5 file.
    if (!h5::discard_further_writes(s.file)) throw IoError(where + "cannot detach the temporary file after writing it");
    h5::check_status(s.file.reset(), where + "cannot close temporary file " + s.tmp.string());
    {
      h5::Handle check = h5::file(H5Fopen(s.tmp.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                                  where + "the written temporary file " + s.tmp.string() + " does not open");
    }
    commit_atomic(s.tmp, s.path);
    s.committed = true;
  } catch (...) {
    s.remove_temporary();
    s.committed = true;  // nothing left to clean up; further add()/close() are errors or no-ops
    throw;
  }
}

}  // namespace songlines::shards
