// Runs killed at the wrong moment (SIGKILL injected through SONGLINES_TEST_KILL_AT, core/test_kill_point.h):
// a line of metrics.jsonl cut in half, and a final model whose files were only partly written. The rerun on the
// same run directory must finish the run, and compare / report / predict must then work.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/config.h"
#include "core/jsonl_log.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

constexpr int kKilled = 128 + 9;  // the shell's status for a child killed by SIGKILL

Json kill_config() {
  return Json::parse(R"({
    "experiment": "kills", "seed": 3, "device": "cpu",
    "data": {"table": {"format": "gom", "path": ")" + testing::data_path("gom/gom_slice_60.txt").string() + R"("}},
    "evaluation": {"folds": 2, "repeats": 1},
    "models": [{"type": "knn", "k": 3},
               {"name": "mlp", "type": "mlp", "hidden_sizes": [8], "head": {"type": "sphere"},
                "train": {"epochs": 12}}],
    "final_model": "mlp"
  })");
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

testing::CommandResult run_with_kill(const fs::path& config, const fs::path& run_dir, const std::string& kill_at) {
  const std::string env = kill_at.empty() ? "" : "SONGLINES_TEST_KILL_AT=" + kill_at + " ";
  return testing::run_command(env + "SONGLINES_NO_PROGRESS=1 '" + testing::binary_path().string() + "' run '" +
                              config.string() + "' --run-dir '" + run_dir.string() + "'");
}

TEST(JsonlLog, CutsATornTailAndAppendsWholeLines) {
  testing::TempDir dir;
  const fs::path f = dir / "m.jsonl";
  std::ofstream(f) << "{\"a\":1}\n{\"b\":2}\n{\"c\":";  // a line cut by a kill
  {
    JsonlLog log(f);
    EXPECT_EQ(log.torn_bytes_removed(), 5);
    log.append({{"d", 4}});
  }
  EXPECT_EQ(read_all(f), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
  {
    JsonlLog clean(f);  // nothing to cut in a clean file
    EXPECT_EQ(clean.torn_bytes_removed(), 0);
  }
  std::ofstream(dir / "one.jsonl") << "{\"x\":";  // no newline at all: everything is torn
  JsonlLog one(dir / "one.jsonl");
  EXPECT_EQ(one.torn_bytes_removed(), 5);
  one.append({{"y", 1}});
  EXPECT_EQ(read_all(dir / "one.jsonl"), "{\"y\":1}\n");
}

TEST(RunKills, ATornMetricsLineIsCutAndTheResumedRunReadsCleanly) {
  testing::TempDir dir;
  std::ofstream(dir / "k.json") << kill_config().dump();
  const fs::path run = dir / "run";
  // The 3rd record (an epoch line of the first fold's mlp) is cut in half, then the process is killed.
  auto killed = run_with_kill(dir / "k.json", run, "jsonl-mid-line:3");
  ASSERT_EQ(killed.exit_code, kKilled) << killed.output;
  const std::string torn = read_all(run / "metrics.jsonl");
  ASSERT_FALSE(torn.empty());
  ASSERT_NE(torn.back(), '\n') << "the kill should have left half a line";

  auto resumed = run_with_kill(dir / "k.json", run, "");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("removed a torn last line"), std::string::npos) << resumed.output;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_NO_THROW((void)Json::parse(line)) << "line " << lines << ": " << line;
  }
  EXPECT_GT(lines, 4);
  // compare reads every line of metrics.jsonl (a torn line before the last one was an error); report draws them.
  auto clean = run_with_kill(dir / "k.json", dir / "clean", "");
  ASSERT_EQ(clean.exit_code, 0) << clean.output;
  auto cmp = testing::run_songlines("compare '" + run.string() + "' '" + (dir / "clean").string() + "'");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  EXPECT_EQ(cmp.output.find("note:"), std::string::npos) << "same experiment, same data: " << cmp.output;
  auto rep = testing::run_songlines("report '" + run.string() + "'");
  EXPECT_EQ(rep.exit_code, 0) << rep.output;

  // Another experiment on other data beside them: compared, with a word about it.
  Json other = kill_config();
  other["experiment"] = "elsewhere";
  std::filesystem::copy_file(testing::data_path("gom/gom_slice_60.txt"), dir / "copy.txt");
  other["data"]["table"]["path"] = (dir / "copy.txt").string();
  std::ofstream(dir / "other.json") << other.dump();
  auto third = run_with_kill(dir / "other.json", dir / "other", "");
  ASSERT_EQ(third.exit_code, 0) << third.output;
  auto mixed = testing::run_songlines("compare '" + run.string() + "' '" + (dir / "other").string() + "'");
  EXPECT_EQ(mixed.exit_code, 0) << mixed.output;
  EXPECT_NE(mixed.output.find("2 experiments (elsewhere, kills)"), std::string::npos) << mixed.output;
  EXPECT_NE(mixed.output.find("read different data"), std::string::npos) << mixed.output;
}

