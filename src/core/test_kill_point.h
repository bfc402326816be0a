// Fault injection for the resume tests: SONGLINES_TEST_KILL_AT=NAME[:N] makes the process kill itself with
// SIGKILL the N-th time (default the first) it reaches the kill point NAME, exactly as `kill -9` would at that
// moment. Unset (always, outside the tests) it costs one getenv per call site and does nothing.
#pragma once

namespace songlines {

/// Whether this call is the one SONGLINES_TEST_KILL_AT names (counts the calls of each name).
bool test_kill_point_reached(const char* name);

/// SIGKILLs the process when test_kill_point_reached(name).
void test_kill_point(const char* name);

/// SIGKILLs the process now (after a deliberate partial write).
[[noreturn]] void test_kill_now();

}  // namespace songlines
