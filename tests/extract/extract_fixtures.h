// Fixtures shared by the extract tests: seeded synthetic audio files, every track of a shard folder, and a
// songlines process that can be killed mid-run.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "extract/extract_journal.h"
#include "extract/synthetic_music.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::extract::fixtures {

namespace fs = std::filesystem;

/// Writes n seeded synthetic WAVs (different tempo/scale/seed) of `seconds` into dir; returns their stems.
inline std::vector<std::string> write_good_files(const fs::path& dir, int n, double seconds, int first = 0) {
  fs::create_directories(dir);
  std::vector<std::string> stems;
  for (int i = first; i < first + n; ++i) {
    SyntheticMusicOptions o;
    o.seconds = seconds + 0.37 * (i % 3);
    o.tempo_bpm = 70 + 13 * i;
    o.tonic_hz = 150 + 17.5 * i;
    o.seed = 100 + static_cast<uint64_t>(i);
    auto y = synthesize_music(o);
    char name[32];
    std::snprintf(name, sizeof name, "good-%03d", i);
    audio::write_audio((dir / (std::string(name) + ".wav")).string(), y.data(), static_cast<int64_t>(y.size()), o.sample_rate);
    stems.push_back(name);
  }
  return stems;
}

inline void write_bad_files(const fs::path& dir) {
  std::ofstream(dir / "empty.wav").close();
  std::ofstream(dir / "text.wav") << "this is not audio, just text renamed to .wav\n";
  fs::create_directories(dir / "x.wav");
}

/// Every track of every shard in dir: id -> (shard summaries by feature).
struct ShardContents {
  std::map<std::string, std::map<std::string, std::vector<double>>> means;  // id -> feature -> [dim]
  std::map<std::string, std::map<std::string, std::vector<float>>> frames;  // id -> feature -> frames
  std::map<std::string, std::string> paths;
  int64_t tracks = 0;
};

inline ShardContents read_all(const fs::path& dir) {
  ShardContents c;
  for (const auto& file : shards::list_shards(dir)) {
    shards::ShardReader r(file);
    for (int64_t t = 0; t < r.size(); ++t) {
      auto rec = r.read_track(t);
      EXPECT_EQ(c.means.count(rec.id), 0u) << rec.id << " appears twice (second time in " << file << ")";
      for (const auto& [name, s] : rec.summary) c.means[rec.id][name] = s.mean;
      for (const auto& [name, m] : rec.frames) c.frames[rec.id][name] = m.data;
      c.paths[rec.id] = rec.path;
      ++c.tracks;
    }
  }
  return c;
}

/// Starts `songlines ARGS` with stdout and stderr to /dev/null; returns its pid.
inline pid_t spawn_songlines(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<std::string> all = {songlines::testing::binary_path().string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    FILE* null = std::fopen("/dev/null", "w");
    if (null) {
      dup2(fileno(null), 1);
      dup2(fileno(null), 2);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

/// Committed shards so far: lines of DIR/.extract-journal.
inline size_t journal_lines(const fs::path& dir) {
  std::ifstream in(dir / kJournalName);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

}  // namespace songlines::extract::fixtures