// Killed after the final model's weights were written (before inputs.json), and after inputs.json (before the
// completion marker): predict refuses the folder, naming it, and the rerun refits the final model.
TEST(RunKills, AFinalModelWithoutItsMarkerIsRefittedAndPredictRefusesIt) {
  for (const std::string point : {"final-model-saved", "final-model-inputs-written"}) {
    SCOPED_TRACE(point);
    testing::TempDir dir;
    std::ofstream(dir / "k.json") << kill_config().dump();
    const fs::path run = dir / "run";
    auto killed = run_with_kill(dir / "k.json", run, point);
    ASSERT_EQ(killed.exit_code, kKilled) << killed.output;
    ASSERT_TRUE(fs::exists(run / "checkpoints/final/model.json"));
    EXPECT_FALSE(fs::exists(run / "checkpoints/final/complete.json"));
    EXPECT_FALSE(fs::exists(run / "metrics.json"));

    auto early = testing::run_songlines("predict --model '" + run.string() + "' --input '" +
                                        testing::data_path("gom/gom_slice_60.txt").string() + "'");
    EXPECT_EQ(early.exit_code, 2) << early.output;
    EXPECT_NE(early.output.find("incomplete"), std::string::npos) << early.output;
    EXPECT_NE(early.output.find("checkpoints/final"), std::string::npos) << early.output;

    auto resumed = run_with_kill(dir / "k.json", run, "");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("is incomplete"), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("final model mlp refitted"), std::string::npos) << resumed.output;
    EXPECT_EQ(resumed.output.find("mlp repeat 0 fold 0"), std::string::npos) << "finished folds are not redone";
    ASSERT_TRUE(fs::exists(run / "checkpoints/final/complete.json"));

    auto imp = testing::run_songlines("import-table --format gom --input '" +
                                      testing::data_path("gom/gom_slice_60.txt").string() + "' --output '" +
                                      (dir / "shards").string() + "'");
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    auto pred = testing::run_songlines("predict --model '" + run.string() + "' --input '" + (dir / "shards").string() +
                                       "' --output '" + (dir / "p.csv").string() + "'");
    EXPECT_EQ(pred.exit_code, 0) << pred.output;
  }
}

}  // namespace
}  // namespace songlines::runs

