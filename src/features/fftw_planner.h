// FFTW's planner (fftw_plan_*, fftw_destroy_plan) is not thread-safe; fftw_execute_* on new arrays is.
// Every FFTW plan in songlines is created and destroyed while holding this one process-wide mutex.
#pragma once

#include <mutex>

namespace songlines::features {

/// The process-wide lock around FFTW planning and plan destruction.
std::mutex& fftw_planner_mutex();

}  // namespace songlines::features
