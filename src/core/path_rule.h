// The path rule of songlines (docs/experiments.md, "Paths"): paths inside a config file are relative to that
// file; paths on the command line (--run-dir, --output-root, inputs, outputs, path values given with --set) are
// relative to the working directory; paths one part of a run hands to another are absolute.
#pragma once

#include <filesystem>
#include <string>

namespace songlines {

/// A `--set` assignment typed on the command line, with its path values made absolute against working_dir when
/// the key is a path key of a run config (`[prefix.]data.shards`, `[prefix.]data.shards.N`,
/// `[prefix.]data.table.path`). Other assignments come back unchanged.
std::string override_with_absolute_paths(const std::string& assignment, const std::filesystem::path& working_dir);

/// Whether a data.shards entry is a glob pattern: it holds *, ? or [ (matched with glob(3)).
bool is_glob_pattern(const std::string& p);

/// p made absolute against base (p itself when absolute), normalised. A relative pattern (is_glob_pattern) gets
/// base's own glob characters escaped, so that only p's match: "parts/part-*" beside a config in "/data/[x]/"
/// becomes "/data/\[x]/parts/part-*". A literal path whose name holds one of them still
/// works where it exists (load_run_data looks for the entry itself first).
std::string absolute_path_or_pattern(const std::filesystem::path& base, const std::string& p);

}  // namespace songlines
