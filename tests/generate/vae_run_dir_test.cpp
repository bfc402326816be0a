// docs/reliability.md for generative runs: a finished VAE run directory is never replaced. Through the binary
// (`songlines run` and `songlines train-vae`), on real shards of random log-mel frames with places and a
// 5-step tiny VAE: another config (--set train.steps=6) is refused with exit 2 naming the directory, the same
// config is reported complete and not redone, and in both cases every file of the run stays byte-identical
// (before the fix, vae.pt, config.json and metrics.json were replaced with exit 0). An unfinished run (no
// metrics.json) is trained again with a fresh metrics.jsonl; a metrics.json without its config is kept.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/config.h"
#include "geo/great_circle.h"
#include "shards/shard.h"
#include "support/test_support.h"
#include "support/tiny_vae_config.h"

namespace songlines::generate {
namespace {

namespace fs = std::filesystem;
using songlines::testing::run_songlines;
using songlines::testing::TempDir;

// 6 tracks of 80 frames x 32 mel bands (seeded noise around a per-place level) at 3 places.
void write_mel_shard(const fs::path& file) {
  testing::write_tiny_mel_shard(file, 6, 80, {{48.85, 2.35}, {35.68, 139.69}, {-12.05, -77.04}}, 11, 6.0f,
                                [](int i, int64_t) { return -40.0f + 10.0f * static_cast<float>(i % 3); });
}

void write_config(const TempDir& tmp) {
  write_mel_shard(tmp / "shards" / "mel.h5");
  const Json config =
      testing::tiny_vae_run_config("finished-vae", 2, 0.2, {{"steps", 5}, {"batch_size", 4}, {"log_every", 1}});
  std::ofstream(tmp / "vae.json") << config.dump(2);
}

// Every file under dir: relative path -> content.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    // .lock is the run-directory lock (core/dir_lock.h): every process on the directory takes it and writes its
    // pid there; it is not a result.
    if (!e.is_regular_file() || e.path().filename() == ".lock") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out[e.path().lexically_relative(dir).string()] = ss.str();
  }
  return out;
}

::testing::AssertionResult unchanged(const std::map<std::string, std::string>& before, const fs::path& dir) {
  const auto now = snapshot(dir);
  for (const auto& [name, content] : before) {
    auto it = now.find(name);
    if (it == now.end()) return ::testing::AssertionFailure() << name << " was removed";
    if (it->second != content) return ::testing::AssertionFailure() << name << " was changed";
  }
  for (const auto& [name, _] : now)
    if (!before.count(name)) return ::testing::AssertionFailure() << name << " was added";
  return ::testing::AssertionSuccess();
}

TEST(VaeRunDirectory, AFinishedRunIsNeverReplacedByRunOrTrainVae) {
  TempDir tmp;
  write_config(tmp);
  const fs::path run_dir = tmp / "run";
  const std::string config = (tmp / "vae.json").string();
  auto r = run_songlines("run " + config + " --run-dir " + run_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"config.json", "metrics.json", "metrics.jsonl", "checkpoints/vae.pt", "samples/lima.wav"})
    ASSERT_TRUE(fs::exists(run_dir / f)) << f;
  const auto before = snapshot(run_dir);

  for (const char* command : {"run", "train-vae"}) {
    r = run_songlines(std::string(command) + " " + config + " --set train.steps=6 --run-dir " + run_dir.string());
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.output;
    EXPECT_NE(r.output.find(run_dir.string() + ": exists with a different config"), std::string::npos)
        << command << ": " << r.output;
    EXPECT_TRUE(unchanged(before, run_dir)) << command << " with another config";

    r = run_songlines(std::string(command) + " " + config + " --run-dir " + run_dir.string());
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.output;
    EXPECT_NE(r.output.find("is complete"), std::string::npos) << command << ": " << r.output;
    EXPECT_EQ(r.output.find("vae: step"), std::string::npos) << command << " trained again: " << r.output;
    EXPECT_TRUE(unchanged(before, run_dir)) << command << " with the same config";
  }
}

TEST(VaeRunDirectory, AnUnfinishedRunIsTrainedAgainAndAnOrphanResultIsKept) {
  TempDir tmp;
  write_config(tmp);
  const fs::path run_dir = tmp / "run";
  const std::string run = "run " + (tmp / "vae.json").string() + " --run-dir " + run_dir.string();
  ASSERT_EQ(run_songlines(run).exit_code, 0);
  const auto count_lines = [&] {
    std::ifstream in(run_dir / "metrics.jsonl");
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  const int records = count_lines();
  EXPECT_GE(records, 5);  // log_every 1 over 5 steps

  // Killed before its last write: no metrics.json. The rerun trains again and its log starts afresh.
  fs::remove(run_dir / "metrics.json");
  auto r = run_songlines(run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("is unfinished; training it again"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(run_dir / "metrics.json"));
  EXPECT_EQ(count_lines(), records);

  // A result whose config.json is gone: refused, kept.
  fs::remove(run_dir / "config.json");
  const auto before = snapshot(run_dir);
  r = run_songlines(run);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(run_dir.string() + ": holds a metrics.json but no config.json"), std::string::npos) << r.output;
  EXPECT_TRUE(unchanged(before, run_dir));
}

}  // namespace
}  // namespace songlines::generate
