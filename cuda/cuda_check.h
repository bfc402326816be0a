// Error checking for CUDA runtime and cuFFT calls: throw songlines::DeviceError with the expression, file and
// line. Included only by .cu files (public headers never include CUDA headers).
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <string>

#include "core/error.h"

namespace songlines::cuda {

const char* cufft_error_name(cufftResult r);

[[noreturn]] inline void throw_device_error(const std::string& what, const char* expr, const char* file, int line) {
  throw DeviceError(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " + what);
}

}  // namespace songlines::cuda

#define CUDA_CHECK_THROW(expr)                                                                           \
  do {                                                                                                   \
    cudaError_t _songlines_err = (expr);                                                                 \
    if (_songlines_err != cudaSuccess)                                                                   \
      ::songlines::cuda::throw_device_error(cudaGetErrorString(_songlines_err), #expr, __FILE__, __LINE__); \
  } while (0)

#define CUFFT_CHECK_THROW(expr)                                                                             \
  do {                                                                                                      \
    cufftResult _songlines_res = (expr);                                                                    \
    if (_songlines_res != CUFFT_SUCCESS)                                                                    \
      ::songlines::cuda::throw_device_error(::songlines::cuda::cufft_error_name(_songlines_res), #expr, __FILE__, \
                                            __LINE__);                                                      \
  } while (0)

/// After every kernel launch: launch-configuration errors surface here, with the kernel's name (a string
/// literal): "file:line: launch of frame_signal failed: invalid configuration argument".
#define CUDA_CHECK_LAUNCH(name)                                                                          \
  do {                                                                                                   \
    cudaError_t _songlines_err = cudaGetLastError();                                                     \
    if (_songlines_err != cudaSuccess)                                                                   \
      ::songlines::cuda::throw_device_error(cudaGetErrorString(_songlines_err), "launch of " name, __FILE__, __LINE__); \
  } while (0)
