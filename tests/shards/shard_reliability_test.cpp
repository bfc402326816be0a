// docs/reliability.md for shards: non-finite values in a real shard (one NaN, one infinity, written with the raw
// HDF5 API as another producer could) are refused at read with the file, the dataset and the track named; the
// writer refuses non-finite summaries; a full disk (a real 2 MB tmpfs) gives an IoError with the system's
// reason, leaves no file under the final or the temporary name, and no HDF5 identifier or descriptor open.
#include <hdf5.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "core/error.h"
#include "shards/shard.h"
#include "support/shard_patch.h"
#include "support/test_support.h"

namespace songlines::shards {
namespace {

using songlines::testing::TempDir;
using songlines::testing::TmpfsMount;

// n tracks of seeded random mfcc frames (frames vary) with coordinates.
std::vector<TrackRecord> tracks(int n, int64_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<TrackRecord> out;
  for (int i = 0; i < n; ++i) {
    TrackRecord t;
    t.id = "t" + std::to_string(i);
    t.latitude = static_cast<float>(10 * i);
    t.longitude = static_cast<float>(-20 * i);
    features::FeatureMatrix m(frames + i, 20);
    for (auto& v : m.data) v = dist(rng);
    t.frames["mfcc"] = std::move(m);
    out.push_back(std::move(t));
  }
  return out;
}

void write(const std::filesystem::path& p, const std::vector<TrackRecord>& ts) {
  ShardWriter w(p, ShardAttributes{});
  for (const auto& t : ts) w.add(t);
  w.close();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ShardNonFinite, NanInASummaryAndInfInFramesAreRefusedNamingFileDatasetAndTrack) {
  TempDir tmp;
  const auto path = tmp / "s.h5";
  write(path, tracks(4, 30, 7));
  // Track 1's mfcc_mean column 3 becomes NaN; track 2's frame 5, column 4 becomes +inf. Track 2 starts at row
  // 30 + 31 = 61 of /frames/mfcc.
  testing::set_h5_element(path, "/summary/mfcc_mean", 1, 3, std::numeric_limits<double>::quiet_NaN());
  testing::set_h5_element(path, "/frames/mfcc", 61 + 5, 4, std::numeric_limits<double>::infinity());

  ShardReader r(path);  // the layout is fine; values are checked as they are read
  const std::string summary = message_of([&] { r.read_summary_mean("mfcc"); });
  EXPECT_NE(summary.find(path.string()), std::string::npos) << summary;
  EXPECT_NE(summary.find("/summary/mfcc_mean"), std::string::npos) << summary;
  EXPECT_NE(summary.find("track 1 (\"t1\")"), std::string::npos) << summary;
  EXPECT_NE(summary.find("column 3"), std::string::npos) << summary;
  // The std of that track was untouched and reads fine; the other tracks' frames read fine.
  EXPECT_NO_THROW(r.read_summary_std("mfcc"));
  EXPECT_NO_THROW(r.read_frames("mfcc", 1));
  EXPECT_NO_THROW(r.read_frames("mfcc", 3));

  const std::string frames = message_of([&] { r.read_frames("mfcc", 2); });
  EXPECT_NE(frames.find(path.string()), std::string::npos) << frames;
  EXPECT_NE(frames.find("/frames/mfcc"), std::string::npos) << frames;
  EXPECT_NE(frames.find("track 2 (\"t2\")"), std::string::npos) << frames;
  EXPECT_NE(frames.find("frame 5"), std::string::npos) << frames;
  EXPECT_NE(frames.find("column 4"), std::string::npos) << frames;
  // A crop that covers the bad row is refused too; one that stops before it is not.
  EXPECT_THROW(r.read_frame_rows("mfcc", 60, 70), InputError);
  EXPECT_NO_THROW(r.read_frame_rows("mfcc", 60, 66));
  // read_track reads both.
  EXPECT_THROW(r.read_track(2), InputError);
}

TEST(ShardNonFinite, InfiniteCoordinatesAreRefusedAtOpenNaNMeansUnknown) {
  TempDir tmp;
  auto ts = tracks(3, 10, 1);
  ts[0].latitude = kUnknownCoordinate;
  ts[0].longitude = kUnknownCoordinate;
  write(tmp / "ok.h5", ts);
  EXPECT_NO_THROW(ShardReader(tmp / "ok.h5"));
  // /tracks/latitude is 1-D: patch it through a 2-D view is not possible, so write a shard whose latitude is
  // finite and overwrite it with the raw API as a [3] dataset.
  {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    const hid_t f = H5Fopen((tmp / "ok.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    const hid_t d = H5Dopen2(f, "/tracks/latitude", H5P_DEFAULT);
    ASSERT_GE(d, 0);
    const float lat[3] = {NAN, -std::numeric_limits<float>::infinity(), 20.0f};
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lat), 0);
    H5Dclose(d);
    H5Fclose(f);
  }
  const std::string m = message_of([&] { ShardReader r(tmp / "ok.h5"); });
  EXPECT_NE(m.find("infinite coordinate in track 1 (\"t1\")"), std::string::npos) << m;
}

TEST(ShardNonFinite, WriterRefusesNonFiniteSummariesAndKeepsTheShardConsistent) {
  TempDir tmp;
  ShardWriter w(tmp / "s.h5", ShardAttributes{});
  TrackRecord good;
  good.id = "good";
  good.summary["gom"].mean = {1.0, 2.0, 3.0};
  w.add(good);
  TrackRecord bad = good;
  bad.id = "bad";
  bad.summary["gom"].mean[1] = std::numeric_limits<double>::infinity();
  try {
    w.add(bad);
    FAIL() << "a summary with an infinity was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("summary gom_mean has a non-finite value (inf) in column 1"), std::string::npos)
        << e.what();
  }
  w.close();
  ShardReader r(tmp / "s.h5");
  EXPECT_EQ(r.size(), 1);
  EXPECT_EQ(r.read_summary_mean("gom"), (std::vector<double>{1.0, 2.0, 3.0}));
}

// Every file name under dir (recursively), for "nothing left behind" checks.
std::vector<std::string> files_under(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename() != ".filler") out.push_back(e.path().filename().string());
  return out;
}

// Frames pile up in HDF5's chunk cache and fail at close, or fail while streaming (a disk fuller still): both
// error paths close every identifier and remove the temporary file.
class ShardDiskFull : public ::testing::TestWithParam<int64_t> {};

TEST_P(ShardDiskFull, IoErrorWithTheReasonNoFileLeftAndNothingOpen) {
  TmpfsMount disk("2M");
  if (!disk.mounted()) GTEST_SKIP() << disk.skip_reason();
  disk.fill_leaving(GetParam());
  const auto path = disk / "s.h5";
  std::string error;
  try {
    write(path, tracks(8, 2000, 3));  // 8 x 2000 x 20 floats: 1.3 MB
  } catch (const IoError& e) {
    error = e.what();
  }
  ASSERT_FALSE(error.empty()) << "the shard fit on the disk; free: " << disk.free_bytes();
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  EXPECT_TRUE(files_under(disk.path()).empty()) << "left behind: " << files_under(disk.path()).front();
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0) << "HDF5 identifiers still open";
  std::string why;
  EXPECT_TRUE(disk.unmount(&why)) << "the tmpfs is busy (a descriptor still open?): " << why;
}

INSTANTIATE_TEST_SUITE_P(FreeBytes, ShardDiskFull, ::testing::Values(int64_t{0}, int64_t{64 << 10}, int64_t{1 << 20}),
                         [](const auto& info) { return std::to_string(info.param >> 10) + "KiB"; });

}  // namespace
}  // namespace songlines::shards
