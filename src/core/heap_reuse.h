// glibc malloc settings for a process that allocates and frees tensors of tens of megabytes in a loop
// (Griffin-Lim's spectra, training batches): keep freed memory for reuse instead of returning it to the kernel.
#pragma once

namespace songlines {

/// By default glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and
/// unmaps it on free, so each large tensor pays its page faults and zero-fill again. Measured on the 2-core
/// VM (docs/benchmarks.md): a 96 s `songlines generate` took 43-62 s (16-26 s of it system time); without
/// mmap-served allocations and with trimming off, 12 s and the same samples. The price: the process keeps its
/// peak heap until it exits. Call once, at the start of main, before any threads; a no-op where the C library
/// is not glibc. Returns false when the C library refused a setting.
bool reuse_freed_heap_memory();

}  // namespace songlines
