#include "core/heap_reuse.h"

#include <cstdlib>  // defines __GLIBC__ on glibc systems (checked below)

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace songlines {

bool reuse_freed_heap_memory() {
#if defined(__GLIBC__)
  // M_MMAP_MAX 0: every allocation comes from the arenas' heaps (sbrk or arena heaps), where freed blocks are
  // reused; M_TRIM_THRESHOLD: never hand the heap's free top back to the kernel.
  constexpr int kNeverTrim = 0x7fffffff;
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, kNeverTrim) == 1;
  return no_mmap && no_trim;
#else
  return true;
#endif
}

}  // namespace songlines
