#include "extract/extract.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <thread>

#include <sys/stat.h>

#include "audio/audio_file.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "extract/catalog.h"
#include "core/csv.h"
#include "extract/extract_journal.h"
#include "extract/partition.h"
#include "features/cuda_feature_engine.h"
#include "features/feature_extractor.h"
#include "shards/metadata_blocks.h"
#include "shards/shard.h"

namespace songlines::extract {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_audio_extension(const fs::path& p) {
  const auto ext = lower(p.extension().string());
  const auto& exts = audio::audio_extensions();
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

std::string shard_name(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05lld.h5", static_cast<long long>(index));
  return buf;
}

/// Index of "shard-NNNNN.h5", or -1.
int64_t shard_index(const std::string& name) {
  if (name.size() < 10 || name.rfind("shard-", 0) != 0 || name.substr(name.size() - 3) != ".h5") return -1;
  const std::string digits = name.substr(6, name.size() - 9);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return -1;
  return std::stoll(digits);
}

/// One file's outcome, produced by a worker.
struct Outcome {
  std::optional<shards::TrackRecord> track;
  std::string error;  // when !track
  int64_t frames = 0;
};

std::string reason_of(const InputError& e, const std::string& file) {
  return e.path() == file ? e.reason() : std::string(e.what());
}

/// All features of a track share /frames/offsets, so frames are trimmed to the shortest feature (the CQT-based
/// ones may have a frame fewer than the STFT-based ones, librosa __trim_stack). Summaries are taken first, over
/// each feature's full output, so they equal librosa's np.mean / np.std of that feature.
shards::TrackRecord to_record(features::TrackFeatures tf, const std::vector<std::string>& names) {
  shards::TrackRecord rec;
  int64_t common = -1;
  for (const auto& name : names) {
    auto it = tf.frames.find(name);
    if (it == tf.frames.end()) throw Error("feature engine did not return requested feature " + name);
    rec.summary[name] = shards::summarize(it->second);
    common = common < 0 ? it->second.frames : std::min(common, it->second.frames);
    rec.frames[name] = std::move(it->second);
  }
  for (auto& [name, m] : rec.frames) {
    if (m.frames > common) {
      m.frames = common;
      m.data.resize(static_cast<size_t>(common * m.dim));
    }
  }
  return rec;
}

}  // namespace

namespace {

/// A real directory, whatever path reached it.
struct DirectoryIdentity {
  dev_t device;
  ino_t inode;
  auto operator<=>(const DirectoryIdentity&) const = default;
};

/// Walks one input folder, following symbolic links, each real directory once (by device and inode), so link
/// cycles end; an entry whose link cannot be resolved (dangling, a loop of links) is skipped and listed.
/// Entries are visited in name order, so ids and "first path wins" do not depend on readdir's order.
void walk_folder(const fs::path& input, const std::function<void(const fs::path&, const fs::path&)>& add_file,
                 std::vector<FailedFile>& failed, std::vector<FailedFile>& skipped) {
  struct Pending {
    fs::path path;  // as walked: input/...
    fs::path rel;   // relative to input
  };
  std::set<DirectoryIdentity> visited;
  struct stat st {};
  if (::stat(input.c_str(), &st) != 0) {
    failed.push_back({input.string(), std::string("cannot walk folder: ") + std::strerror(errno)});
    return;
  }
  visited.insert({st.st_dev, st.st_ino});
  std::vector<Pending> stack{{input, fs::path()}};
  while (!stack.empty()) {
    const Pending dir = std::move(stack.back());
    stack.pop_back();
    std::error_code ec;
    std::vector<fs::path> names;
    for (fs::directory_iterator it(dir.path, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename());
    if (ec) {
      if (dir.rel.empty()) failed.push_back({input.string(), "cannot walk folder: " + ec.message()});
      else skipped.push_back({dir.path.string(), "cannot read folder: " + ec.message()});
      continue;
    }
    std::sort(names.begin(), names.end());
    std::vector<Pending> subdirs;
    for (const auto& name : names) {
      if (name.string().rfind('.', 0) == 0) continue;  // hidden files and folders
      const fs::path p = dir.path / name;
      const fs::path rel = dir.rel / name;
      if (::stat(p.c_str(), &st) != 0) {
        const int err = errno;
        struct stat lst {};
        const bool link = ::lstat(p.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode);
        std::string why = err == ENOENT && link ? "dangling symbolic link (its target does not exist)"
                          : err == ELOOP        ? "symbolic link that resolves to itself (loop of links)"
                                                : std::string("cannot stat: ") + std::strerror(err);
        skipped.push_back({p.string(), why});
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        if (has_audio_extension(p)) {  // "x.wav/" is reported as a bad file
          add_file(p, rel);
          continue;
        }
        if (visited.insert({st.st_dev, st.st_ino}).second) subdirs.push_back({p, rel});
        continue;  // a directory already walked (a link back up, or a second link to it): once is enough
      }
      if (has_audio_extension(p)) add_file(p, rel);
    }
    // Depth first, in name order: the stack pops the first name first.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
}

}  // namespace

AudioFileList find_audio_files(const std::vector<fs::path>& inputs, std::vector<FailedFile>& failed) {
  std::map<std::string, std::string> found;  // canonical path -> derived id (first input wins)
  auto add = [&](const fs::path& p, std::string id) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(fs::absolute(p), ec);
    if (ec) canonical = fs::absolute(p);
    found.emplace(canonical.string(), std::move(id));
  };
  AudioFileList list;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (!fs::exists(input, ec)) {
      failed.push_back({input.string(), "no such file or directory"});
      continue;
    }
    if (!fs::is_directory(input, ec)) {
      add(input, input.stem().string());
      continue;
    }
    walk_folder(
        input, [&](const fs::path& p, const fs::path& rel) { add(p, fs::path(rel).replace_extension().generic_string()); },
        failed, list.skipped);
  }
  for (auto& [path, id] : found) {
    list.files.emplace_back(path);
    list.ids.push_back(id);
  }
  return list;
}

std::vector<std::string> features_csv_header() {
  std::vector<std::string> h = {"track_id", "track_name", "artist_name", "location", "listeners", "genre"};
  for (const auto& b : kSeedCsvBlocks)
    for (int i = 1; i <= b.dim; ++i) h.push_back(b.prefix + std::to_string(i));
  return h;
}

void write_features_csv(const fs::path& output_dir, const std::vector<fs::path>& shard_files, const fs::path& catalog_path) {
  using Block = SeedCsvBlock;  // the seed's feature blocks, in its column order (core/csv.h)
  Catalog catalog = catalog_path.empty() ? Catalog() : Catalog::load(catalog_path);
  std::string out;
  bool header_written = false;
  std::vector<const Block*> blocks;
  for (const auto& file : shard_files) {
    shards::ShardReader reader(file);
    std::vector<const Block*> present;
    std::map<std::string, std::vector<double>> means;
    for (const auto& b : kSeedCsvBlocks) {
      auto names = reader.summary_feature_names();
      if (std::find(names.begin(), names.end(), b.feature) == names.end()) continue;
      int64_t dim = 0;
      means[b.feature] = reader.read_summary_mean(b.feature, &dim);
      if (dim != b.dim)
        throw InputError(file.string(), std::string("/summary/") + b.feature + "_mean has dim " + std::to_string(dim) +
                                            ", features.csv needs " + std::to_string(b.dim));
      present.push_back(&b);
    }
    if (!header_written) {
      // Blocks whose feature was not extracted (--features without it) are left out of the header.
      blocks = present;
      std::vector<std::string> header = {"track_id", "track_name", "artist_name", "location", "listeners", "genre"};
      for (const Block* b : blocks)
        for (int64_t i = 1; i <= b->dim; ++i) header.push_back(b->prefix + std::to_string(i));
      out += csv_line(header);
      header_written = true;
    } else if (present != blocks) {
      throw InputError(file.string(), "holds a different feature set from the first shard; cannot write one features.csv");
    }
    for (int64_t t = 0; t < reader.size(); ++t) {
      const auto& path = reader.paths()[static_cast<size_t>(t)];
      auto entry = catalog.find(path);
      std::vector<std::string> row = {reader.ids()[static_cast<size_t>(t)],
                                      entry && !entry->track_name.empty() ? entry->track_name : fs::path(path).stem().string(),
                                      entry ? entry->artist_name : "", entry ? entry->location : "",
                                      entry ? entry->listeners : "", entry ? entry->genre : ""};
      for (const Block* b : blocks) {
        const auto& m = means[b->feature];
        for (int64_t k = 0; k < b->dim; ++k) row.push_back(format_double(m[static_cast<size_t>(t * b->dim + k)]));
      }
      out += csv_line(row);
    }
  }
  if (!header_written) out = csv_line(features_csv_header());
  write_file_atomic(output_dir / "features.csv", out);
}

int extract_exit_status(const ExtractResult& r) {
  if (r.failed.empty()) return static_cast<int>(ExitStatus::kOk);
  if (r.tracks_written + r.tracks_resumed == 0) return static_cast<int>(ExitStatus::kFailed);
  return static_cast<int>(ExitStatus::kPartial);
}

ExtractResult run_extract(const ExtractOptions& options) {
  const auto t_start = std::chrono::steady_clock::now();
  if (options.inputs.empty()) throw UsageError("extract: --input is required (files or folders)");
  if (options.output_dir.empty()) throw UsageError("extract: --output is required (a folder)");
  if (options.shard_size < 1) throw UsageError("extract: --shard-size must be >= 1, got " + std::to_string(options.shard_size));
  if (options.jobs < 0) throw UsageError("extract: --jobs must be >= 0, got " + std::to_string(options.jobs));

  features::FeatureOptions fo = options.feature_options;
  if (fo.features.empty()) fo.features = features::default_shard_feature_names();
  fo.validate();

  ExtractResult result;
  result.device = features::resolve_device(options.device);
  result.jobs = options.jobs > 0 ? options.jobs : std::max(1u, std::thread::hardware_concurrency());

  if (options.part) check_sibling_parts(options.output_dir, *options.part);
  const fs::path dir = options.part ? options.output_dir / part_dir_name(*options.part) : options.output_dir;
  result.output_dir = dir;
  fs::create_directories(dir);

  // ---- state of the output folder: fresh, or an interrupted run to resume ----
  std::vector<JournalEntry> journal = read_journal(dir);
  std::vector<fs::path> stray;  // shards and temporaries the journal does not vouch for
  int64_t existing_shards = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (shard_index(name) >= 0) ++existing_shards;
    if (name.rfind("shard-", 0) == 0 && name.find(".h5.tmp.") != std::string::npos) stray.push_back(e.path());
  }
  if (!options.resume && (existing_shards > 0 || !journal.empty()))
    throw UsageError("extract: " + dir.string() + " already holds an extraction (" + std::to_string(existing_shards) +
                     " shards); pass --resume to continue it, or choose an empty folder");
  // The settings every shard of this folder shares (feature list and options, metadata blocks). A resume with
  // other settings is refused before anything in the folder changes: its remaining shards would differ from the
  // finished ones. Folders from versions without the file resume unchecked.
  const Json settings{{"feature_options", fo.to_json()}, {"catalog", !options.catalog.empty()}};
  const fs::path settings_path = dir / kExtractSettingsName;
  if (options.resume && fs::exists(settings_path)) {
    const Json before = load_json_file(settings_path.string());
    if (before != settings) {
      std::string what;
      if (before.value("feature_options", Json()).value("features", Json()) != fo.to_json().value("features", Json()))
        what = "the feature list (--features) was " + before["feature_options"].value("features", Json()).dump() +
               ", now " + fo.to_json().value("features", Json()).dump();
      else if (before.value("catalog", false) != !options.catalog.empty())
        what = std::string("the first run ") + (before.value("catalog", false) ? "had" : "had no") + " --catalog";
      else
        what = "the feature options differ";
      throw UsageError("extract --resume: " + dir.string() + " was extracted with other settings: " + what +
                       "; resume with the same settings, or extract into another folder");
    }
  }
  if (!options.resume || !fs::exists(settings_path)) write_json_file_atomic(settings_path.string(), settings);
  std::map<std::string, JournalTrack> done;  // canonical path -> identity
  std::set<std::string> used_ids;
  int64_t next_index = 0;
  if (options.resume) {
    std::vector<JournalEntry> kept;
    std::set<std::string> kept_names;
    for (auto& e : journal) {
      if (!fs::exists(dir / e.shard)) {
        std::fprintf(stderr, "songlines: resume: %s is listed in the journal but missing; its tracks are redone\n",
                     e.shard.c_str());
        continue;
      }
      kept_names.insert(e.shard);
      kept.push_back(std::move(e));
    }
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (shard_index(name) >= 0 && !kept_names.count(name)) stray.push_back(e.path());
    }
    for (const auto& p : stray) {
      std::fprintf(stderr, "songlines: resume: removing unfinished %s\n", p.filename().c_str());
      fs::remove(p);
    }
    if (kept.size() != journal.size() || !stray.empty()) rewrite_journal(dir, kept);
    for (const auto& e : kept) {
      next_index = std::max(next_index, shard_index(e.shard) + 1);
      for (const auto& t : e.tracks) {
        done[t.path] = t;
        used_ids.insert(t.id);
      }
    }
  }

  Catalog catalog = options.catalog.empty() ? Catalog() : Catalog::load(options.catalog);

  // ---- the work list ----
  AudioFileList found = find_audio_files(options.inputs, result.failed);
  result.skipped = found.skipped;
  struct Task {
    fs::path path;
    std::string id;
    std::optional<CatalogEntry> meta;
  };
  std::vector<Task> tasks;
  // Ids over the whole list, then this part's range of it (--part K/N; the whole list without).
  const std::vector<std::string> ids = unique_track_ids(found, catalog);
  const auto [first, last] = options.part ? part_range(found.files.size(), *options.part)
                                          : std::pair<size_t, size_t>{0, found.files.size()};
  if (options.part && first == last && !found.files.empty())
    std::fprintf(stderr, "songlines: extract: part %d/%d is empty (the list has %zu files)\n", options.part->index,
                 options.part->count, found.files.size());
  for (size_t i = first; i < last; ++i) {
    const auto& path = found.files[i];
    auto it = done.find(path.string());
    if (it != done.end()) {
      JournalTrack now = journal_identity(path, it->second.id);
      if (now.size != it->second.size || now.mtime_ns != it->second.mtime_ns)
        std::fprintf(stderr, "songlines: resume: %s changed since it was extracted; keeping the extracted version\n",
                     path.c_str());
      ++result.tracks_resumed;
      continue;
    }
    Task t{path, ids[i], catalog.find(path)};
    // Unique in the list already; one taken by a journaled track (files added since) gets "#2", "#3", ...
    std::string id = t.id;
    for (int k = 2; used_ids.count(id); ++k) id = t.id + "#" + std::to_string(k);
    t.id = id;
    used_ids.insert(id);
    tasks.push_back(std::move(t));
  }
  if (found.files.empty() && result.failed.empty()) {
    std::string exts;
    for (const auto& e : audio::audio_extensions()) exts += (exts.empty() ? "" : " ") + e;
    throw Error("extract: no audio files found in the inputs (extensions: " + exts + ")");
  }

  // ---- workers: decode + features, in parallel; this thread writes shards in input order ----
  std::optional<features::FeatureExtractor> extractor;
  if (result.device == features::Device::kCpu) extractor.emplace(fo);
  audio::LoadOptions load_options;
  load_options.sample_rate = fo.sample_rate;

  auto process = [&](const Task& task) -> Outcome {
    Outcome o;
    const std::string file = task.path.string();
    try {
      audio::MonoAudio audio = audio::load_audio(file, load_options);
      features::TrackFeatures tf;
      if (extractor) {
        tf = extractor->compute(audio.samples.data(), static_cast<int64_t>(audio.samples.size()));
      } else {
        std::vector<std::span<const float>> batch = {std::span<const float>(audio.samples)};
        tf = std::move(features::compute_features_cuda(fo, batch).at(0));
      }
      shards::TrackRecord rec = to_record(std::move(tf), fo.features);
      rec.id = task.id;
      rec.path = file;
      rec.duration_s = static_cast<float>(audio.duration_s());
      if (!catalog.empty()) {  // every track of a catalogued run carries the metadata blocks (zeros if unlisted)
        rec.summary[shards::kMetaGenre].mean = shards::genre_one_hot(task.meta ? task.meta->genre : "");
        rec.summary[shards::kMetaListeners].mean =
            shards::listeners_features(task.meta ? task.meta->listeners : "", options.catalog.string());
      }
      if (task.meta) {
        rec.country = task.meta->country;
        rec.latitude = task.meta->latitude;
        rec.longitude = task.meta->longitude;
      }
      o.frames = rec.frames.empty() ? 0 : rec.frames.begin()->second.frames;
      o.track = std::move(rec);
    } catch (const InputError& e) {
      o.error = reason_of(e, file);
    } catch (const std::exception& e) {
      o.error = e.what();
    }
    return o;
  };

  const size_t n = tasks.size();
  const size_t window = 2 * static_cast<size_t>(result.jobs);
  std::vector<std::optional<Outcome>> slots(n);
  std::mutex mutex;
  std::condition_variable cv_result, cv_window;
  std::atomic<size_t> next_task{0};
  size_t next_write = 0;
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t i = next_task++;
      if (i >= n) return;
      {
        std::unique_lock lock(mutex);
        cv_window.wait(lock, [&] { return stop || i < next_write + window; });
        if (stop) return;
      }
      Outcome o = process(tasks[i]);
      {
        std::lock_guard lock(mutex);
        slots[i] = std::move(o);
      }
      cv_result.notify_all();
    }
  };
  std::vector<std::thread> threads;
  struct Joiner {  // stops and joins the workers on every exit path, including exceptions
    std::vector<std::thread>& threads;
    std::mutex& mutex;
    bool& stop;
    std::condition_variable& cv;
    ~Joiner() {
      {
        std::lock_guard lock(mutex);
        stop = true;
      }
      cv.notify_all();
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } joiner{threads, mutex, stop, cv_window};
  const int n_threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(result.jobs), std::max<size_t>(n, 1)));
  for (int k = 0; k < n_threads && n > 0; ++k) threads.emplace_back(worker);

  shards::ShardAttributes attributes;
  attributes.sample_rate = fo.sample_rate;
  attributes.n_fft = fo.stft.n_fft;
  attributes.hop_length = fo.stft.hop_length;
  attributes.feature_options = fo.to_json();
  attributes.source = "audio";

  std::optional<shards::ShardWriter> writer;
  JournalEntry entry;
  auto commit = [&] {
    writer->close();
    append_journal(dir, entry);
    writer.reset();
    entry = {};
    ++next_index;
  };

  ProgressBar bar("files", static_cast<int64_t>(n), options.progress);
  size_t failed_before = result.failed.size();
  for (size_t i = 0; i < n; ++i) {
    Outcome o;
    {
      std::unique_lock lock(mutex);
      cv_result.wait(lock, [&] { return slots[i].has_value(); });
      o = std::move(*slots[i]);
      slots[i].reset();
      next_write = i + 1;
    }
    cv_window.notify_all();
    const std::string file = tasks[i].path.string();
    if (o.track) {
      if (!writer) {
        writer.emplace(dir / shard_name(next_index), attributes);
        entry.shard = shard_name(next_index);
      }
      try {
        writer->add(*o.track);
        entry.tracks.push_back(journal_identity(tasks[i].path, tasks[i].id));
        ++result.tracks_written;
        result.frames_written += o.frames;
        result.audio_seconds += o.track->duration_s;
        if (writer->size() >= options.shard_size) commit();
      } catch (const InputError& e) {
        result.failed.push_back({file, reason_of(e, file)});
      }
    } else {
      result.failed.push_back({file, o.error});
    }
    size_t nf = result.failed.size() - failed_before;
    bar.advance(1, nf ? std::to_string(nf) + " failed" : "");
  }
  if (writer && writer->size() > 0) commit();
  writer.reset();
  bar.finish();

  for (const auto& p : shards::list_shards(dir))
    if (shard_index(p.filename().string()) >= 0) result.shards.push_back(p);
  if (options.write_csv) write_features_csv(dir, result.shards, options.catalog);
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace songlines::extract
