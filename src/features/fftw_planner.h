// FFTW's planner (fftw_plan_*, fftw_destroy_plan) is not thread-safe; fftw_execute_* on new arrays is.
// Every FFTW plan in songlines is created and destroyed while holding this one process-wide mutex.
#pragma once

#include <fftw3.h>

#include <mutex>

namespace songlines::features {

/// The process-wide lock around FFTW planning and plan destruction.
std::mutex& fftw_planner_mutex();

/// Planner flags of every FFTW plan on the feature path: FFTW_ESTIMATE, so the algorithm (and with it the last
/// bits of every feature) does not depend on timings. FFTW_MEASURE times candidate algorithms at plan time and
/// can pick another one when the machine is busy: the same file then gave features differing in the last
/// float bits between two processes (an extract resumed after a kill did not equal a clean run).
inline constexpr unsigned kFftwPlannerFlags = FFTW_ESTIMATE;

}  // namespace songlines::features
