// songlines bench NAME [--tracks N] [--seconds S] [--repeats R] [--batch-frames F] [--threads T] [--json FILE]:
// runs one registered benchmark (each reads the options that apply to it).
#include <cstdio>
#include <iostream>
#include <sys/wait.h>

#include "bench/benchmark.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace songlines::bench {

namespace {
std::vector<Benchmark>& registry() {
  static std::vector<Benchmark> r;  // function-local: registration order across translation units is safe
  return r;
}
}  // namespace

bool register_benchmark(Benchmark b) {
  registry().push_back(std::move(b));
  return true;
}
const std::vector<Benchmark>& benchmarks() { return registry(); }

std::filesystem::path project_file(const std::filesystem::path& rel) {
  namespace fs = std::filesystem;
  if (fs::exists(rel)) return rel;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  for (auto dir = exe.parent_path(); !ec && !dir.empty() && dir != dir.parent_path(); dir = dir.parent_path())
    if (fs::exists(dir / rel)) return dir / rel;
  throw InputError(rel.string(), "not found from the working directory or the binary's folders");
}

void write_json_output(const std::string& path, const std::string& json_text) {
  if (path == "-") std::cout << json_text << "\n";
  else write_file_atomic(path, json_text + "\n");
}

std::string run_capture(const std::string& command_line, int* status) {
  FILE* p = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!p) throw IoError("cannot run: " + command_line);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = ::pclose(p);
  *status = rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc));
  return out;
}

namespace {

cxxopts::Options bench_options() {
  std::string list;
  for (const auto& b : benchmarks()) list += "\n  " + b.name + ": " + b.summary;
  cxxopts::Options o("songlines bench", "Benchmarks (median of repeats after a warm-up). Available:" + list);
  o.add_options()("benchmark", "which benchmark", cxxopts::value<std::string>())(
      "tracks", "synthetic tracks per batch", cxxopts::value<int>()->default_value("32"))(
      "seconds", "seconds of audio per track", cxxopts::value<double>()->default_value("180"))(
      "repeats", "timed repetitions (median reported)", cxxopts::value<int>()->default_value("5"))(
      "batch-frames", "device batch budget in STFT frames", cxxopts::value<int64_t>()->default_value("131072"))(
      "device-index", "CUDA device ordinal", cxxopts::value<int>()->default_value("0"))(
      "threads", "CPU worker threads for the all-threads figure (0: every hardware thread)",
      cxxopts::value<int>()->default_value("0"))(
      "peers", "features: also time librosa, torchaudio, nnAudio and essentia (scripts/peers.sh's venv, or "
      "$SONGLINES_PEERS_VENV) on the same audio, pinned to the same core, and print the ratios")(
      "core", "features --peers: the CPU core both sides are pinned to (default: the first one allowed)",
      cxxopts::value<int>()->default_value("-1"))(
      "input", "device-features: the audio folder (or file) of the end-to-end extract part (default: the synthetic "
      "tracks, written as FLAC)", cxxopts::value<std::string>())(
      "json", "also write the results as JSON to this file (- for stdout)", cxxopts::value<std::string>());
  o.custom_help("NAME [--tracks N] [--seconds S] [--repeats R] [--batch-frames F] [--device-index I] "
                "[--threads T] [--peers [--core C]] [--input DIR] [--json FILE]");
  o.positional_help("NAME");
  return o;
}

int run_bench(const cxxopts::ParseResult& args) {
  if (!args.count("benchmark")) {
    std::cout << bench_options().help() << "\n";
    return static_cast<int>(ExitStatus::kUsage);
  }
  const std::string name = args["benchmark"].as<std::string>();
  for (const auto& b : benchmarks())
    if (b.name == name) return b.run(args);
  throw UsageError("bench: unknown benchmark \"" + name + "\" (see `songlines help bench`)");
}

}  // namespace
}  // namespace songlines::bench

SONGLINES_REGISTER_COMMAND(songlines::cli::Command{"bench", "benchmarks (see `songlines help bench`)",
                                                   songlines::bench::bench_options, songlines::bench::run_bench,
                                                   {"benchmark"},
                                   {"songlines bench features --repeats 15",
                                    "songlines bench long-track --repeats 3",
                                    "songlines bench features --peers --seconds 30 --repeats 5",
                                    "songlines bench generate --json generate.json"}});
