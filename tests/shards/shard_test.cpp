// Shard round trip, summary-only shards, bad inputs and the complete-or-absent guarantee.
#include <hdf5.h>

#include <cmath>
#include <fstream>
#include <random>

#include "core/error.h"
#include "shards/hdf5_handle.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::shards {
namespace {

using features::FeatureMatrix;
using songlines::testing::MaxAbsNear;
using songlines::testing::TempDir;

FeatureMatrix random_matrix(std::mt19937& rng, int64_t frames, int64_t dim) {
  std::normal_distribution<float> dist(0.0f, 3.0f);
  FeatureMatrix m(frames, dim);
  for (auto& v : m.data) v = dist(rng);
  return m;
}

/// N tracks with seeded random frames of the seed's four features plus a wide one; frame counts vary (one is 0).
std::vector<TrackRecord> make_tracks(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> frames_dist(1, 600);
  std::vector<TrackRecord> tracks;
  for (int i = 0; i < n; ++i) {
    TrackRecord t;
    t.id = "track-" + std::to_string(i);
    t.path = "/music/ünïcode ♪/" + std::to_string(i) + ".wav";
    t.country = i % 3 == 0 ? "" : (i % 3 == 1 ? "ES" : "JP");
    t.latitude = i % 4 == 0 ? kUnknownCoordinate : static_cast<float>(-80 + 13.5 * i);
    t.longitude = i % 4 == 0 ? kUnknownCoordinate : static_cast<float>(170 - 21.25 * i);
    int64_t frames = i == 2 ? 0 : frames_dist(rng);
    t.duration_s = static_cast<float>(frames * 512 / 22050.0);
    t.frames["mfcc"] = random_matrix(rng, frames, 20);
    t.frames["chroma_stft"] = random_matrix(rng, frames, 12);
    t.frames["tonnetz"] = random_matrix(rng, frames, 6);
    t.frames["mel_db"] = random_matrix(rng, frames, 128);
    t.frames["stft_mag"] = random_matrix(rng, frames, 513);  // wide: chunks get fewer rows
    tracks.push_back(std::move(t));
  }
  return tracks;
}

ShardAttributes test_attributes() {
  ShardAttributes a;
  a.feature_options = Json{{"sample_rate", 22050}, {"mfcc", {{"n_mfcc", 20}}}};
  return a;
}

void write_shard(const std::filesystem::path& p, const std::vector<TrackRecord>& tracks, ShardWriterOptions o = {}) {
  ShardWriter w(p, test_attributes(), o);
  for (const auto& t : tracks) w.add(t);
  EXPECT_EQ(w.size(), static_cast<int64_t>(tracks.size()));
  w.close();
}

bool bit_equal(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Everything not in the temp dir's expected set: temporaries must never survive.
std::vector<std::string> files_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class ShardRoundTrip : public ::testing::TestWithParam<int> {};  // param: gzip level

TEST_P(ShardRoundTrip, FramesBitIdenticalSummariesEqualSummarize) {
  TempDir dir;
  auto tracks = make_tracks(37, 1234);
  ShardWriterOptions o;
  o.compression_level = GetParam();
  o.chunk_rows = 97;  // small chunks so appends cross chunk boundaries
  write_shard(dir / "s.h5", tracks, o);
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"s.h5"});

  ShardReader r(dir / "s.h5");
  ASSERT_EQ(r.size(), 37);
  EXPECT_EQ(r.format_version(), kFormatVersion);
  EXPECT_EQ(r.attributes().sample_rate, 22050);
  EXPECT_EQ(r.attributes().feature_options, test_attributes().feature_options);
  EXPECT_EQ(r.attributes().source, "audio");
  EXPECT_NE(r.attributes().producer.find("songlines "), std::string::npos);
  EXPECT_EQ(r.frame_feature_names(), (std::vector<std::string>{"chroma_stft", "mel_db", "mfcc", "stft_mag", "tonnetz"}));
  EXPECT_EQ(r.summary_feature_names(), r.frame_feature_names());
  EXPECT_EQ(r.frame_dim("stft_mag"), 513);
  ASSERT_EQ(r.offsets().size(), 38u);
  EXPECT_EQ(r.offsets()[3], r.offsets()[2]);  // the empty track

