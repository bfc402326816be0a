// The OS page cache around read benchmarks (bench crops, bench vae-crops): reads from a cold cache are what a
// disk delivers, reads from a warm one what memory-speed storage would.
#pragma once

#include <filesystem>
#include <vector>

namespace songlines::bench {

/// Drops the files' pages from the OS page cache (clean pages only; the files are synced first).
void drop_from_page_cache(const std::vector<std::filesystem::path>& files);

/// Reads every byte of the files once (so that they sit in the OS page cache).
void warm_page_cache(const std::vector<std::filesystem::path>& files);

}  // namespace songlines::bench
