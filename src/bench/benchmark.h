// Benchmarks of `songlines bench NAME`: each lives in src/bench/bench_<name>.cpp and registers itself here, so
// the `bench` command (cmd_bench.cpp) lists and dispatches them. Benchmarks warm up, synchronise, repeat and
// report medians (CONVENTIONS.md "Build and benchmarks").
#pragma once

#include <cxxopts.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace songlines::bench {

struct Benchmark {
  std::string name;     ///< `songlines bench <name>`
  std::string summary;  ///< one line for the list
  /// Runs with the bench command's parsed options (--seconds, --tracks, --repeats, ...); returns the exit status.
  std::function<int(const cxxopts::ParseResult&)> run;
};

bool register_benchmark(Benchmark b);
const std::vector<Benchmark>& benchmarks();

/// A project file (a peer's script, shipped data) looked up from the working directory, then beside the binary's
/// build folder and its parents; throws InputError naming it when neither has it.
std::filesystem::path project_file(const std::filesystem::path& rel);

/// Writes a benchmark's JSON text (--json PATH): "-" is stdout, anything else a file written atomically.
void write_json_output(const std::string& path, const std::string& json_text);

/// Runs a shell command line; returns its stdout and stderr together, and its exit status in *status.
std::string run_capture(const std::string& command_line, int* status);

}  // namespace songlines::bench

#define SONGLINES_BENCH_CONCAT_INNER(a, b) a##b
#define SONGLINES_BENCH_CONCAT(a, b) SONGLINES_BENCH_CONCAT_INNER(a, b)
#define SONGLINES_REGISTER_BENCHMARK(...) \
  static const bool SONGLINES_BENCH_CONCAT(songlines_benchmark_registered_, __COUNTER__) = ::songlines::bench::register_benchmark(__VA_ARGS__)
