#include "extract/extract_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"

namespace songlines::extract {

namespace {

Json to_json(const JournalEntry& e) {
  Json tracks = Json::array();
  for (const auto& t : e.tracks) tracks.push_back({{"path", t.path}, {"id", t.id}, {"size", t.size}, {"mtime_ns", t.mtime_ns}});
  return {{"shard", e.shard}, {"tracks", tracks}};
}

JournalEntry from_json(const Json& j) {
  JournalEntry e;
  e.shard = j.at("shard").get<std::string>();
  for (const auto& t : j.at("tracks"))
    e.tracks.push_back({t.at("path").get<std::string>(), t.at("id").get<std::string>(), t.at("size").get<int64_t>(),
                        t.at("mtime_ns").get<int64_t>()});
  return e;
}

}  // namespace

std::vector<JournalEntry> read_journal(const std::filesystem::path& dir) {
  const auto path = dir / kJournalName;
  std::ifstream in(path);
  if (!in) return {};
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  // A line is complete only when it ended in '\n'; getline cannot tell, so a torn last line shows as a parse
  // failure and is dropped.
  std::vector<JournalEntry> entries;
  for (size_t i = 0; i < lines.size(); ++i) {
    try {
      entries.push_back(from_json(Json::parse(lines[i])));
    } catch (const std::exception& e) {
      if (i + 1 == lines.size()) break;
      throw InputError(path.string(), "line " + std::to_string(i + 1) + " is malformed (" + e.what() +
                                          "); delete the output directory and extract again");
    }
  }
  return entries;
}

void rewrite_journal(const std::filesystem::path& dir, const std::vector<JournalEntry>& entries) {
  std::string text;
  for (const auto& e : entries) text += to_json(e).dump() + "\n";
  write_file_atomic(dir / kJournalName, text);
}

void append_journal(const std::filesystem::path& dir, const JournalEntry& entry) {
  const auto path = dir / kJournalName;
  const std::string line = to_json(entry).dump() + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path.string() + ": cannot open journal: " + std::strerror(errno));
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw IoError(path.string() + ": cannot append to journal: " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

JournalTrack journal_identity(const std::filesystem::path& canonical_path, const std::string& id) {
  JournalTrack t;
  t.path = canonical_path.string();
  t.id = id;
  std::error_code ec;
  auto size = std::filesystem::file_size(canonical_path, ec);
  if (!ec) t.size = static_cast<int64_t>(size);
  auto mtime = std::filesystem::last_write_time(canonical_path, ec);
  if (!ec) t.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
  return t;
}

}  // namespace songlines::extract
