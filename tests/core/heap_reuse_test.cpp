// core/heap_reuse: after reuse_freed_heap_memory, a large block that is freed and allocated again is served
// from pages the process already has (no new minor page faults); with glibc's defaults every round maps and
// faults in fresh pages. ctest runs each test in its own process, so the setting stays inside this test.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/heap_reuse.h"

namespace songlines {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Minor page faults of one malloc / write every byte / free of `bytes`.
long faults_of_one_round(size_t bytes) {
  const long f0 = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  if (p == nullptr) return -1;
  std::memset(p, 1, bytes);
  asm volatile("" : : "r"(p) : "memory");  // keep the writes: the block must really be touched
  std::free(p);
  return minor_faults() - f0;
}

TEST(HeapReuse, FreedLargeBlocksAreReusedWithoutNewPageFaults) {
  constexpr size_t kBytes = size_t{64} << 20;  // above glibc's largest mmap threshold (32 MB)
  const long pages = static_cast<long>(kBytes / 4096);
  const long default_round = faults_of_one_round(kBytes);
  ASSERT_TRUE(reuse_freed_heap_memory());
  const long first = faults_of_one_round(kBytes);  // the heap grows once
  const long reused = faults_of_one_round(kBytes);
  std::printf("minor faults per 64 MB round: glibc defaults %ld, after the setting: first %ld, then %ld (%ld pages)\n",
              default_round, first, reused, pages);
  EXPECT_GT(default_round, pages / 2);  // the cost the setting removes
  EXPECT_LT(reused, pages / 20);
}

}  // namespace
}  // namespace songlines
