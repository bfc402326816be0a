#include "train/folds.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"

namespace songlines::train {
namespace {

TEST(Folds, BalancedSeededAndShuffled) {
  auto a = kfold_assignment(103, 10, 42);
  std::map<int, int> size;
  for (int f : a) ++size[f];
  ASSERT_EQ(size.size(), 10u);
  for (auto [f, s] : size) EXPECT_TRUE(s == 10 || s == 11) << "fold " << f << " has " << s;
  EXPECT_EQ(a, kfold_assignment(103, 10, 42));
  EXPECT_NE(a, kfold_assignment(103, 10, 43));
  std::vector<int> sequential(103);
  for (int i = 0; i < 103; ++i) sequential[i] = i % 10;
  EXPECT_NE(a, sequential);
  EXPECT_THROW(kfold_assignment(5, 10, 0), UsageError);
}

TEST(Folds, TrainAndTestRowsPartitionTheData) {
  auto a = kfold_assignment(50, 5, 1);
  std::set<int64_t> seen;
  for (int f = 0; f < 5; ++f) {
    auto test = fold_rows(a, f, true), train = fold_rows(a, f, false);
    EXPECT_EQ(test.size() + train.size(), 50u);
    std::set<int64_t> t(test.begin(), test.end());
    for (auto r : train) EXPECT_FALSE(t.count(r)) << "row " << r << " in both splits of fold " << f;
    seen.insert(test.begin(), test.end());
  }
  EXPECT_EQ(seen.size(), 50u);
}

TEST(Folds, GroupedFoldsNeverSplitAGroup) {
  std::vector<std::string> groups;
  for (int i = 0; i < 200; ++i) groups.push_back("g" + std::to_string((i * 7) % 23));
  auto a = grouped_kfold_assignment(groups, 5, 9);
  std::map<std::string, std::set<int>> folds_of;
  for (size_t i = 0; i < groups.size(); ++i) folds_of[groups[i]].insert(a[i]);
  for (const auto& [g, fs] : folds_of) EXPECT_EQ(fs.size(), 1u) << g << " leaks across folds";
  for (int f = 0; f < 5; ++f) {
    std::set<std::string> test_groups;
    for (auto r : fold_rows(a, f, true)) test_groups.insert(groups[r]);
    for (auto r : fold_rows(a, f, false)) EXPECT_FALSE(test_groups.count(groups[r]));
    EXPECT_FALSE(fold_rows(a, f, true).empty());
  }
  EXPECT_THROW(grouped_kfold_assignment({"a", "b"}, 3, 0), UsageError);
}

}  // namespace
}  // namespace songlines::train