namespace songlines::runs {
namespace {

// Two `run` processes on one run directory: the second is refused while the first works (exit 2, naming the
// directory), so no fold is trained twice and metrics.jsonl has each fold once; a killed holder releases it.
TEST(RunDirLock, ASecondRunOnTheSameDirectoryIsRefusedWhileTheFirstWorks) {
  testing::TempDir dir;
  Json j = kill_config();
  j["models"][1]["train"]["epochs"] = 400;  // long enough for the second process to start meanwhile
  std::ofstream(dir / "k.json") << j.dump();
  const fs::path run = dir / "run";
  const std::string cmd = "SONGLINES_NO_PROGRESS=1 '" + testing::binary_path().string() + "' run '" +
                          (dir / "k.json").string() + "' --run-dir '" + run.string() + "'";
  // The first in the background; once it has written its config (it holds the lock from before that) it is
  // stopped with SIGSTOP, so the second surely meets it at work; then it continues and finishes.
  const std::string pid = (dir / "first.pid").string();
  auto both = testing::run_command("(" + cmd + " > '" + (dir / "first.log").string() + "' 2>&1 & echo $! > '" + pid +
                                   "'; for i in $(seq 1200); do [ -f '" + (run / "config.json").string() +
                                   "' ] && break; sleep 0.01; done; kill -STOP $(cat '" + pid + "'); " + cmd +
                                   "; echo second-exit=$?; kill -CONT $(cat '" + pid + "'); wait)");
  EXPECT_NE(both.output.find("second-exit=2"), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("in use by another songlines process"), std::string::npos) << both.output;
  const std::string first = read_all(dir / "first.log");
  EXPECT_NE(first.find("run directory:"), std::string::npos) << "the first run finishes: " << first;
  // Each (model, repeat, fold) metrics line once.
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  std::map<std::string, int> units;
  while (std::getline(in, line)) {
    const Json r = Json::parse(line);
    if (r.contains("mean_km")) ++units[r["model"].get<std::string>() + "/" + std::to_string(r["fold"].get<int>())];
  }
  EXPECT_EQ(units.size(), 4u);
  for (const auto& [unit, n] : units) EXPECT_EQ(n, 1) << unit;

  // A holder killed with SIGKILL leaves no stale lock: the next run on the directory proceeds.
  auto killed = run_with_kill(dir / "k.json", dir / "run2", "final-model-saved");
  ASSERT_EQ(killed.exit_code, kKilled) << killed.output;
  auto after = run_with_kill(dir / "k.json", dir / "run2", "");
  EXPECT_EQ(after.exit_code, 0) << after.output;
}

// A run that fails before training (missing data, more folds than rows, --device cuda without a GPU) leaves no
// config that blocks the corrected rerun in the same directory; a changed device alone is the same run.
TEST(RunDirLock, AFailedStartDoesNotBlockTheCorrectedRerun) {
  testing::TempDir dir;
  const fs::path run = dir / "run";
  Json missing = kill_config();
  missing["data"]["table"]["path"] = (dir / "nope.txt").string();
  std::ofstream(dir / "missing.json") << missing.dump();
  auto r1 = run_with_kill(dir / "missing.json", run, "");
  EXPECT_EQ(r1.exit_code, 2) << "a config naming missing data is a bad config: " << r1.output;
  EXPECT_NE(r1.output.find("data.table.path: " + (dir / "nope.txt").string() + ": no such file"), std::string::npos)
      << r1.output;
  Json folds = kill_config();
  folds["evaluation"]["folds"] = 1000;
  std::ofstream(dir / "folds.json") << folds.dump();
  auto r2 = run_with_kill(dir / "folds.json", run, "");
  EXPECT_EQ(r2.exit_code, 2) << r2.output;
  EXPECT_NE(r2.output.find("k=1000"), std::string::npos) << r2.output;
  EXPECT_FALSE(fs::exists(run / "config.json"));

  std::ofstream(dir / "good.json") << kill_config().dump();
  auto good = run_with_kill(dir / "good.json", run, "");
  ASSERT_EQ(good.exit_code, 0) << good.output;
  // The same config on another device resumes (nothing is redone) instead of being refused.
  auto other_device = testing::run_songlines("run '" + (dir / "good.json").string() + "' --run-dir '" + run.string() +
                                             "' --device auto");
  EXPECT_EQ(other_device.exit_code, 0) << other_device.output;
  EXPECT_NE(other_device.output.find("resuming"), std::string::npos) << other_device.output;
  EXPECT_EQ(other_device.output.find("mlp repeat 0 fold 0"), std::string::npos) << other_device.output;
}

}  // namespace
}  // namespace songlines::runs
