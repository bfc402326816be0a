#include "extract/extract.h"

#include <algorithm>
#include <cctype>
#include <chrono>
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
#include "extract/extract_pipeline.h"
#include "extract/partition.h"
#include "features/device_engine.h"
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

namespace {

/// The options checked and the feature options resolved (the shard defaults filled in), before anything is read
/// or written.
features::FeatureOptions checked_feature_options(const ExtractOptions& options) {
  if (options.inputs.empty()) throw UsageError("extract: --input is required (files or folders)");
  if (options.output_dir.empty()) throw UsageError("extract: --output is required (a folder)");
  if (options.shard_size < 1) throw UsageError("extract: --shard-size must be >= 1, got " + std::to_string(options.shard_size));
  if (options.jobs < 0) throw UsageError("extract: --jobs must be >= 0, got " + std::to_string(options.jobs));
  if (options.max_batch_frames < 0)
    throw UsageError("extract: --batch-frames must be >= 0, got " + std::to_string(options.max_batch_frames));
  features::FeatureOptions fo = options.feature_options;
  if (fo.features.empty()) fo.features = features::default_shard_feature_names();
  fo.validate();
  return fo;
}

/// The engine that computes the features, set up before any file is read or the output folder is touched: an
/// unsupported feature or option, or an unusable device, is a UsageError (exit status 2) naming it.
struct Engine {
  features::Device device = features::Device::kCpu;
  features::FeatureEngineKind kind = features::FeatureEngineKind::kReference;
  std::unique_ptr<features::FeatureExtractor> reference;       // kReference
  std::unique_ptr<features::DeviceFeatureEngine> device_engine;  // kDeviceEngine
};

Engine set_up_engine(const ExtractOptions& options, const features::FeatureOptions& fo) {
  Engine e;
  e.device = features::resolve_device(options.device);
  e.kind = features::feature_engine_for(e.device, fo);
  if (e.kind != features::FeatureEngineKind::kDeviceEngine && options.max_batch_frames != 0)
    throw UsageError(std::string("extract --batch-frames: only for the device engine (--device host, or cuda); ") +
                     "--device " + features::device_name(e.device) + " computes one track at a time");
  if (e.kind == features::FeatureEngineKind::kReference) e.reference = std::make_unique<features::FeatureExtractor>(fo);
  if (e.kind == features::FeatureEngineKind::kDeviceEngine) {
    features::DeviceEngineOptions eo;
    eo.backend = e.device == features::Device::kHost ? features::DeviceBackend::kHost : features::DeviceBackend::kCuda;
    eo.max_batch_frames = options.max_batch_frames;
    e.device_engine = features::open_device_engine(fo, eo);
  }
  return e;
}

/// What the output folder already holds: the journaled tracks of an interrupted run (--resume), the ids they
/// took and the next shard index.
struct OutputState {
  std::map<std::string, JournalTrack> done;  // canonical path -> identity
  std::set<std::string> used_ids;
  int64_t next_index = 0;
};

/// The settings every shard of the folder shares (feature list and options, metadata blocks). A resume with
/// other settings is refused before anything in the folder changes: its remaining shards would differ from the
/// finished ones. Folders from versions without the file resume unchecked.
void check_and_keep_settings(const fs::path& dir, const ExtractOptions& options, const features::FeatureOptions& fo) {
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
}

/// --resume: keeps the journaled shards that exist, removes unfinished and unjournaled ones, and collects the
/// tracks already done.
void resume_from_journal(const fs::path& dir, std::vector<JournalEntry> journal, std::vector<fs::path> stray,
                         OutputState& state) {
  std::vector<JournalEntry> kept;
  std::set<std::string> kept_names;
  const size_t listed = journal.size();
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
  if (kept.size() != listed || !stray.empty()) rewrite_journal(dir, kept);
  for (const auto& e : kept) {
    state.next_index = std::max(state.next_index, shard_index(e.shard) + 1);
    for (const auto& t : e.tracks) {
      state.done[t.path] = t;
      state.used_ids.insert(t.id);
    }
  }
}

/// The output folder, fresh or an interrupted run to resume (refused when it holds an extraction and --resume
/// is not given).
OutputState prepare_output(const fs::path& dir, const ExtractOptions& options, const features::FeatureOptions& fo) {
  fs::create_directories(dir);
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
  check_and_keep_settings(dir, options, fo);
  OutputState state;
  if (options.resume) resume_from_journal(dir, std::move(journal), std::move(stray), state);
  return state;
}

/// The files still to extract (this part's range of the sorted list, less the tracks already done), each with
/// a unique id; missing inputs and skipped folder entries go to result.
std::vector<ExtractTask> build_work_list(const ExtractOptions& options, const Catalog& catalog, OutputState& state,
                                         ExtractResult& result) {
  AudioFileList found = find_audio_files(options.inputs, result.failed);
  result.skipped = found.skipped;
  std::vector<ExtractTask> tasks;
  // Ids over the whole list, then this part's range of it (--part K/N; the whole list without).
  const std::vector<std::string> ids = unique_track_ids(found, catalog);
  const auto [first, last] = options.part ? part_range(found.files.size(), *options.part)
                                          : std::pair<size_t, size_t>{0, found.files.size()};
  if (options.part && first == last && !found.files.empty())
    std::fprintf(stderr, "songlines: extract: part %d/%d is empty (the list has %zu files)\n", options.part->index,
                 options.part->count, found.files.size());
  for (size_t i = first; i < last; ++i) {
    const auto& path = found.files[i];
    auto it = state.done.find(path.string());
    if (it != state.done.end()) {
      JournalTrack now = journal_identity(path, it->second.id);
      if (now.size != it->second.size || now.mtime_ns != it->second.mtime_ns)
        std::fprintf(stderr, "songlines: resume: %s changed since it was extracted; keeping the extracted version\n",
                     path.c_str());
      ++result.tracks_resumed;
      continue;
    }
    ExtractTask t{path, ids[i], catalog.find(path)};
    // Unique in the list already; one taken by a journaled track (files added since) gets "#2", "#3", ...
    std::string id = t.id;
    for (int k = 2; state.used_ids.count(id); ++k) id = t.id + "#" + std::to_string(k);
    t.id = id;
    state.used_ids.insert(id);
    tasks.push_back(std::move(t));
  }
  if (found.files.empty() && result.failed.empty()) {
    std::string exts;
    for (const auto& e : audio::audio_extensions()) exts += (exts.empty() ? "" : " ") + e;
    throw Error("extract: no audio files found in the inputs (extensions: " + exts + ")");
  }
  return tasks;
}

/// Task i's shard record from its features: ids, path, duration, catalog metadata.
RecordMaker record_maker(const std::vector<ExtractTask>& tasks, const features::FeatureOptions& fo,
                         const Catalog& catalog, const fs::path& catalog_path) {
  return [&tasks, &fo, &catalog, catalog_path](size_t i, features::TrackFeatures tf, double duration_s) {
    const ExtractTask& task = tasks[i];
    shards::TrackRecord rec = to_record(std::move(tf), fo.features);
    rec.id = task.id;
    rec.path = task.path.string();
    rec.duration_s = static_cast<float>(duration_s);
    if (!catalog.empty()) {  // every track of a catalogued run carries the metadata blocks (zeros if unlisted)
      rec.summary[shards::kMetaGenre].mean = shards::genre_one_hot(task.meta ? task.meta->genre : "");
      rec.summary[shards::kMetaListeners].mean =
          shards::listeners_features(task.meta ? task.meta->listeners : "", catalog_path.string());
    }
    if (task.meta) {
      rec.country = task.meta->country;
      rec.latitude = task.meta->latitude;
      rec.longitude = task.meta->longitude;
    }
    return rec;
  };
}

/// The producer for the chosen engine (extract_pipeline.h).
std::unique_ptr<TrackProducer> start_producer(Engine& engine, const std::vector<ExtractTask>& tasks,
                                              const features::FeatureOptions& fo, int jobs, RecordMaker make_record,
                                              OutcomeQueue& queue) {
  audio::LoadOptions load;
  load.sample_rate = fo.sample_rate;
  if (engine.kind == features::FeatureEngineKind::kDeviceEngine)
    return start_device_producer(tasks, load, jobs, std::move(engine.device_engine), std::move(make_record), queue);
  const features::FeatureExtractor* extractor = engine.reference.get();
  TrackCompute compute = [extractor](const audio::MonoAudio& a) {
    return extractor->compute(a.samples.data(), static_cast<int64_t>(a.samples.size()));
  };
  return start_per_track_producer(tasks, load, jobs, std::move(compute), std::move(make_record), queue);
}

/// The writer: outcomes in input order into shards of shard_size tracks, each journaled when committed; failed
/// files listed in result.
void write_shards(OutcomeQueue& queue, const std::vector<ExtractTask>& tasks, const fs::path& dir,
                  const ExtractOptions& options, const features::FeatureOptions& fo, OutputState& state,
                  ExtractResult& result) {
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
    ++state.next_index;
  };
  ProgressBar bar("files", static_cast<int64_t>(tasks.size()), options.progress);
  const size_t failed_before = result.failed.size();
  for (size_t i = 0; i < tasks.size(); ++i) {
    Outcome o = queue.take(i);
    const std::string file = tasks[i].path.string();
    if (o.track) {
      if (!writer) {
        writer.emplace(dir / shard_name(state.next_index), attributes);
        entry.shard = shard_name(state.next_index);
      }
      try {
        writer->add(*o.track);
        entry.tracks.push_back(journal_identity(tasks[i].path, tasks[i].id));
        ++result.tracks_written;
        result.frames_written += o.frames;
        result.audio_seconds += o.track->duration_s;
        if (writer->size() >= options.shard_size) commit();
      } catch (const InputError& e) {
        result.failed.push_back({file, failure_reason(e, file)});
      }
    } else {
      result.failed.push_back({file, o.error});
    }
    const size_t nf = result.failed.size() - failed_before;
    bar.advance(1, nf ? std::to_string(nf) + " failed" : "");
  }
  if (writer && writer->size() > 0) commit();
  writer.reset();
  bar.finish();
}

}  // namespace

