// The run-directory rules every task shares (runs/run_dir.h) and the task table (runs/task.h).
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "runs/run_dir.h"
#include "runs/task.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

const Json kConfig = {{"experiment", "e"}, {"seed", 1}, {"device", "cpu"}, {"models", {1, 2}}};

std::string usage_error_of(const fs::path& dir, const Json& config, const RunDirFiles& files = {}) {
  try {
    check_run_dir(dir, config, files);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(RunDir, NewUnfinishedCompleteAndTheDeviceIsNotPartOfTheIdentity) {
  testing::TempDir dir;
  EXPECT_EQ(check_run_dir(dir.path(), kConfig), RunDirState::kNew);
  std::ofstream(dir / "config.json") << kConfig.dump();
  Json other_device = kConfig;
  other_device["device"] = "cuda";
  EXPECT_EQ(check_run_dir(dir.path(), other_device), RunDirState::kUnfinished);
  std::ofstream(dir / "metrics.json") << "{}";
  EXPECT_EQ(check_run_dir(dir.path(), kConfig), RunDirState::kComplete);
}

TEST(RunDir, RefusesAnotherConfigAnUnreadableConfigAndAnOrphanResult) {
  testing::TempDir dir;
  std::ofstream(dir / "config.json") << kConfig.dump();
  Json other = kConfig;
  other["seed"] = 2;
  EXPECT_NE(usage_error_of(dir.path(), other).find(dir.path().string() + ": exists with a different config"),
            std::string::npos);
  std::ofstream(dir / "config.json") << "{ not json";
  EXPECT_NE(usage_error_of(dir.path(), kConfig).find("config.json cannot be read"), std::string::npos);
  testing::TempDir orphan;
  std::ofstream(orphan / "summary.json") << "{}";
  EXPECT_EQ(usage_error_of(orphan.path(), kConfig), "");  // metrics.json is the default result file
  EXPECT_NE(usage_error_of(orphan.path(), kConfig, {"quickstart.json", "summary.json"})
                .find("holds a summary.json but no quickstart.json"),
            std::string::npos);
}

TEST(RunDir, DefaultNamesAreTimestampedWithTheIdentityHashOrTheExperiment) {
  const fs::path a = default_run_dir(RunDirNaming::kTimestamped, "e", kConfig, "out");
  Json other_device = kConfig;
  other_device["device"] = "cuda";
  const fs::path b = default_run_dir(RunDirNaming::kTimestamped, "e", other_device, "out");
  EXPECT_EQ(a.parent_path(), fs::path("out") / "e");
  // YYYYmmdd-HHMMSS-<hash>: the same identity gives the same hash whatever the device.
  const std::string an = a.filename().string(), bn = b.filename().string();
  ASSERT_GT(an.size(), 16u) << an;
  EXPECT_EQ(an.substr(16), bn.substr(16));
  Json other_seed = kConfig;
  other_seed["seed"] = 7;
  EXPECT_NE(default_run_dir(RunDirNaming::kTimestamped, "e", other_seed, "out").filename().string().substr(16),
            an.substr(16));
  EXPECT_EQ(default_run_dir(RunDirNaming::kExperiment, "e", kConfig, "out"), fs::path("out") / "e");
}

TEST(Tasks, TheTaskKeyPicksATaskAndUnknownOnesAreListed) {
  EXPECT_EQ(task_of(Json::object()), "location");
  EXPECT_EQ(task_of(Json::object(), "vae"), "vae");
  EXPECT_EQ(task_of(Json{{"type", "vae"}}), "vae");
  EXPECT_EQ(task_of(Json{{"task", "quickstart"}}), "quickstart");
  EXPECT_THROW(task_of(Json{{"task", 3}}), ConfigError);
  for (const char* name : {"location", "vae", "vocoder", "quickstart"}) EXPECT_EQ(find_task(name).name, name);
  try {
    find_task("vocodr");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown task \"vocodr\" (location, vae, vocoder, quickstart)"), std::string::npos)
        << e.what();
  }
  // A location config may name its task; another task's name there is refused by the location parser.
  Json location = {{"task", "location"},
                   {"data", {{"table", {{"format", "gom"}, {"path", "x.txt"}}}}},
                   {"models", {{{"type", "centroid"}}}}};
  const PreparedRun run = prepare_run(location, "/tmp");
  EXPECT_EQ(run.task, "location");
  EXPECT_FALSE(run.resolved.contains("task"));  // the resolved config (the identity) is as before
  EXPECT_EQ(find_task("quickstart").naming, RunDirNaming::kExperiment);
  EXPECT_FALSE(find_task("quickstart").sweepable);
}

}  // namespace
}  // namespace songlines::runs