  for (int64_t i = 0; i < r.size(); ++i) {
    const TrackRecord& want = tracks[static_cast<size_t>(i)];
    TrackRecord got = r.read_track(i);
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.path, want.path);
    EXPECT_EQ(got.country, want.country);
    EXPECT_TRUE(bit_equal(got.latitude, want.latitude)) << i;
    EXPECT_TRUE(bit_equal(got.longitude, want.longitude)) << i;
    EXPECT_TRUE(bit_equal(got.duration_s, want.duration_s)) << i;
    for (const auto& [name, m] : want.frames) {
      const FeatureMatrix& g = got.frames.at(name);
      ASSERT_EQ(g.frames, m.frames) << name << " track " << i;
      ASSERT_EQ(g.dim, m.dim);
      EXPECT_EQ(std::memcmp(g.data.data(), m.data.data(), m.data.size() * sizeof(float)), 0) << name << " track " << i;
      SummaryStats s = summarize(m);
      // Stored float64 summaries are exactly summarize()'s values.
      EXPECT_EQ(got.summary.at(name).mean, s.mean) << name << " track " << i;
      EXPECT_EQ(got.summary.at(name).std, s.std) << name << " track " << i;
    }
  }
  // Whole-array summary read agrees with per-track summarize, row-major [N, dim].
  int64_t dim = 0;
  auto means = r.read_summary_mean("mfcc", &dim);
  ASSERT_EQ(dim, 20);
  std::vector<double> expected;
  for (const auto& t : tracks) {
    auto s = summarize(t.frames.at("mfcc"));
    expected.insert(expected.end(), s.mean.begin(), s.mean.end());
  }
  EXPECT_TRUE(MaxAbsNear(means, expected, 0.0, "mfcc means", 20));
  // Row crops across a track boundary.
  auto rows = r.read_frame_rows("mfcc", r.offsets()[5] - 3, r.offsets()[5] + 4);
  ASSERT_EQ(rows.frames, 7);
  EXPECT_EQ(rows.at(0, 0), tracks[4].frames.at("mfcc").at(tracks[4].frames.at("mfcc").frames - 3, 0));
  EXPECT_EQ(rows.at(3, 19), tracks[5].frames.at("mfcc").at(0, 19));
}

INSTANTIATE_TEST_SUITE_P(Compression, ShardRoundTrip, ::testing::Values(0, 1));

TEST(Summarize, MatchesNaiveTwoPassFloat64) {
  std::mt19937 rng(7);
  auto m = random_matrix(rng, 333, 5);
  auto s = summarize(m);
  for (int64_t k = 0; k < 5; ++k) {
    long double sum = 0, sq = 0;
    for (int64_t t = 0; t < 333; ++t) sum += m.at(t, k);
    long double mean = sum / 333;
    for (int64_t t = 0; t < 333; ++t) sq += (m.at(t, k) - mean) * (m.at(t, k) - mean);
    EXPECT_NEAR(s.mean[k], static_cast<double>(mean), 1e-12 * (1 + std::fabs(static_cast<double>(mean))));
    EXPECT_NEAR(s.std[k], std::sqrt(static_cast<double>(sq / 333)), 1e-12 * 3);
  }
}

