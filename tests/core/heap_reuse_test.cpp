// core/heap_reuse: after reuse_freed_heap_memory, a large block is served from the arenas' heap instead of its
// own mmap, and once freed it stays with the process, so the next block of that size reuses pages already
// faulted in. What is asserted is glibc's own accounting (mallinfo2: bytes in mmapped blocks, bytes of heap),
// which does not depend on the kernel's transparent-huge-page setting; the page-fault counts are printed for
// scale only (with THP "always" a 64 MB mapping faults in 2 MB pages, so counts vary between machines).
// ctest runs each test in its own process, so the setting stays inside this test.
#include <gtest/gtest.h>
#include <malloc.h>
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

struct Round {
  size_t mmapped_while_live = 0;  ///< mallinfo2().hblkhd growth while the block is allocated
  size_t heap_after_free = 0;     ///< mallinfo2().arena after the free (bytes of heap the process keeps)
  long faults = 0;                ///< minor page faults of the round
  const void* address = nullptr;
};

// One malloc / write every byte / free of `bytes`.
Round one_round(size_t bytes) {
  Round r;
  const size_t mmapped0 = mallinfo2().hblkhd;
  const long f0 = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  if (p == nullptr) return r;
  std::memset(p, 1, bytes);
  asm volatile("" : : "r"(p) : "memory");  // keep the writes: the block must really be touched
  r.mmapped_while_live = mallinfo2().hblkhd - mmapped0;
  r.address = p;
  std::free(p);
  r.faults = minor_faults() - f0;
  r.heap_after_free = mallinfo2().arena;
  return r;
}

TEST(HeapReuse, FreedLargeBlocksStayInTheHeapAndAreReused) {
  constexpr size_t kBytes = size_t{64} << 20;  // above glibc's largest mmap threshold (32 MB)
  const Round by_default = one_round(kBytes);
  ASSERT_TRUE(reuse_freed_heap_memory());
  const Round first = one_round(kBytes);  // the heap grows once
  const Round reused = one_round(kBytes);
  std::printf("64 MB rounds: glibc defaults: %zu bytes mmapped, %ld minor faults; after the setting: first %ld, "
              "then %ld faults; heap kept after free %zu bytes\n",
              by_default.mmapped_while_live, by_default.faults, first.faults, reused.faults, reused.heap_after_free);
  EXPECT_GE(by_default.mmapped_while_live, kBytes) << "glibc's default serves a 64 MB block with its own mmap";
  EXPECT_EQ(first.mmapped_while_live, 0u) << "after the setting no block is mmapped";
  EXPECT_EQ(reused.mmapped_while_live, 0u);
  EXPECT_GE(first.heap_after_free, kBytes) << "the freed block stays in the heap (no trim)";
  EXPECT_EQ(reused.address, first.address) << "the second block reuses the first one's memory";
  EXPECT_LE(reused.faults, first.faults) << "reused pages are already faulted in";
  EXPECT_LT(reused.faults, static_cast<long>(kBytes / 4096 / 20));
}

}  // namespace
}  // namespace songlines
