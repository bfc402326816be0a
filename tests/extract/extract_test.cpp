// `songlines extract` end to end: good and bad files, features.csv against the shards, catalog metadata,
// exit statuses, and resume after kill -9. Plus the pieces: CSV, synthesizer.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "audio/audio_file.h"
#include "core/error.h"
#include "core/csv.h"
#include "extract/extract.h"
#include "extract/extract_journal.h"
#include "extract/synthetic_music.h"
#include "shards/metadata_blocks.h"
#include "shards/shard.h"
#include "support/test_support.h"

#include "extract_fixtures.h"  // tests/extract

namespace songlines::extract {
namespace {

namespace fs = std::filesystem;
using songlines::testing::MaxAbsNear;
using songlines::testing::run_songlines;
using songlines::testing::TempDir;
using namespace fixtures;

std::string out_of(const songlines::testing::CommandResult& r) { return r.output; }

TEST(ExtractEndToEnd, GoodFilesInShardsBadFilesListedExit3AndCsvEqualsSummaries) {
  TempDir tmp;
  const fs::path in = tmp / "music";
  auto stems = write_good_files(in, 3, 2.0);
  auto more = write_good_files(in / "sub", 2, 2.0, 3);
  write_bad_files(in);
  const fs::path out = tmp / "out";
  auto r = run_songlines("extract --input " + in.string() + " --output " + out.string() +
                         " --jobs 2 --shard-size 2 --no-progress");
  EXPECT_EQ(r.exit_code, 3) << out_of(r);
  for (const char* bad : {"empty.wav", "text.wav", "x.wav"}) EXPECT_NE(r.output.find(bad), std::string::npos) << bad << "\n" << r.output;
  EXPECT_NE(r.output.find("3 files failed"), std::string::npos) << r.output;

  ShardContents c = read_all(out);
  EXPECT_EQ(c.tracks, 5);
  std::set<std::string> want = {"good-000", "good-001", "good-002", "sub/good-003", "sub/good-004"};
  std::set<std::string> got;
  for (const auto& [id, _] : c.means) got.insert(id);
  EXPECT_EQ(got, want);
  EXPECT_EQ(shards::list_shards(out).size(), 3u);  // 5 tracks, 2 per shard

  // features.csv: the seed header, one row per track, values equal to the shard summary means exactly.
  CsvTable csv = read_csv((out / "features.csv").string());
  EXPECT_EQ(csv.header, features_csv_header());
  ASSERT_EQ(csv.rows.size(), 5u);
  ASSERT_EQ(csv.header.size(), 6u + 20 + 12 + 7 + 6);
  const std::pair<const char*, int> blocks[] = {{"mfcc", 20}, {"chroma_stft", 12}, {"spectral_contrast", 7}, {"tonnetz", 6}};
  for (const auto& row : csv.rows) {
    const std::string& id = row[0];
    ASSERT_TRUE(c.means.count(id)) << id;
    EXPECT_EQ(row[1], fs::path(id).filename().string());  // track_name: file stem without a catalog
    std::vector<double> from_csv, from_shard;
    size_t col = 6;
    for (const auto& [feature, dim] : blocks) {
      const auto& m = c.means[id].at(feature);
      ASSERT_EQ(m.size(), static_cast<size_t>(dim));
      for (int k = 0; k < dim; ++k) {
        from_csv.push_back(std::stod(row[col++]));
        from_shard.push_back(m[static_cast<size_t>(k)]);
      }
    }
    EXPECT_TRUE(MaxAbsNear(from_csv, from_shard, 0.0, "features.csv vs shard for " + id));
  }
  // Default shard features: the seed's four plus mel_db, and no temporaries or stray files.
  shards::ShardReader first(shards::list_shards(out)[0]);
  EXPECT_EQ(first.frame_feature_names(),
            (std::vector<std::string>{"chroma_stft", "mel_db", "mfcc", "spectral_contrast", "tonnetz"}));
  EXPECT_EQ(first.attributes().source, "audio");
  EXPECT_EQ(first.attributes().sample_rate, 22050);
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(ExtractEndToEnd, AllBadExits1AndRefusesNonEmptyOutputWithoutResume) {
  TempDir tmp;
  write_bad_files(tmp.path());
  auto r = run_songlines("extract --input " + (tmp / "empty.wav").string() + " --input " + (tmp / "text.wav").string() +
                         " --output " + (tmp / "out").string() + " --no-progress");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("text.wav"), std::string::npos) << r.output;

  write_good_files(tmp / "g", 1, 1.0);
  auto ok = run_songlines("extract --input " + (tmp / "g").string() + " --output " + (tmp / "out2").string() + " --no-progress");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  auto again = run_songlines("extract --input " + (tmp / "g").string() + " --output " + (tmp / "out2").string() + " --no-progress");
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  // --resume on a finished job: nothing redone, nothing duplicated, exit 0.
  auto resumed = run_songlines("extract --resume --input " + (tmp / "g").string() + " --output " + (tmp / "out2").string() +
                               " --no-progress");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read_all(tmp / "out2").tracks, 1);
}

TEST(ExtractCatalog, RowsFindFilesByPathOrTrackIdAndFillCsvAndCoordinates) {
  TempDir tmp;
  write_good_files(tmp / "a", 2, 1.0);
  {
    std::ofstream cat(tmp / "catalog.csv");
    cat << "track_id,track_name,artist_name,location,listeners,genre,country,latitude,longitude,path\n"
        << "T1,\"Song, with comma\",Ana,Spain,123,Flamenco,ES,40.42,-3.75,a/good-000.wav\n"
        << "T2,Other,Bo,Japan,,Reggae,JP,35.68,139.69," << (tmp / "a" / "good-001.wav").string() << "\n";
  }
  ExtractOptions o;
  o.inputs = {tmp / "a"};
  o.output_dir = tmp / "out";
  o.catalog = tmp / "catalog.csv";
  o.jobs = 2;
  o.progress = ProgressMode::kQuiet;
  ExtractResult r = run_extract(o);
  EXPECT_EQ(r.tracks_written, 2);
  EXPECT_TRUE(r.failed.empty());
  shards::ShardReader reader(r.shards.at(0));
  ASSERT_EQ(reader.ids(), (std::vector<std::string>{"T1", "T2"}));
  EXPECT_EQ(reader.countries(), (std::vector<std::string>{"ES", "JP"}));
  EXPECT_FLOAT_EQ(reader.latitudes()[0], 40.42f);
  EXPECT_FLOAT_EQ(reader.longitudes()[1], 139.69f);
  // The catalog's genre and listeners become the metadata blocks (Flamenco is not a seed genre: all zeros).
  int64_t dim = 0;
  auto genre = reader.read_summary_mean(shards::kMetaGenre, &dim);
  ASSERT_EQ(dim, 11);
  EXPECT_EQ(std::accumulate(genre.begin(), genre.begin() + 11, 0.0), 0.0);
  EXPECT_EQ(genre[11 + 6], 1.0);  // T2: Reggae
  auto listeners = reader.read_summary_mean(shards::kMetaListeners, &dim);
  ASSERT_EQ(dim, 2);
  EXPECT_NEAR(listeners[0], std::log10(124.0), 1e-12);
  EXPECT_EQ(listeners[1], 1.0);
  EXPECT_EQ(listeners[3], 0.0);  // T2: unknown count
  CsvTable csv = read_csv((tmp / "out" / "features.csv").string());
  ASSERT_EQ(csv.rows.size(), 2u);
  EXPECT_EQ(std::vector<std::string>(csv.rows[0].begin(), csv.rows[0].begin() + 6),
            (std::vector<std::string>{"T1", "Song, with comma", "Ana", "Spain", "123", "Flamenco"}));

  // Without a path column, track_id matches the file stem.
  {
    std::ofstream cat(tmp / "by_id.csv");
    cat << "track_id,track_name,latitude,longitude\ngood-001,By Id,1.5,2.5\n";
  }
  o.output_dir = tmp / "out_id";
  o.catalog = tmp / "by_id.csv";
  r = run_extract(o);
  shards::ShardReader r2(r.shards.at(0));
  EXPECT_EQ(r2.ids(), (std::vector<std::string>{"good-000", "good-001"}));
  EXPECT_TRUE(std::isnan(r2.latitudes()[0]));
  EXPECT_FLOAT_EQ(r2.latitudes()[1], 1.5f);

  std::ofstream(tmp / "bad.csv") << "track_id,latitude\nx,123\n";
  o.catalog = tmp / "bad.csv";
  o.output_dir = tmp / "out_bad";
  EXPECT_THROW(run_extract(o), InputError);
  std::ofstream(tmp / "bad_listeners.csv") << "track_id,listeners\ngood-000,many\n";
  o.catalog = tmp / "bad_listeners.csv";
  try {
    run_extract(o);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad_listeners.csv:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"many\""), std::string::npos) << e.what();
  }
}