TEST(SummaryOnlyShard, RoundTripWithAndWithoutStd) {
  TempDir dir;
  {
    ShardAttributes a;
    a.sample_rate = 0;
    a.source = "seed-csv";
    ShardWriter w(dir / "table.h5", a);
    for (int i = 0; i < 4; ++i) {
      TrackRecord t;
      t.id = std::to_string(i);
      t.path = "seed:" + std::to_string(i);
      t.country = "BR";
      t.latitude = -15.8f;
      t.longitude = -47.9f;
      t.summary["mfcc"].mean.assign(20, 0.5 * i);
      t.summary["tonnetz"].mean.assign(6, -1.0 * i);
      t.summary["tonnetz"].std.assign(6, 2.0 + i);
      w.add(t);
    }
    w.close();
  }
  ShardReader r(dir / "table.h5");
  EXPECT_EQ(r.size(), 4);
  EXPECT_TRUE(r.offsets().empty());
  EXPECT_TRUE(r.frame_feature_names().empty());
  EXPECT_EQ(r.summary_feature_names(), (std::vector<std::string>{"mfcc", "tonnetz"}));
  EXPECT_EQ(r.attributes().source, "seed-csv");
  EXPECT_TRUE(r.read_summary_std("mfcc").empty());
  int64_t dim = 0;
  auto sd = r.read_summary_std("tonnetz", &dim);
  EXPECT_EQ(dim, 6);
  ASSERT_EQ(sd.size(), 24u);
  EXPECT_EQ(sd[6 * 3], 5.0);
  auto t = r.read_track(2);
  EXPECT_EQ(t.summary.at("mfcc").mean, std::vector<double>(20, 1.0));
  EXPECT_TRUE(t.summary.at("mfcc").std.empty());
  EXPECT_THROW(r.read_frames("mfcc", 0), InputError);
}

// ---- bad inputs -------------------------------------------------------------------------------------------

