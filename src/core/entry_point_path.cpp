#include "core/entry_point_path.h"

#include <cstdlib>

namespace songlines {

std::filesystem::path entry_point_path() {
  if (const char* set = std::getenv(kEntryPointVariable); set != nullptr && *set != '\0') return set;
  return std::filesystem::read_symlink("/proc/self/exe");
}

}  // namespace songlines
