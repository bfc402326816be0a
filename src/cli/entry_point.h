// The `songlines` entry point is two binaries built from the same command sources (why, and what it saves:
// docs/benchmarks.md, "Start-up and the whole extract path"):
//   build/songlines                            the entry point: the commands that need neither libtorch nor CUDA
//                                              (help, --version, features, extract, collect, report, ...)
//   build/libexec/songlines/songlines-full     every command, with libtorch and the CUDA engine linked
// The light binary hands the whole process over to the full one (execv with the same arguments, so the exit
// status, output and behaviour are the full binary's) for a command it does not hold, for `help` of such a
// command, and when a command of its own is about to use a GPU. Starting libtorch and the CUDA libraries costs
// about 1 s and 390 MB of a process that needs neither (issue 16, bar I1).
#pragma once

#include <cxxopts.hpp>

#include <span>
#include <string>
#include <string_view>

namespace songlines::cli {

/// One line of `songlines help`: a command and its summary.
struct CommandSummary {
  std::string_view name;
  std::string_view summary;
};

/// Every command of the full binary with its summary, sorted by name. In the light binary this table is
/// generated at build time by the full binary itself (`songlines-full __write-command-table FILE`), so the
/// overview of the commands it hands over comes from the same registration; in the full binary it is empty.
std::span<const CommandSummary> full_binary_commands();

/// Light binary of a CUDA build: true when the parsed command asks for `--device cuda|gpu|auto` and the CUDA
/// driver reports a GPU, so that main hands it over before the command does anything (prints, writes files).
/// Light binary of a CPU-only build, and the full binary: false.
bool wants_gpu_of_full_binary(const cxxopts::ParseResult& args);

/// Thrown inside the light binary when the command must run in the full binary after all (a GPU is present for
/// `--device auto|cuda` reached another way than the command line). Not a std::exception, so no handler for failed work catches it on the way to main,
/// which then hands the process over. The stack unwinds first: nothing written before stays half-done.
struct HandOverToFullBinary {
  std::string reason;
};

/// Replaces this process by the full binary with the same arguments. Throws Error when it is missing or cannot
/// be started. Sets $SONGLINES_ENTRY_POINT to this binary (core/entry_point_path.h). Full binary: throws.
[[noreturn]] void run_in_full_binary(int argc, char** argv);

/// Modes of a binary that only the build uses (full binary: `__write-command-table FILE`). Returns true (and
/// *status) when argv asked for one.
bool run_internal_mode(int argc, char** argv, int* status);

}  // namespace songlines::cli
