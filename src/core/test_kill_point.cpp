#include "core/test_kill_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace songlines {

bool test_kill_point_reached(const char* name) {
  const char* spec = std::getenv("SONGLINES_TEST_KILL_AT");
  if (spec == nullptr || *spec == '\0') return false;
  const std::string s(spec);
  const auto colon = s.find(':');
  if (s.substr(0, colon) != name) return false;
  const long nth = colon == std::string::npos ? 1 : std::strtol(s.c_str() + colon + 1, nullptr, 10);
  static std::mutex mutex;
  static std::map<std::string, long> calls;
  std::lock_guard<std::mutex> lock(mutex);
  return ++calls[name] == nth;
}

void test_kill_point(const char* name) {
  if (test_kill_point_reached(name)) test_kill_now();
}

void test_kill_now() {
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

}  // namespace songlines
