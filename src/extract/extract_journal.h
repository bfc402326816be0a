// The resume journal of `extract` (DIR/.extract-journal): one JSON line per committed shard, appended and
// fsynced right after the shard's rename, listing the tracks it holds:
//   {"shard":"shard-00000.h5","tracks":[{"path":"/abs/a.wav","id":"a","size":123,"mtime_ns":456},...]}
// A track is done when a journaled shard that exists on disk lists its path. A kill between a shard's rename
// and its journal line leaves a shard the journal does not know; resume deletes it (its tracks are redone),
// so no track is ever in two shards. A torn last line (killed mid-append) is ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace songlines::extract {

struct JournalTrack {
  std::string path;      ///< canonical absolute path of the audio file (the track's identity)
  std::string id;        ///< track id written to the shard
  int64_t size = 0;      ///< bytes when extracted
  int64_t mtime_ns = 0;  ///< modification time when extracted (ns since the filesystem clock's epoch)
};

struct JournalEntry {
  std::string shard;  ///< file name inside the output directory
  std::vector<JournalTrack> tracks;
};

inline constexpr const char* kJournalName = ".extract-journal";
/// The settings shared by every shard of an output folder (feature options, whether a catalog gave metadata),
/// written when an extraction starts; `--resume` with other settings is refused.
inline constexpr const char* kExtractSettingsName = ".extract-settings.json";

/// Reads DIR/.extract-journal (empty when absent). Malformed lines other than a torn last one: InputError.
std::vector<JournalEntry> read_journal(const std::filesystem::path& dir);
/// Replaces the journal atomically with entries.
void rewrite_journal(const std::filesystem::path& dir, const std::vector<JournalEntry>& entries);
/// Appends one entry and fsyncs. Throws IoError.
void append_journal(const std::filesystem::path& dir, const JournalEntry& entry);

/// File size and mtime of an audio file for JournalTrack (0, 0 when it cannot be stat'ed).
JournalTrack journal_identity(const std::filesystem::path& canonical_path, const std::string& id);

}  // namespace songlines::extract
