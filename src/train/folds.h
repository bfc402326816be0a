// K-fold assignments for cross-validation: shuffled and seeded, optionally grouped so that every track of a
// group (a country, an artist) falls in the same fold: no group is ever in both training and test split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace songlines::train {

/// fold[i] in [0, k) for n rows; fold sizes differ by at most one. Throws UsageError when k < 2 or k > n.
std::vector<int> kfold_assignment(int64_t n, int k, uint64_t seed);
/// Groups shuffled, then each assigned to the currently smallest fold (largest groups first). Throws when
/// there are fewer groups than folds.
std::vector<int> grouped_kfold_assignment(const std::vector<std::string>& groups, int k, uint64_t seed);
/// Rows of fold f (test) or of all other folds (train).
std::vector<int64_t> fold_rows(const std::vector<int>& assignment, int fold, bool test);

}  // namespace songlines::train
