// Which `songlines` the user ran. The light entry point hands some commands to the full binary under
// libexec/ (cli/entry_point.h) and tells it where the entry point is, so that files naming the binary for later
// runs (an sbatch script of a sweep) name the one the user knows.
#pragma once

#include <filesystem>

namespace songlines {

/// Environment variable the light binary sets before handing a command to the full binary.
inline constexpr const char* kEntryPointVariable = "SONGLINES_ENTRY_POINT";

/// $SONGLINES_ENTRY_POINT when set and not empty, else this process's executable (/proc/self/exe).
std::filesystem::path entry_point_path();

}  // namespace songlines
