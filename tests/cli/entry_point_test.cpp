// One entry point, two binaries (src/cli/entry_point.h): the light `songlines` loads neither libtorch nor the
// CUDA libraries for the commands it holds, and hands every other command to the full binary unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "songlines/version.h"
#include "support/test_support.h"

namespace songlines::cli {
namespace {

namespace fs = std::filesystem;

const fs::path kFullBinary = SONGLINES_FULL_BINARY;

// A shared object the light binary must not load: libtorch (libtorch, libtorch_cpu, libc10) or the CUDA runtime
// and libraries (libcudart, libcufft, libcublas, libcublasLt).
const std::regex kHeavyLibrary(R"(lib(torch[a-z_]*|c10[a-z_]*|cudart|cufft[a-z]*|cublas[A-Za-z]*)\.so)");

/// The shared objects the dynamic loader opened while running `songlines ARGS` (glibc's LD_DEBUG=files writes
/// "file=NAME [0];  needed by ..." or "... dynamically loaded by ..." for each), one name per entry; run gets the
/// command's exit status and output.
std::vector<std::string> loaded_objects(const std::string& args, testing::CommandResult* run,
                                      const std::string& environment = "") {
  testing::TempDir logs;
  *run = testing::run_command(environment + "LD_DEBUG=files LD_DEBUG_OUTPUT='" + (logs / "ld").string() + "' SONGLINES_NO_PROGRESS=1 '" +
                              testing::binary_path().string() + "' " + args);
  std::vector<std::string> names;
  static const std::regex file_line(R"(file=(\S+) \[)");
  for (const auto& e : fs::directory_iterator(logs.path())) {  // ld.PID, one per process
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), file_line); it != std::sregex_iterator(); ++it)
      names.push_back((*it)[1]);
  }
  return names;
}

/// Writes 1 s of a 440 Hz tone at 22050 Hz into dir; returns `features --device DEVICE` on it, output in dir.
std::string features_command(const testing::TempDir& dir, const std::string& device) {
  std::vector<float> tone(22050);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * static_cast<float>(std::sin(2.0 * M_PI * 440.0 * i / 22050.0));
  audio::write_audio((dir / "tone.wav").string(), tone.data(), static_cast<int64_t>(tone.size()), 22050);
  return "features --device " + device + " --input '" + (dir / "tone.wav").string() + "' --output '" +
         (dir / "f.h5").string() + "'";
}

std::vector<std::string> heavy_among(const std::vector<std::string>& names) {
  std::vector<std::string> heavy;
  for (const auto& n : names)
    if (std::regex_search(n, kHeavyLibrary)) heavy.push_back(n);
  return heavy;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

TEST(EntryPoint, HelpVersionLightCommandsAndCpuFeaturesLoadNeitherLibtorchNorCuda) {
  testing::TempDir dir;
  for (const std::string& args :
       {std::string("help"), std::string("--version"), std::string("help extract"), std::string("compare --help"),
        std::string("report --help"), std::string("import-table --help"), features_command(dir, "cpu")}) {
    SCOPED_TRACE(args);
    testing::CommandResult run;
    const auto names = loaded_objects(args, &run);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    // The trace worked: it saw the C library and the audio decoder.
    EXPECT_NE(joined(names).find("libc.so.6"), std::string::npos) << joined(names);
    EXPECT_NE(joined(names).find("libsndfile"), std::string::npos) << joined(names);
    EXPECT_EQ(heavy_among(names), std::vector<std::string>{}) << "loaded: " << joined(names);
  }
}

// --device auto on a machine without a GPU stays in the light binary too (the driver is looked for, not found).
TEST(EntryPoint, AutoDeviceWithoutAGpuLoadsNoCudaLibrary) {
  if (fs::exists("/dev/nvidiactl")) GTEST_SKIP() << "this machine has an NVIDIA driver";
  testing::TempDir dir;
  testing::CommandResult run;
  const auto names = loaded_objects(features_command(dir, "auto"), &run);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("no CUDA device available; computing features on the CPU"), std::string::npos) << run.output;
  EXPECT_EQ(heavy_among(names), std::vector<std::string>{}) << "loaded: " << joined(names);
}

