#include "train/folds.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"

namespace songlines::train {

std::vector<int> kfold_assignment(int64_t n, int k, uint64_t seed) {
  if (k < 2 || k > n)
    throw UsageError("folds: need 2 <= k <= rows, got k=" + std::to_string(k) + " for " + std::to_string(n) + " rows");
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int> fold(n);
  for (int64_t i = 0; i < n; ++i) fold[order[i]] = static_cast<int>(i % k);
  return fold;
}

std::vector<int> grouped_kfold_assignment(const std::vector<std::string>& groups, int k, uint64_t seed) {
  std::map<std::string, int64_t> count;
  for (const auto& g : groups) ++count[g];
  if (k < 2 || static_cast<int64_t>(count.size()) < k)
    throw UsageError("folds: grouped k-fold needs 2 <= k <= groups, got k=" + std::to_string(k) + " for " +
                     std::to_string(count.size()) + " groups");
  std::vector<std::pair<std::string, int64_t>> order(count.begin(), count.end());
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  // Stable sort by size keeps the shuffled order among equal sizes, so ties are broken by the seed.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<int64_t> load(k, 0);
  std::map<std::string, int> group_fold;
  for (const auto& [g, c] : order) {
    int f = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    group_fold[g] = f;
    load[f] += c;
  }
  std::vector<int> fold(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) fold[i] = group_fold[groups[i]];
  return fold;
}

std::vector<int64_t> fold_rows(const std::vector<int>& assignment, int fold, bool test) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < assignment.size(); ++i)
    if ((assignment[i] == fold) == test) rows.push_back(static_cast<int64_t>(i));
  return rows;
}

}  // namespace songlines::train
