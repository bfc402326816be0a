// Extraction over many machines: `extract --part K/N`, `--emit slurm --parts N` and per-part resume
// (src/extract/partition.h). The parts of a collection are checked against a one-machine extract of it.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/csv.h"
#include "extract/partition.h"
#include "support/test_support.h"

#include "extract_fixtures.h"  // tests/extract

namespace songlines::extract {
namespace {

namespace fs = std::filesystem;
using songlines::testing::run_command;
using songlines::testing::run_songlines;
using songlines::testing::TempDir;
using namespace fixtures;

/// Track ids of a shard folder in shard order (the order a run reads them).
std::vector<std::string> ids_in_order(const fs::path& dir) {
  std::vector<std::string> ids;
  for (const auto& file : shards::list_shards(dir)) {
    shards::ShardReader r(file);
    ids.insert(ids.end(), r.ids().begin(), r.ids().end());
  }
  return ids;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ExtractPart, ParseTakesKOfNAndRejectsEverythingElseNamingPart) {
  EXPECT_EQ(parse_part("1/1"), (ExtractPart{1, 1}));
  EXPECT_EQ(parse_part("3/8"), (ExtractPart{3, 8}));
  EXPECT_EQ(parse_part("12/12"), (ExtractPart{12, 12}));
  for (const char* bad : {"0/3", "4/3", "1/0", "0/0", "x/3", "3/y", "3", "", "/", "1/", "/2", "-1/3", "1/-3", "+1/3",
                          "1.5/3", " 1/3", "1/3/5", "99999999/100000000"}) {
    try {
      parse_part(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const UsageError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--part"), std::string::npos) << m;
      EXPECT_NE(m.find("\"" + std::string(bad) + "\""), std::string::npos) << m;
    }
  }
}

TEST(ExtractPart, RangesAreContiguousDisjointCompleteAndBalanced) {
  for (size_t n = 0; n <= 41; ++n) {
    for (int parts = 1; parts <= 13; ++parts) {
      // Naive reference: part k takes the next n/N items, plus one while the remainder lasts.
      size_t next = 0;
      for (int k = 1; k <= parts; ++k) {
        const size_t size = n / static_cast<size_t>(parts) + (static_cast<size_t>(k - 1) < n % static_cast<size_t>(parts) ? 1 : 0);
        const auto [begin, end] = part_range(n, {k, parts});
        EXPECT_EQ(begin, next) << "n=" << n << " part " << k << "/" << parts;
        EXPECT_EQ(end - begin, size) << "n=" << n << " part " << k << "/" << parts;
        EXPECT_LE(end - begin, (n + static_cast<size_t>(parts) - 1) / static_cast<size_t>(parts));
        next = end;
      }
      EXPECT_EQ(next, n) << "parts of " << n << " into " << parts << " do not cover the list";
    }
  }
}

TEST(ExtractPart, FolderNamesSortInPartOrder) {
  EXPECT_EQ(part_dir_name({1, 1}), "part-1-of-1");
  EXPECT_EQ(part_dir_name({3, 12}), "part-03-of-12");
  EXPECT_EQ(part_dir_name({7, 100}), "part-007-of-100");
  std::vector<std::string> names;
  for (int k = 1; k <= 12; ++k) names.push_back(part_dir_name({k, 12}));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(ExtractParts, BadPartValuesExit2NamingTheOption) {
  TempDir tmp;
  write_good_files(tmp / "in", 2, 0.5);
  const std::string io = " --input " + (tmp / "in").string() + " --output " + (tmp / "out").string() + " --no-progress";
  const std::pair<const char*, const char*> cases[] = {
      {"--part 0/3", "--part"},  {"--part 4/3", "--part"},          {"--part 1/0", "--part"},
      {"--part x/3", "--part"},  {"--part 3", "--part"},            {"--emit slurm --parts 0", "--parts"},
      {"--parts 3", "--parts"},  {"--emit slurm --parts x", "--parts"}, {"--emit slurm", "--parts"},
      {"--emit pbs --parts 2", "--emit"}, {"--emit slurm --parts 2 --part 1/2", "--part"}};
  for (const auto& [args, option] : cases) {
    auto r = run_songlines(std::string("extract") + io + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(option), std::string::npos) << args << " should name " << option << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(tmp / "out")) << "a refused command wrote its output folder";

  // More parts than files: the surplus parts are empty, not errors.
  auto r = run_songlines(std::string("extract") + io + " --part 3/3");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("part 3/3 is empty (the list has 2 files)"), std::string::npos) << r.output;
  EXPECT_TRUE(shards::list_shards(tmp / "out" / "part-3-of-3").empty());
  EXPECT_EQ(read_csv((tmp / "out" / "part-3-of-3" / "features.csv").string()).rows.size(), 0u);
}

// The Slurm script, written from another working directory with relative paths, run by hand once per array task,
// gives parts whose union is a one-machine extract: same ids (a repeated stem gets the same "#2" across parts),
// same paths, same summaries and frames bit for bit, each track in exactly one part, in the one-machine order.
TEST(ExtractParts, SlurmScriptTasksGiveDisjointCompletePartsEqualToOneMachine) {
  TempDir tmp;
  write_good_files(tmp / "a", 3, 1.0);
  write_good_files(tmp / "b", 3, 1.6);  // same names as a/, other audio: ids good-000#2, ...
  std::ofstream(tmp / "a" / "text.wav") << "not audio\n";
  fs::create_directories(tmp / "work");
  const std::string opts = " --shard-size 1 --features mfcc,chroma_stft --device cpu";

  auto whole = run_songlines("extract --input " + (tmp / "a").string() + " --input " + (tmp / "b").string() +
                             " --output " + (tmp / "whole").string() + opts + " --jobs 2 --no-progress");
  ASSERT_EQ(whole.exit_code, 3) << whole.output;  // text.wav

  auto emit = run_command("cd '" + (tmp / "work").string() + "' && '" + testing::binary_path().string() +
                          "' extract --input ../a --input ../b --output ../parts" + opts + " --emit slurm --parts 3");
  ASSERT_EQ(emit.exit_code, 0) << emit.output;
  const fs::path parts = fs::weakly_canonical(tmp / "parts");
  const fs::path script = parts / "extract.slurm";
  EXPECT_NE(emit.output.find("sbatch " + script.string()), std::string::npos) << emit.output;
  EXPECT_NE(emit.output.find("3 tasks over 7 audio files, 2 to 3 files per part"), std::string::npos) << emit.output;
  const std::string text = read_text(script);
  EXPECT_EQ(text.rfind("#!/bin/bash\n", 0), 0u) << text;
  EXPECT_NE(fs::status(script).permissions() & fs::perms::owner_exec, fs::perms::none);
  for (const std::string& want : std::vector<std::string>{
           "#SBATCH --array=1-3\n", "#SBATCH --output=" + (parts / "slurm-%A_%a.out").string() + "\n",
        "#SBATCH --cpus-per-task=8\n", "exec '" + fs::canonical(testing::binary_path()).string() + "' extract",
        " '--input' '" + fs::weakly_canonical(tmp / "a").string() + "' '--input' '" +
            fs::weakly_canonical(tmp / "b").string() + "'",
        " '--output' '" + parts.string() + "'", " '--features' 'mfcc,chroma_stft'", " '--shard-size' '1'",
        " '--device' 'cpu'", " --jobs \"${SLURM_CPUS_PER_TASK:-8}\" --part \"${SLURM_ARRAY_TASK_ID}/3\" --resume\n",
        "\"shards\": [\"" + (parts / "part-*-of-3").string() + "\"]"})
    EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "\n" << text;
  EXPECT_EQ(text.find("--gres=gpu:1\n"), std::string::npos) << "--device cpu asks for no GPU\n" << text;
  EXPECT_EQ(text.find("../"), std::string::npos) << "relative path in the script\n" << text;

  // What each array task runs, by hand, from yet another folder.
  for (int k = 1; k <= 3; ++k) {
    auto r = run_command("cd / && SLURM_ARRAY_TASK_ID=" + std::to_string(k) + " SLURM_CPUS_PER_TASK=1 bash '" +
                         script.string() + "'");
    EXPECT_EQ(r.exit_code, k == 2 ? 3 : 0) << "task " << k << "\n" << r.output;  // sorted: a/text.wav is 4th of 7
    if (k == 2) EXPECT_NE(r.output.find("text.wav"), std::string::npos) << r.output;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(parts), fs::directory_iterator{}), 4)
      << "parts/ holds the script and three part folders";

  ShardContents one = read_all(tmp / "whole");
  ASSERT_EQ(one.tracks, 6);
  std::vector<std::string> concatenated;
  std::map<std::string, int> seen;
  for (int k = 1; k <= 3; ++k) {
    const fs::path dir = parts / ("part-" + std::to_string(k) + "-of-3");
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    auto ids = ids_in_order(dir);
    EXPECT_FALSE(ids.empty()) << dir;
    concatenated.insert(concatenated.end(), ids.begin(), ids.end());
    ShardContents c = read_all(dir);
    EXPECT_EQ(read_csv((dir / "features.csv").string()).rows.size(), static_cast<size_t>(c.tracks));
    for (const auto& [id, feats] : c.means) {
      ++seen[id];
      ASSERT_TRUE(one.means.count(id)) << id << " (part " << k << ") is not in the one-machine extract";
      EXPECT_EQ(c.paths[id], one.paths[id]) << id;
      for (const auto& [name, m] : one.means[id]) EXPECT_EQ(feats.at(name), m) << id << " " << name;
      for (const auto& [name, f] : one.frames[id]) EXPECT_EQ(c.frames[id].at(name), f) << id << " " << name;
    }
  }
  for (const auto& [id, _] : one.means) EXPECT_EQ(seen[id], 1) << id << " should be in exactly one part";
  EXPECT_EQ(concatenated, ids_in_order(tmp / "whole")) << "parts in order read the tracks in one-machine order";
  EXPECT_NE(std::find(concatenated.begin(), concatenated.end(), "good-000#2"), concatenated.end());

  // A second split into another N beside these parts is refused: a glob over both would read tracks twice.
  auto mixed = run_songlines("extract --input " + (tmp / "a").string() + " --output " + parts.string() +
                             " --part 1/2 --no-progress");
  EXPECT_EQ(mixed.exit_code, 2) << mixed.output;
  EXPECT_NE(mixed.output.find("a split into 3"), std::string::npos) << mixed.output;
}

// --resume per part: part 2/2 killed with SIGKILL after its first shard resumes in its own folder and ends equal
// to a clean run of the same part; part 1's folder is never touched.
TEST(ExtractParts, KilledPartResumesInItsOwnFolder) {
  TempDir tmp;
  const int n_files = 40;  // part 2/2: 20 files, one shard each
  write_good_files(tmp / "in", n_files, 1.0);
  const std::string in = (tmp / "in").string();
  auto clean = run_songlines("extract --input " + in + " --output " + (tmp / "clean").string() +
                             " --part 2/2 --jobs 2 --shard-size 1 --no-progress");
  ASSERT_EQ(clean.exit_code, 0) << clean.output;

  const fs::path out = tmp / "out", part = out / "part-2-of-2";
  pid_t pid = spawn_songlines({"extract", "--input", in, "--output", out.string(), "--part", "2/2", "--jobs", "1",
                               "--shard-size", "1", "--no-progress"});
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (journal_lines(part) < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  int status = 0;
  const bool still_running = waitpid(pid, &status, WNOHANG) == 0;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  const size_t committed = journal_lines(part);
  ASSERT_GE(committed, 1u) << "first shard never committed";
  ASSERT_TRUE(still_running) << "the part finished before it could be killed";
  ASSERT_LT(committed, static_cast<size_t>(n_files / 2));

  auto again = run_songlines("extract --input " + in + " --output " + out.string() + " --part 2/2 --no-progress");
  EXPECT_EQ(again.exit_code, 2) << "an interrupted part without --resume is refused\n" << again.output;
  auto resumed = run_songlines("extract --input " + in + " --output " + out.string() +
                               " --part 2/2 --resume --jobs 2 --shard-size 1 --no-progress");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("already extracted (resumed)"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find(part.string()), std::string::npos) << "prints the part's folder\n" << resumed.output;
  EXPECT_FALSE(fs::exists(out / "part-1-of-2"));

  ShardContents a = read_all(tmp / "clean" / "part-2-of-2");
  ShardContents b = read_all(part);
  EXPECT_EQ(a.tracks, n_files / 2);
  EXPECT_EQ(b.tracks, n_files / 2);
  EXPECT_EQ(ids_in_order(part), ids_in_order(tmp / "clean" / "part-2-of-2"));
  for (const auto& [id, feats] : a.means) {
    ASSERT_TRUE(b.means.count(id)) << id << " missing after resume";
    for (const auto& [name, m] : feats) EXPECT_EQ(b.means[id].at(name), m) << id << " " << name;
  }
  // Part 2 of 40 sorted files is good-020 .. good-039.
  EXPECT_TRUE(a.means.count("good-020") && a.means.count("good-039") && !a.means.count("good-019"));
}

}  // namespace
}  // namespace songlines::extract
