// Benchmarks of `songlines bench NAME`: each lives in src/bench/bench_<name>.cpp and registers itself here, so
// the `bench` command (cmd_bench.cpp) lists and dispatches them. Benchmarks warm up, synchronise, repeat and
// report medians (CONVENTIONS.md "Build and benchmarks").
#pragma once

#include <cxxopts.hpp>

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

}  // namespace songlines::bench

#define SONGLINES_BENCH_CONCAT_INNER(a, b) a##b
#define SONGLINES_BENCH_CONCAT(a, b) SONGLINES_BENCH_CONCAT_INNER(a, b)
#define SONGLINES_REGISTER_BENCHMARK(...) \
  static const bool SONGLINES_BENCH_CONCAT(songlines_benchmark_registered_, __LINE__) = ::songlines::bench::register_benchmark(__VA_ARGS__)
