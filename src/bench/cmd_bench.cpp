// songlines bench NAME [--tracks N] [--seconds S] [--repeats R] [--batch-frames F] [--threads T] [--json FILE]:
// runs one registered benchmark (each reads the options that apply to it).
#include <iostream>

#include "bench/benchmark.h"
#include "cli/command.h"
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
      "json", "also write the results as JSON to this file (- for stdout)", cxxopts::value<std::string>());
  o.custom_help("NAME [--tracks N] [--seconds S] [--repeats R] [--batch-frames F] [--device-index I] "
                "[--threads T] [--json FILE]");
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
                                    "songlines bench generate --json generate.json"}});
