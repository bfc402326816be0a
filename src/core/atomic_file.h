// Complete-or-absent files: content goes to a temporary name beside the target, then rename(2).
#pragma once

#include <filesystem>
#include <string>

namespace songlines {

/// A temporary path next to target ("<target>.tmp.<pid>.<n>"), on the same filesystem so rename is atomic.
std::filesystem::path temporary_path_for(const std::filesystem::path& target);

/// Writes content to target atomically; throws IoError naming the path.
void write_file_atomic(const std::filesystem::path& target, const std::string& content);

/// Renames tmp onto target (fsyncs the file first); throws IoError.
void commit_atomic(const std::filesystem::path& tmp, const std::filesystem::path& target);

}  // namespace songlines
