// RAII owners of CUDA resources used by the feature engine: device and pinned host buffers, streams, events,
// cuFFT plans and the cuBLAS handle. Included only by .cu files of cuda/.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include <cstddef>
#include <string>
#include <utility>

#include "cuda/cuda_check.h"

namespace songlines::cuda {

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

}  // namespace songlines::cuda

#define CUBLAS_CHECK_THROW(expr)                                                                                \
  do {                                                                                                          \
    cublasStatus_t _songlines_st = (expr);                                                                      \
    if (_songlines_st != CUBLAS_STATUS_SUCCESS)                                                                 \
      ::songlines::cuda::throw_device_error(::songlines::cuda::cublas_status_name(_songlines_st), #expr, __FILE__, \
                                            __LINE__);                                                          \
  } while (0)

namespace songlines::cuda {

/// Device array of T that only grows (ensure), so buffers are reused across batches of similar size.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  /// At least n elements (contents are not preserved when it grows).
  T* ensure(size_t n) {
    if (n > size_) {
      release();
      void* p = nullptr;
      CUDA_CHECK_THROW(cudaMalloc(&p, sizeof(T) * (n > 0 ? n : 1)));
      ptr_ = static_cast<T*>(p);
      size_ = n;
    }
    return ptr_;
  }
  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

/// Page-locked host array of T (async copies need it to overlap with kernels).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* ensure(size_t n) {
    if (n > size_) {
      release();
      void* p = nullptr;
      CUDA_CHECK_THROW(cudaMallocHost(&p, sizeof(T) * (n > 0 ? n : 1)));
      ptr_ = static_cast<T*>(p);
      size_ = n;
    }
    return ptr_;
  }
  T* get() const { return ptr_; }

 private:
  void release() {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

class Stream {
 public:
  Stream() { CUDA_CHECK_THROW(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void synchronize() const { CUDA_CHECK_THROW(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() { CUDA_CHECK_THROW(cudaEventCreate(&e_)); }
  ~Event() {
    if (e_) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s) { CUDA_CHECK_THROW(cudaEventRecord(e_, s)); }

 private:
  cudaEvent_t e_ = nullptr;
};

/// Batched 1-D real-to-complex plan: `batch` transforms of size n, rows contiguous ([batch, n] -> [batch, n/2+1]);
/// type CUFFT_R2C (float32, execute(float*, ...)) or CUFFT_D2Z (float64, execute(double*, ...)).
class R2CPlan {
 public:
  R2CPlan(int n, int batch, cudaStream_t stream, cufftType type = CUFFT_R2C) : n_(n), batch_(batch) {
    int dims[1] = {n};
    CUFFT_CHECK_THROW(cufftPlanMany(&plan_, 1, dims, nullptr, 1, n, nullptr, 1, n / 2 + 1, type, batch));
    CUFFT_CHECK_THROW(cufftSetStream(plan_, stream));
  }
  ~R2CPlan() {
    if (plan_) cufftDestroy(plan_);
  }
  R2CPlan(const R2CPlan&) = delete;
  R2CPlan& operator=(const R2CPlan&) = delete;
  void execute(float* in, cufftComplex* out) const { CUFFT_CHECK_THROW(cufftExecR2C(plan_, in, out)); }
  void execute(double* in, cufftDoubleComplex* out) const { CUFFT_CHECK_THROW(cufftExecD2Z(plan_, in, out)); }
  int n() const { return n_; }
  int batch() const { return batch_; }

 private:
  cufftHandle plan_ = 0;
  int n_ = 0, batch_ = 0;
};

class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    CUBLAS_CHECK_THROW(cublasCreate(&h_));
    CUBLAS_CHECK_THROW(cublasSetStream(h_, stream));
    // Plain FP32 arithmetic: no TF32 tensor-core rounding, which would cost ~1e-3 relative error.
    CUBLAS_CHECK_THROW(cublasSetMathMode(h_, CUBLAS_PEDANTIC_MATH));
  }
  ~CublasHandle() {
    if (h_) cublasDestroy(h_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

}  // namespace songlines::cuda