// ---- resume after kill -9 ------------------------------------------------------------------------------------

TEST(ExtractResume, AfterKill9EveryTrackExactlyOnceAndValuesEqualACleanRun) {
  TempDir tmp;
  const int n_files = 90;  // 30 shards: a loaded machine cannot finish them all between two polls
  write_good_files(tmp / "in", n_files, 1.5);
  const std::string in = (tmp / "in").string();

  // Clean reference run.
  auto clean = run_songlines("extract --input " + in + " --output " + (tmp / "clean").string() +
                             " --jobs 2 --shard-size 3 --no-progress");
  ASSERT_EQ(clean.exit_code, 0) << clean.output;

  // Interrupted run: killed with SIGKILL once the first shard is committed and journaled.
  const fs::path out = tmp / "out";
  pid_t pid = spawn_songlines({"extract", "--input", in, "--output", out.string(), "--jobs", "1", "--shard-size", "3",
                               "--no-progress"});
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (journal_lines(out) < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  int status = 0;
  bool still_running = waitpid(pid, &status, WNOHANG) == 0;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  const size_t committed = journal_lines(out);
  ASSERT_GE(committed, 1u) << "first shard never committed";
  // The kill must have interrupted the job, or this test proves nothing.
  ASSERT_TRUE(still_running) << "extract finished before it could be killed";
  ASSERT_LT(committed, static_cast<size_t>(n_files / 3));

  auto resumed = run_songlines("extract --resume --input " + in + " --output " + out.string() +
                               " --jobs 2 --shard-size 3 --no-progress");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("already extracted (resumed)"), std::string::npos) << resumed.output;

  ShardContents a = read_all(tmp / "clean");
  ShardContents b = read_all(out);
  EXPECT_EQ(a.tracks, n_files);
  EXPECT_EQ(b.tracks, n_files);
  ASSERT_EQ(a.means.size(), b.means.size());
  for (const auto& [id, feats] : a.means) {
    ASSERT_TRUE(b.means.count(id)) << id << " missing after resume";
    for (const auto& [name, m] : feats) EXPECT_EQ(b.means[id].at(name), m) << id << " " << name;
    for (const auto& [name, f] : a.frames[id]) EXPECT_EQ(b.frames[id].at(name), f) << id << " " << name;
  }
  CsvTable csv = read_csv((out / "features.csv").string());
  EXPECT_EQ(csv.rows.size(), static_cast<size_t>(n_files));
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

// Four 1 s tracks extracted from dir/in into dir/out as two shards of two (one thread, quiet); the options.
ExtractOptions extract_four_tracks_in_two_shards(const fs::path& dir) {
  write_good_files(dir / "in", 4, 1.0);
  ExtractOptions o;
  o.inputs = {dir / "in"};
  o.output_dir = dir / "out";
  o.shard_size = 2;
  o.jobs = 1;
  o.progress = ProgressMode::kQuiet;
  run_extract(o);
  return o;
}

TEST(ExtractResume, JournalDropsTornLastLineAndUnjournaledShardsAreRemoved) {
  TempDir tmp;
  ExtractOptions o = extract_four_tracks_in_two_shards(tmp.path());
  // Simulate: shard-00001 committed but its journal line torn mid-write, plus a leftover temporary.
  auto entries = read_journal(o.output_dir);
  ASSERT_EQ(entries.size(), 2u);
  rewrite_journal(o.output_dir, {entries[0]});
  { std::ofstream(o.output_dir / kJournalName, std::ios::app) << "{\"shard\":\"shard-00001.h5\",\"tra"; }
  std::ofstream(o.output_dir / "shard-00002.h5.tmp.999.0") << "partial";
  EXPECT_EQ(read_journal(o.output_dir).size(), 1u);
  o.resume = true;
  ExtractResult r = run_extract(o);
  EXPECT_EQ(r.tracks_resumed, 2);
  EXPECT_EQ(r.tracks_written, 2);
  EXPECT_FALSE(fs::exists(o.output_dir / "shard-00002.h5.tmp.999.0"));
  EXPECT_EQ(read_all(o.output_dir).tracks, 4);
}

// A resume with another feature list (or with / without a catalog) is refused before anything in the folder
// changes (it used to write the remaining shards with the new set, then fail, leaving the folder stuck); the
// original settings still resume it.
TEST(ExtractResume, OtherSettingsAreRefusedUpFrontAndTheFolderStaysResumable) {
  TempDir tmp;
  ExtractOptions o = extract_four_tracks_in_two_shards(tmp.path());
  // Interrupted after the first shard: its journal keeps one entry, the second shard is gone.
  auto entries = read_journal(o.output_dir);
  ASSERT_EQ(entries.size(), 2u);
  fs::remove(o.output_dir / entries[1].shard);
  rewrite_journal(o.output_dir, {entries[0]});
  const auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(o.output_dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = listing();

  ExtractOptions other = o;
  other.resume = true;
  other.feature_options.features = {"mfcc", "chroma_stft"};
  try {
    run_extract(other);
    ADD_FAILURE() << "a resume with another feature list must be refused";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("other settings"), std::string::npos) << m;
    EXPECT_NE(m.find("--features"), std::string::npos) << m;
    EXPECT_NE(m.find("chroma_stft"), std::string::npos) << m;
  }
  EXPECT_EQ(listing(), before) << "nothing in the folder may change";
  EXPECT_EQ(read_journal(o.output_dir).size(), 1u);

  o.resume = true;
  ExtractResult r = run_extract(o);
  EXPECT_EQ(r.tracks_resumed, 2);
  EXPECT_EQ(r.tracks_written, 2);
  EXPECT_EQ(read_all(o.output_dir).tracks, 4);
}

// ---- pieces ------------------------------------------------------------------------------------------------

TEST(Csv, QuotedFieldsRoundTripAndRaggedRowsAreErrors) {
  std::vector<std::string> fields = {"plain", "with, comma", "with \"quote\"", "multi\nline", ""};
  std::string text = csv_line({"a", "b", "c", "d", "e"}) + csv_line(fields);
  CsvTable t = parse_csv(text, "mem");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0], fields);
  EXPECT_THROW(parse_csv("a,b\n1,2,3\n", "mem"), InputError);
  EXPECT_THROW(parse_csv("a,b\n\"open,2\n", "mem"), InputError);
  EXPECT_EQ(std::stod(format_double(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(SyntheticMusic, DeterministicPeakNormalizedAndSeedSensitive) {
  SyntheticMusicOptions o;
  o.seconds = 1.5;
  auto a = synthesize_music(o);
  auto b = synthesize_music(o);
  ASSERT_EQ(a.size(), static_cast<size_t>(1.5 * 22050));
  EXPECT_EQ(a, b);
  float peak = 0;
  for (float v : a) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 0.8f, 1e-6);
  o.seed = 2;
  auto c = synthesize_music(o);
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::fabs(a[i] - c[i]);
  EXPECT_GT(diff / a.size(), 1e-3);
  o.scale.clear();
  EXPECT_THROW(synthesize_music(o), UsageError);
  auto tracks = default_synthetic_tracks(8, 2.0);
  ASSERT_EQ(tracks.size(), 8u);
  std::set<std::string> names;
  for (const auto& t : tracks) names.insert(t.name);
  EXPECT_EQ(names.size(), 8u);
}

}  // namespace
}  // namespace songlines::extract
