// docs/reliability.md for runs and predict, through the binary as a user runs them: a run whose data.table has
// a NaN feature fails naming the file, line and column (it trained on the NaN before); `predict` on a real
// shard with one NaN in its summary refuses it, naming the file, the dataset and the track (it printed a
// prediction, and a changed country, before), while the same shard without the NaN predicts every track.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "core/config.h"
#include "support/shard_patch.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;

std::string slice() { return testing::data_path("gom/gom_slice_60.txt").string(); }

Json knn_config(const std::string& table) {
  return Json{{"experiment", "nonfinite"},
              {"seed", 1},
              {"device", "cpu"},
              {"data", {{"table", {{"format", "gom"}, {"path", table}}}}},
              {"evaluation", {{"folds", 3}, {"repeats", 1}}},
              {"models", {{{"type", "centroid"}}, {{"type", "knn"}, {"k", 3}}}}};
}

// The slice with line `line`'s field `column` (1-based) replaced by `value`.
fs::path slice_with(const testing::TempDir& dir, int line, int column, const std::string& value) {
  std::ifstream in(slice());
  std::ofstream out(dir / "gom_bad.txt");
  std::string text;
  for (int n = 1; std::getline(in, text); ++n) {
    if (n == line) {
      std::stringstream fields(text);
      std::string field, joined;
      for (int c = 1; std::getline(fields, field, ','); ++c) joined += (c > 1 ? "," : "") + (c == column ? value : field);
      text = joined;
    }
    out << text << "\n";
  }
  return dir / "gom_bad.txt";
}

TEST(RunNonFinite, TableWithNanFailsNamingFileLineAndColumn) {
  testing::TempDir dir;
  const auto table = slice_with(dir, 10, 7, "nan");
  std::ofstream(dir / "run.json") << knn_config(table.string()).dump();
  const auto r = testing::run_songlines("run " + (dir / "run.json").string() + " --run-dir " + (dir / "run").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(table.string() + ":10: column 7: non-finite value \"nan\""), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "metrics.json"));
}

TEST(PredictNonFinite, ShardWithANanSummaryIsRefusedNamingFileDatasetAndTrack) {
  testing::TempDir dir;
  std::ofstream(dir / "run.json") << knn_config(slice()).dump();
  const auto run_dir = dir / "run";
  auto r = testing::run_songlines("run " + (dir / "run.json").string() + " --run-dir " + run_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_songlines("import-table --format gom --input " + slice() + " --output " + (dir / "shards").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto shard = dir / "shards" / "gom_slice_60.h5";
  ASSERT_TRUE(fs::exists(shard));

  const std::string predict = "predict --model " + run_dir.string() + " --input " + shard.string();
  r = testing::run_songlines(predict);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gom-"), std::string::npos) << r.output;

  testing::set_h5_element(shard, "/summary/gom_mean", 4, 2, std::numeric_limits<double>::quiet_NaN());
  r = testing::run_songlines(predict + " --output " + (dir / "p.csv").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(shard.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/summary/gom_mean"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("track 4"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "p.csv")) << "predictions written from a non-finite feature";
}

}  // namespace
}  // namespace songlines::runs
