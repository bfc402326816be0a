// docs/reliability.md for the commands that write shards and walk folders, as a user runs them:
//  - symbolic links: directory links that form cycles end, each real directory walked once, each file once;
//    a dangling link or a loop of links is skipped with a listed warning instead of failing the job;
//  - a full disk (a real 2 MB tmpfs): `extract`, `features` and `import-table` exit 1 with the system's reason,
//    not 139 (an HDF5 file id left open crashed the exit), and leave no shard under its final or temporary name.
#include <unistd.h>

#include <fstream>
#include <set>

#include "audio/audio_file.h"
#include "extract/synthetic_music.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::extract {
namespace {

namespace fs = std::filesystem;
using songlines::testing::run_command;
using songlines::testing::TempDir;
using songlines::testing::TmpfsMount;

void write_music(const fs::path& file, double seconds, uint64_t seed) {
  fs::create_directories(file.parent_path());
  SyntheticMusicOptions o;
  o.seconds = seconds;
  o.seed = seed;
  o.tonic_hz = 120 + 10.0 * static_cast<double>(seed % 7);
  const auto y = synthesize_music(o);
  audio::write_audio(file.string(), y.data(), static_cast<int64_t>(y.size()), o.sample_rate);
}

void symlink_or_fail(const fs::path& target, const fs::path& link) {
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
}

// `songlines extract` under a time limit: a walk that never ends shows as exit 124.
songlines::testing::CommandResult extract(const fs::path& in, const fs::path& out) {
  return run_command("timeout 120 '" + songlines::testing::binary_path().string() + "' extract --input '" +
                     in.string() + "' --output '" + out.string() + "' --jobs 1 --no-progress --device cpu");
}

// id -> path of every track in the shards of dir.
std::map<std::string, std::string> tracks_in(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& f : shards::list_shards(dir)) {
    shards::ShardReader r(f);
    for (int64_t t = 0; t < r.size(); ++t) out[r.ids()[t]] = r.paths()[t];
  }
  return out;
}

TEST(ExtractSymlinks, DirectoryLinkCyclesEndAndEveryFileIsTakenOnce) {
  TempDir tmp;
  const fs::path in = tmp / "in";
  write_music(in / "a" / "one.wav", 1.0, 1);
  write_music(in / "c" / "two.wav", 1.0, 2);
  fs::create_directories(in / "d");
  symlink_or_fail("..", in / "a" / "up");        // a/up/a/up/... : a cycle through the parent
  symlink_or_fail(".", in / "a" / "self");       // a/self/self/... : a cycle on itself
  symlink_or_fail("a", in / "b");                // a second name for a real directory
  symlink_or_fail("../d", in / "c" / "to_d");    // c -> d -> c: a cycle of two directories
  symlink_or_fail("../c", in / "d" / "to_c");
  const auto r = extract(in, tmp / "out");
  ASSERT_NE(r.exit_code, 124) << "the walk did not end in 120 s";
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto tracks = tracks_in(tmp / "out");
  ASSERT_EQ(tracks.size(), 2u) << r.output;
  // Ids come from the first path in name order that reaches each file: a/one (not b/one), c/two.
  ASSERT_TRUE(tracks.count("a/one")) << r.output;
  ASSERT_TRUE(tracks.count("c/two")) << r.output;
  EXPECT_EQ(fs::path(tracks.at("a/one")), fs::canonical(in / "a" / "one.wav"));
  EXPECT_EQ(r.output.find("skipped"), std::string::npos) << "a cycle is not an error: " << r.output;
}

TEST(ExtractSymlinks, DanglingLinksAndLinkLoopsAreSkippedWithAWarning) {
  TempDir tmp;
  const fs::path in = tmp / "in";
  write_music(in / "good.wav", 1.0, 3);
  write_music(in / "sub" / "also_good.wav", 1.0, 4);
  symlink_or_fail("missing.wav", in / "dangling.wav");
  symlink_or_fail("no-such-folder", in / "gone");
  symlink_or_fail("loop.wav", in / "loop.wav");  // resolves to itself: ELOOP
  symlink_or_fail("../good.wav", in / "sub" / "alias.wav");  // a working link to a file: the same track, once
  const auto r = extract(in, tmp / "out");
  ASSERT_EQ(r.exit_code, 0) << "one bad link must not fail the job: " << r.output;
  const auto tracks = tracks_in(tmp / "out");
  EXPECT_EQ(tracks.size(), 2u) << r.output;
  EXPECT_TRUE(tracks.count("good") && tracks.count("sub/also_good")) << r.output;
  EXPECT_NE(r.output.find("3 folder entries skipped"), std::string::npos) << r.output;
  for (const char* name : {"dangling.wav: dangling symbolic link", "gone: dangling symbolic link",
                           "loop.wav: symbolic link that resolves to itself"})
    EXPECT_NE(r.output.find(name), std::string::npos) << name << "\n" << r.output;
}

// Names of everything on the disk but the filler.
std::set<std::string> left_on(const TmpfsMount& disk) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(disk.path()))
    if (e.path().filename() != ".filler" && !e.is_directory()) out.insert(e.path().lexically_relative(disk.path()).string());
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += x + " ";
  return out;
}

TEST(DiskFull, ExtractExitsOneWithTheReasonAndNoPartialShard) {
  TmpfsMount disk("2M");
  if (!disk.mounted()) GTEST_SKIP() << disk.skip_reason();
  TempDir tmp;
  for (int i = 0; i < 3; ++i) write_music(tmp / "in" / ("t" + std::to_string(i) + ".wav"), 20.0, 10 + i);
  disk.fill_leaving(512 << 10);
  const auto r = extract(tmp / "in", disk / "out");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Segmentation"), std::string::npos) << r.output;
  for (const auto& f : left_on(disk))
    EXPECT_EQ(f.find(".h5"), std::string::npos) << "a shard or its temporary was left: " << join(left_on(disk));
}

TEST(DiskFull, FeaturesExitsOneWithTheReasonAndNoFile) {
  TmpfsMount disk("2M");
  if (!disk.mounted()) GTEST_SKIP() << disk.skip_reason();
  TempDir tmp;
  write_music(tmp / "t.wav", 20.0, 5);
  disk.fill_leaving(256 << 10);
  const auto r = songlines::testing::run_songlines("features --input '" + (tmp / "t.wav").string() + "' --output '" +
                                                   (disk / "f.h5").string() + "' --device cpu");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_TRUE(left_on(disk).empty()) << "left behind: " << join(left_on(disk));
}

TEST(DiskFull, ImportTableExitsOneWithTheReasonAndNoFile) {
  TmpfsMount disk("2M");
  if (!disk.mounted()) GTEST_SKIP() << disk.skip_reason();
  disk.fill_leaving(16 << 10);
  const auto r = songlines::testing::run_songlines("import-table --format gom --input '" +
                                                   songlines::testing::data_path("gom/gom_slice_60.txt").string() +
                                                   "' --output '" + (disk / "out").string() + "'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_TRUE(left_on(disk).empty()) << "left behind: " << join(left_on(disk));
}

}  // namespace
}  // namespace songlines::extract
