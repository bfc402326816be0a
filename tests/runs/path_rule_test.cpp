// The path rule (docs/experiments.md, "Paths"): paths inside a config are relative to the config file; paths on
// the command line (--run-dir, --output-root, path values given with --set) are relative to the working
// directory; paths one part hands to another are absolute. Each case runs from a working directory that is
// neither the config's folder nor its parent.
#include <gtest/gtest.h>

#include <fstream>

#include "core/config.h"
#include "core/path_rule.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

TEST(PathRule, SetOverridesOfPathKeysBecomeAbsoluteAgainstTheWorkingDirectory) {
  const fs::path wd = "/work/dir";
  EXPECT_EQ(override_with_absolute_paths("data.table.path=t.csv", wd), "data.table.path=\"/work/dir/t.csv\"");
  EXPECT_EQ(override_with_absolute_paths("data.shards=[\"a\",\"../b\",\"/abs\"]", wd),
            "data.shards=[\"/work/dir/a\",\"/work/b\",\"/abs\"]");
  EXPECT_EQ(override_with_absolute_paths("data.shards.1=s", wd), "data.shards.1=\"/work/dir/s\"");
  EXPECT_EQ(override_with_absolute_paths("location.data.table.path=x/y.txt", wd),
            "location.data.table.path=\"/work/dir/x/y.txt\"");
  // Not path keys, or not path-like values: unchanged.
  for (const char* same : {"evaluation.folds=3", "mydata.shards=a", "data.features=[\"mfcc\"]", "data.shards=3",
                           "data.table.path=/abs/t.csv"})
    EXPECT_EQ(override_with_absolute_paths(same, wd), same == std::string("data.table.path=/abs/t.csv")
                                                           ? std::string("data.table.path=\"/abs/t.csv\"")
                                                           : std::string(same));
}

class PathRuleRun : public ::testing::Test {
 protected:
  // root/cfg/exp.json names "../data/gom.txt"; commands run in root/work.
  void SetUp() override {
    fs::create_directories(dir_ / "cfg");
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "work");
    fs::copy_file(testing::data_path("gom/gom_slice_60.txt"), dir_ / "data" / "gom.txt");
    fs::copy_file(testing::data_path("gom/gom_slice_60.txt"), dir_ / "work" / "other.txt");
    std::ofstream(dir_ / "cfg" / "exp.json") << R"({
      "experiment": "paths", "seed": 1, "device": "cpu",
      "data": {"table": {"format": "gom", "path": "../data/gom.txt"}},
      "evaluation": {"folds": 2, "repeats": 1},
      "models": [{"type": "centroid"}, {"type": "knn", "k": 3}], "final_model": "knn"
    })";
  }
  testing::CommandResult run_in(const fs::path& wd, const std::string& args) {
    return testing::run_command("cd '" + wd.string() + "' && SONGLINES_NO_PROGRESS=1 '" +
                                testing::binary_path().string() + "' " + args);
  }
  testing::TempDir dir_;
};

TEST_F(PathRuleRun, ConfigPathsFollowTheConfigFileAndRunDirsTheWorkingDirectory) {
  // Relative config path and relative --run-dir, from root/work.
  auto r = run_in(dir_ / "work", "run ../cfg/exp.json --run-dir out/run1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "work/out/run1/metrics.json")) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "cfg/out")) << "--run-dir must not follow the config file";
  const Json used = load_json_file((dir_ / "work/out/run1/config.json").string());
  EXPECT_EQ(fs::path(used["data"]["table"]["path"].get<std::string>()),
            fs::weakly_canonical(dir_ / "data" / "gom.txt"));
  EXPECT_NE(r.output.find("run directory: " + fs::weakly_canonical(dir_ / "work/out/run1").string()),
            std::string::npos) << "the printed run directory is absolute: " << r.output;

  // --output-root is relative to the working directory too.
  auto o = run_in(dir_ / "work", "run ../cfg/exp.json --output-root rel-root");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  ASSERT_TRUE(fs::exists(dir_ / "work/rel-root/paths"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "work/rel-root/paths"), fs::directory_iterator{}), 1);

  // A path given with --set is typed on the command line: relative to the working directory.
  auto s = run_in(dir_ / "work", "run ../cfg/exp.json --run-dir out/run2 --set data.table.path=other.txt");
  ASSERT_EQ(s.exit_code, 0) << s.output;
  const Json used2 = load_json_file((dir_ / "work/out/run2/config.json").string());
  EXPECT_EQ(fs::path(used2["data"]["table"]["path"].get<std::string>()),
            fs::weakly_canonical(dir_ / "work" / "other.txt"));

  // import-table and predict: --model, --input and --output relative to the working directory, from another
  // folder than the one the run was made in.
  auto imp = run_in(dir_ / "cfg", "import-table --format gom --input ../data/gom.txt --output shards");
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
  EXPECT_TRUE(fs::exists(dir_ / "cfg/shards"));
  auto p = run_in(dir_ / "cfg", "predict --model ../work/out/run1 --input shards --output p.csv");
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_TRUE(fs::exists(dir_ / "cfg/p.csv"));
}

}  // namespace
}  // namespace songlines::runs
