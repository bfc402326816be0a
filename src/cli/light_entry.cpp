// The light `songlines` binary's side of the entry point (cli/entry_point.h): where the full binary lives and
// how the process is handed over to it. Its command table comes from the build (full_binary_commands.cpp,
// written by the full binary).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>  // setenv
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include "cli/entry_point.h"
#include "core/entry_point_path.h"
#include "core/error.h"
#include "features/device.h"

namespace songlines::cli {

namespace {
namespace fs = std::filesystem;

/// The full binary: beside this one in a build tree (build/libexec/...), or under the prefix of an install
/// (bin/songlines, libexec/songlines/songlines-full).
fs::path find_full_binary(const fs::path& self) {
  const fs::path relative = SONGLINES_FULL_BINARY_RELATIVE;
  const fs::path candidates[] = {self.parent_path() / relative, self.parent_path().parent_path() / relative};
  for (const auto& c : candidates)
    if (::access(c.c_str(), X_OK) == 0) return c;
  throw Error("this command runs in the full songlines binary (libtorch, CUDA), which is missing: looked for " +
              candidates[0].string() + " and " + candidates[1].string() +
              " (build the `songlines` target, or install both binaries)");
}
}  // namespace

void run_in_full_binary(int argc, char** argv) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this binary's path (/proc/self/exe): " + ec.message());
  const fs::path full = find_full_binary(self);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  // The entry point the user ran, for what the full binary writes down about itself (an sbatch script).
  ::setenv(kEntryPointVariable, self.c_str(), 1);
  (void)argc;  // argv is null-terminated (C17 5.1.2.2.1), execv reads it to the end
  ::execv(full.c_str(), argv);
  throw Error("cannot start " + full.string() + ": " + std::strerror(errno));
}

bool wants_gpu_of_full_binary(const cxxopts::ParseResult& args) {
  std::string device;
  try {
    device = args["device"].as<std::string>();
  } catch (const cxxopts::exceptions::exception&) {
    return false;  // a command without --device
  }
  if (device != "cuda" && device != "gpu" && device != "auto") return false;  // bad values: the command says so
  try {
    // CUDA build: light_cuda_handover.cpp asks the driver and throws when it reports a GPU; CPU-only: false.
    return features::cuda_engine_built() && features::cuda_device_count() > 0;
  } catch (const HandOverToFullBinary&) {
    return true;
  }
}

bool run_internal_mode(int, char**, int*) { return false; }

}  // namespace songlines::cli