/// Runs f, expects InputError, and checks that its message contains every piece.
template <class F>
void expect_input_error(F&& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    for (const auto& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

TEST(ShardWriterErrors, MismatchedDimsAndFeatureSetsNameTheTrack) {
  TempDir dir;
  auto tracks = make_tracks(3, 99);
  ShardWriter w(dir / "s.h5", test_attributes());
  w.add(tracks[0]);
  TrackRecord bad = tracks[1];
  std::mt19937 rng(1);
  bad.frames["mfcc"] = random_matrix(rng, bad.frames["mfcc"].frames, 13);
  expect_input_error([&] { w.add(bad); }, {bad.path, "mfcc", "13", "20"});
  bad = tracks[1];
  bad.frames.erase("tonnetz");
  expect_input_error([&] { w.add(bad); }, {bad.path, "tonnetz"});
  bad = tracks[1];
  bad.frames["mfcc"] = random_matrix(rng, bad.frames["mfcc"].frames + 1, 20);
  expect_input_error([&] { w.add(bad); }, {bad.path, "frames", "offsets"});
  expect_input_error([&] { w.add(tracks[0]); }, {"duplicate track id"});
  // Rejected tracks left the shard consistent: the good one still goes in.
  w.add(tracks[1]);
  w.close();
  ShardReader r(dir / "s.h5");
  EXPECT_EQ(r.ids(), (std::vector<std::string>{"track-0", "track-1"}));
}

TEST(ShardWriterErrors, NonFiniteFramesAreRejected) {
  TempDir dir;
  auto tracks = make_tracks(2, 5);
  for (float poison : {std::nanf(""), INFINITY, -INFINITY}) {
    ShardWriter w(dir / "s.h5", test_attributes());
    TrackRecord t = tracks[0];
    t.frames["chroma_stft"].at(3, 7) = poison;
    expect_input_error([&] { w.add(t); }, {t.path, "chroma_stft", "non-finite", "frame 3", "column 7"});
  }
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(ShardWriterErrors, DestroyedWithoutCloseLeavesNoFile) {
  TempDir dir;
  {
    ShardWriter w(dir / "s.h5", test_attributes());
    for (const auto& t : make_tracks(5, 3)) w.add(t);
    EXPECT_EQ(files_in(dir.path()).size(), 1u);  // the temporary exists while writing...
    EXPECT_NE(files_in(dir.path())[0], "s.h5");
  }
  EXPECT_TRUE(files_in(dir.path()).empty());  // ...and neither it nor the shard survives
}

TEST(ShardReaderErrors, MissingFile) {
  TempDir dir;
  expect_input_error([&] { ShardReader r(dir / "nope.h5"); }, {"nope.h5", "no such file"});
  expect_input_error([&] { list_shards(dir / "nope"); }, {"nope"});
}

TEST(ShardReaderErrors, NotHdf5) {
  TempDir dir;
  std::ofstream(dir / "text.h5") << "this is a text file, not HDF5\n";
  expect_input_error([&] { ShardReader r(dir / "text.h5"); }, {"text.h5", "not an HDF5 file"});
  expect_input_error([&] { ShardReader r(dir.path()); }, {"directory"});
}

/// Writes a valid shard, then edits it with the raw HDF5 API.
template <class Edit>
std::filesystem::path damaged_shard(const TempDir& dir, const std::string& name, Edit&& edit) {
  auto p = dir / name;
  write_shard(p, make_tracks(4, 11));
  h5::silence_errors();
  h5::Handle f = h5::file(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open");
  edit(f.get());
  return p;
}

TEST(ShardReaderErrors, MissingDatasetIsNamed) {
  TempDir dir;
  for (const std::string ds : {"/tracks/latitude", "/tracks/id", "/frames/offsets"}) {
    auto p = damaged_shard(dir, "missing.h5", [&](hid_t f) { ASSERT_GE(H5Ldelete(f, ds.c_str(), H5P_DEFAULT), 0); });
    expect_input_error([&] { ShardReader r(p); }, {"missing.h5", ds});
    std::filesystem::remove(p);
  }
}

TEST(ShardReaderErrors, MalformedDatasetIsNamed) {
  TempDir dir;
  // /frames/mfcc with a wrong row count (frames do not match offsets).
  auto p = damaged_shard(dir, "rows.h5", [](hid_t f) {
    ASSERT_GE(H5Ldelete(f, "/frames/mfcc", H5P_DEFAULT), 0);
    hsize_t dims[2] = {5, 20};
    h5::Handle space = h5::dataspace(H5Screate_simple(2, dims, nullptr), "space");
    h5::Handle d = h5::dataset(H5Dcreate2(f, "/frames/mfcc", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "d");
  });
  expect_input_error([&] { ShardReader r(p); }, {"rows.h5", "/frames/mfcc", "rows"});
}

TEST(ShardReaderErrors, NewerFormatVersionIsRejected) {
  TempDir dir;
  auto p = damaged_shard(dir, "future.h5", [](hid_t f) {
    ASSERT_GE(H5Adelete(f, "format_version"), 0);
    h5::write_attribute(f, "format_version", static_cast<long long>(kFormatVersion + 1));
  });
  expect_input_error([&] { ShardReader r(p); }, {"future.h5", "format_version " + std::to_string(kFormatVersion + 1), "newer"});
  auto q = damaged_shard(dir, "noversion.h5", [](hid_t f) { ASSERT_GE(H5Adelete(f, "format_version"), 0); });
  expect_input_error([&] { ShardReader r(q); }, {"noversion.h5", "format_version"});
}

TEST(ListShards, SortedH5OnlyNoTemporaries) {
  TempDir dir;
  write_shard(dir / "shard-00001.h5", make_tracks(1, 1));
  write_shard(dir / "shard-00000.h5", make_tracks(1, 2));
  std::ofstream(dir / "shard-00002.h5.tmp.123.0") << "partial";
  std::ofstream(dir / "features.csv") << "x";
  auto l = list_shards(dir.path());
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].filename(), "shard-00000.h5");
  EXPECT_EQ(l[1].filename(), "shard-00001.h5");
  EXPECT_EQ(list_shards(dir / "shard-00001.h5").size(), 1u);
}

}  // namespace
}  // namespace songlines::shards