// With a GPU (here a fake driver reporting one device), --device auto is handed to the full binary before any
// work: its CUDA runtime loads, finds no usable driver behind the fake, and the features are computed on the CPU.
TEST(EntryPoint, AutoDeviceWithAGpuIsHandedToTheFullBinary) {
#ifndef SONGLINES_FAKE_CUDA_DRIVER_DIR
  GTEST_SKIP() << "a build without CUDA: nothing to hand over";
#else
  testing::TempDir dir;
  testing::CommandResult run;
  const auto names = loaded_objects(features_command(dir, "auto"), &run,
                                    std::string("LD_LIBRARY_PATH='") + SONGLINES_FAKE_CUDA_DRIVER_DIR + "' ");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(fs::exists(dir / "f.h5"));
  const std::string heavy = joined(heavy_among(names));
  EXPECT_NE(heavy.find("libtorch"), std::string::npos) << joined(names);
  EXPECT_NE(heavy.find("libcudart"), std::string::npos) << joined(names);
  // Handed over before the command starts: quickstart (which synthesizes audio before it extracts) prints its
  // first line, and does its work, once.
  const auto q = testing::run_command(std::string("LD_LIBRARY_PATH='") + SONGLINES_FAKE_CUDA_DRIVER_DIR +
                                      "' SONGLINES_NO_PROGRESS=1 '" + testing::binary_path().string() +
                                      "' quickstart --tracks 2 --seconds 1 --output '" + (dir / "q").string() + "'");
  ASSERT_EQ(q.exit_code, 0) << q.output;
  const std::string first_line = "songlines quickstart: synthesizing";
  const auto at = q.output.find(first_line);
  ASSERT_NE(at, std::string::npos) << q.output;
  EXPECT_EQ(q.output.find(first_line, at + 1), std::string::npos) << "printed twice:\n" << q.output;
#endif
}

// The same trace sees libtorch when a command needs it: the light binary hands `help generate` to the full one.
TEST(EntryPoint, TorchCommandsRunInTheFullBinaryWhichLoadsLibtorch) {
  testing::CommandResult run;
  const auto names = loaded_objects("help generate", &run);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(joined(heavy_among(names)).find("libtorch"), std::string::npos) << joined(names);
}

// Help texts, the overview and exit statuses are the full binary's, for the commands of both binaries.
TEST(EntryPoint, OverviewAndHelpTextsEqualTheFullBinarys) {
  for (const std::string args : {"help", "help generate", "--version", "extract --help"}) {
    SCOPED_TRACE(args);
    const auto light = testing::run_songlines(args);
    const auto full = testing::run_command("SONGLINES_NO_PROGRESS=1 '" + kFullBinary.string() + "' " + args);
    EXPECT_EQ(light.exit_code, full.exit_code);
    EXPECT_EQ(light.output, full.output);
  }
  const auto overview = testing::run_songlines("help");
  for (const char* name : {"extract", "features", "generate", "run", "train-vae", "bench"})
    EXPECT_NE(overview.output.find(std::string("\n  ") + name + " "), std::string::npos) << name << "\n" << overview.output;
}

// --version names the revision the binaries were built from: the checkout's HEAD at the last build, "-dirty"
// when tracked files differed (found at every build, not at configure time, where it went stale with the next
// commit and run directories and shards recorded a revision they were not made by).
TEST(EntryPoint, VersionNamesTheCheckoutsRevision) {
  const std::string src = "'" + testing::source_dir().string() + "'";
  const auto head = testing::run_command("git -C " + src + " rev-parse --short HEAD 2>/dev/null");
  if (head.exit_code != 0) GTEST_SKIP() << "the sources are not a git checkout";
  std::string expected = head.output.substr(0, head.output.find('\n'));
  if (testing::run_command("git -C " + src + " diff --quiet HEAD --").exit_code != 0) expected += "-dirty";
  const auto light = testing::run_songlines("--version");
  ASSERT_EQ(light.exit_code, 0) << light.output;
  EXPECT_EQ(light.output, std::string("songlines ") + kVersion + " (" + expected + ")\n")
      << "a binary built from another revision than the checkout's (rebuild before testing)";
  EXPECT_EQ(testing::run_command("'" + kFullBinary.string() + "' --version").output, light.output);
}

// Without the full binary beside it, a torch command fails with a message naming where it was looked for.
TEST(EntryPoint, MissingFullBinaryIsAClearError) {
  testing::TempDir dir;
  fs::copy_file(testing::binary_path(), dir / "songlines");
  const auto r = testing::run_command("'" + (dir / "songlines").string() + "' generate --help");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("libexec/songlines/songlines-full"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;
  // The light binary's own commands still work there.
  EXPECT_EQ(testing::run_command("'" + (dir / "songlines").string() + "' help").exit_code, 0);
}

}  // namespace
}  // namespace songlines::cli