ExtractResult run_extract(const ExtractOptions& options) {
  const auto t_start = std::chrono::steady_clock::now();
  const features::FeatureOptions fo = checked_feature_options(options);
  Engine engine = set_up_engine(options, fo);  // before any file is read or written

  ExtractResult result;
  result.device = engine.device;
  result.jobs = options.jobs > 0 ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  if (options.part) check_sibling_parts(options.output_dir, *options.part);
  const fs::path dir = options.part ? options.output_dir / part_dir_name(*options.part) : options.output_dir;
  result.output_dir = dir;
  OutputState state = prepare_output(dir, options, fo);

  const Catalog catalog = options.catalog.empty() ? Catalog() : Catalog::load(options.catalog);
  const std::vector<ExtractTask> tasks = build_work_list(options, catalog, state, result);
  {
    // The queue outlives the producer's threads: the producer (declared after it) is destroyed first.
    OutcomeQueue queue(tasks.size(), 2 * static_cast<size_t>(result.jobs));
    const std::unique_ptr<TrackProducer> producer =
        start_producer(engine, tasks, fo, result.jobs, record_maker(tasks, fo, catalog, options.catalog), queue);
    write_shards(queue, tasks, dir, options, fo, state, result);
    result.device_batches = producer->device_batches();
  }
  for (const auto& p : shards::list_shards(dir))
    if (shard_index(p.filename().string()) >= 0) result.shards.push_back(p);
  if (options.write_csv) write_features_csv(dir, result.shards, options.catalog);
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace songlines::extract
