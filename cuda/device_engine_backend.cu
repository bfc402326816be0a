// The device engine's CUDA backend: mel_chain.inl (the same source the host backend runs in CI) compiled by
// nvcc on Thrust's CUDA system, with cuFFT for the FFT and cuBLAS (FP32, no TF32) for the GEMMs. Everything runs
// on the legacy default stream, the one thrust::device uses; the staging's copies (CudaCopyQueue) on two copy streams.
// Not yet run on a GPU (docs/cuda.md).
#define SONGLINES_DEVICE_BACKEND_NS cuda_backend
#include "features/device_engine/mel_chain.inl"

#include <climits>
#include <map>
#include <utility>
#include <string>

#include <thrust/system_error.h>

#include "cuda/cuda_resources.h"

namespace songlines::features::device_engine {
namespace {

/// Frames per cuFFT execution: bounds the plan's work area; a batch is transformed in chunks of this size.
constexpr int64_t kMaxFftFrames = int64_t{1} << 15;

/// cuFFT R2C (float32: the STFT) and D2Z (float64: the STFT with spectral_contrast, the CQT octaves) over chunks
/// of kMaxFftFrames frames, one plan per (precision, chunk size).
class CufftRealFft final : public BatchedRealFft {
 public:
  explicit CufftRealFft(int64_t n_fft) : n_fft_(n_fft) {}
  void forward(const float* frames, float* spectra, int64_t n_frames) override {
    run<float, cufftComplex>(frames, spectra, n_frames, CUFFT_R2C, plans32_);
  }
  void forward(const double* frames, double* spectra, int64_t n_frames) override {
    run<double, cufftDoubleComplex>(frames, spectra, n_frames, CUFFT_D2Z, plans64_);
  }

 private:
  using Plans = std::map<int64_t, std::unique_ptr<cuda::R2CPlan>>;  // by batch size: full chunks and the last one
  template <class Real, class Complex>
  void run(const Real* frames, Real* spectra, int64_t n_frames, cufftType type, Plans& plans) {
    const int64_t n_bins = n_fft_ / 2 + 1;
    for (int64_t f0 = 0; f0 < n_frames; f0 += kMaxFftFrames) {
      const int64_t n = std::min(kMaxFftFrames, n_frames - f0);
      auto it = plans.find(n);
      if (it == plans.end())
        it = plans.emplace(n, std::make_unique<cuda::R2CPlan>(static_cast<int>(n_fft_), static_cast<int>(n), nullptr, type))
                 .first;
      it->second->execute(const_cast<Real*>(frames + f0 * n_fft_), reinterpret_cast<Complex*>(spectra + f0 * 2 * n_bins));
    }
  }

  int64_t n_fft_;
  Plans plans32_, plans64_;
};

class CublasGemm final : public RowMajorGemm {
 public:
  CublasGemm() : handle_(nullptr) {}
  void abt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) override {
    if (m == 0) return;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
      throw Error("CUDA backend: GEMM of " + std::to_string(m) + " x " + std::to_string(n) + " x " +
                  std::to_string(k) + " does not fit cuBLAS's int; lower max_batch_frames");
    // Column-major view: C^T [n, m] = B [n, k] . A^T [k, m], i.e. op(B_cm [k, n]) = T, op(A_cm [k, m]) = N.
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK_THROW(cublasSgemm(handle_.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                   static_cast<int>(k), &one, b, static_cast<int>(k), a, static_cast<int>(k), &zero, c,
                                   static_cast<int>(n)));
  }

 private:
  cuda::CublasHandle handle_;
};

/// The staging's CopyQueue on CUDA (staging.h): pinned host buffers, device buffers from cudaMalloc, and two
/// non-blocking streams of copies (device to host, host to device) ordered against the compute work (the legacy
/// default stream, which Thrust, cuFFT and cuBLAS use here) by events: a copy waits for the compute queued before
/// it, the compute queued after an upload waits for the upload, and a ticket is an event on each copy stream.
/// Not yet run on a GPU (docs/cuda.md "Unverified").
class CudaCopyQueue final : public CopyQueue {
 public:
  CudaCopyQueue() {
    CUDA_CHECK_THROW(cudaStreamCreateWithFlags(&d2h_, cudaStreamNonBlocking));
    CUDA_CHECK_THROW(cudaStreamCreateWithFlags(&h2d_, cudaStreamNonBlocking));
  }
  ~CudaCopyQueue() override {
    wait_all();
    for (auto& [ticket, events] : tickets_) {
      cudaEventDestroy(events.first);
      cudaEventDestroy(events.second);
    }
    cudaStreamDestroy(d2h_);
    cudaStreamDestroy(h2d_);
  }
  CudaCopyQueue(const CudaCopyQueue&) = delete;
  CudaCopyQueue& operator=(const CudaCopyQueue&) = delete;

  void* alloc_host(size_t bytes) override {
    void* p = nullptr;
    CUDA_CHECK_THROW(cudaHostAlloc(&p, bytes > 0 ? bytes : 1, cudaHostAllocDefault));
    return p;
  }
  void free_host(void* p) noexcept override {
    if (p) cudaFreeHost(p);
  }
  void* alloc_device(size_t bytes) override {
    void* p = nullptr;
    CUDA_CHECK_THROW(cudaMalloc(&p, bytes > 0 ? bytes : 1));
    return p;
  }
  void free_device(void* p) noexcept override {
    if (p) cudaFree(p);
  }
  void device_to_device(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) CUDA_CHECK_THROW(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cudaStreamLegacy));
  }
  void device_to_host(void* host, const void* device, size_t bytes) override {
    order(cudaStreamLegacy, d2h_);  // after the compute queued so far
    if (bytes > 0) CUDA_CHECK_THROW(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, d2h_));
  }
  void host_to_device(void* device, const void* host, size_t bytes) override {
    order(cudaStreamLegacy, h2d_);  // the device buffer may still be read by the compute queued so far
    if (bytes > 0) CUDA_CHECK_THROW(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, h2d_));
    order(h2d_, cudaStreamLegacy);  // the compute queued next reads it
  }
  int64_t record() override {
    cudaEvent_t down = nullptr, up = nullptr;
    CUDA_CHECK_THROW(cudaEventCreateWithFlags(&down, cudaEventDisableTiming));
    const cudaError_t created = cudaEventCreateWithFlags(&up, cudaEventDisableTiming);
    if (created != cudaSuccess) cudaEventDestroy(down);
    CUDA_CHECK_THROW(created);
    tickets_.emplace(++last_ticket_, std::make_pair(down, up));
    CUDA_CHECK_THROW(cudaEventRecord(down, d2h_));
    CUDA_CHECK_THROW(cudaEventRecord(up, h2d_));
    return last_ticket_;
  }
  void wait(int64_t ticket) override {
    auto it = tickets_.find(ticket);
    if (it == tickets_.end()) return;  // waited for already
    CUDA_CHECK_THROW(cudaEventSynchronize(it->second.first));
    CUDA_CHECK_THROW(cudaEventSynchronize(it->second.second));
    for (auto done = tickets_.begin(); done != tickets_.end() && done->first <= ticket;) {  // and every earlier one
      cudaEventDestroy(done->second.first);
      cudaEventDestroy(done->second.second);
      done = tickets_.erase(done);
    }
  }
  void wait_all() noexcept override {
    cudaStreamSynchronize(d2h_);
    cudaStreamSynchronize(h2d_);
    cudaStreamSynchronize(cudaStreamLegacy);
  }

 private:
  /// Work queued on `after` from now on waits for the work queued on `before` so far.
  static void order(cudaStream_t before, cudaStream_t after) {
    cudaEvent_t e = nullptr;
    CUDA_CHECK_THROW(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    const cudaError_t recorded = cudaEventRecord(e, before);
    const cudaError_t waited = recorded == cudaSuccess ? cudaStreamWaitEvent(after, e, 0) : recorded;
    cudaEventDestroy(e);  // released once the device has passed it
    CUDA_CHECK_THROW(waited);
  }

  cudaStream_t d2h_ = nullptr, h2d_ = nullptr;
  std::map<int64_t, std::pair<cudaEvent_t, cudaEvent_t>> tickets_;  // (device-to-host, host-to-device) events
  int64_t last_ticket_ = 0;
};

/// Turns Thrust's CUDA errors (thrust::system_error) into DeviceError, and checks the last error after each step,
/// so a failed launch surfaces with the step's name.
class CheckedChain final : public Chain {
 public:
  explicit CheckedChain(std::unique_ptr<Chain> inner) : inner_(std::move(inner)) {}
  PieceMaxima run_batch(const BatchRequest& request) override {
    try {
      PieceMaxima r = inner_->run_batch(request);
      CUDA_CHECK_THROW(cudaGetLastError());
      return r;
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) run_batch: ") + e.what());
    }
  }
  void finish_track(float* mel_db, float* mfcc, int64_t rows, float track_max_db, int64_t max_rows,
                    bool poison) override {
    try {
      inner_->finish_track(mel_db, mfcc, rows, track_max_db, max_rows, poison);
      CUDA_CHECK_THROW(cudaGetLastError());
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) finish_track: ") + e.what());
    }
  }
  void finish_contrast(const double* peak_db, const double* valley_db, float* contrast, int64_t rows,
                       double peak_max, double valley_max, int64_t max_rows, bool poison) override {
    try {
      inner_->finish_contrast(peak_db, valley_db, contrast, rows, peak_max, valley_max, max_rows, poison);
      CUDA_CHECK_THROW(cudaGetLastError());
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) finish_contrast: ") + e.what());
    }
  }
  void run_cqt_batch(const CqtBatchRequest& request) override {
    try {
      inner_->run_cqt_batch(request);
      CUDA_CHECK_THROW(cudaGetLastError());
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) run_cqt_batch: ") + e.what());
    }
  }
  std::vector<double> estimate_tunings(const std::vector<const TuningCandidates*>& tracks,
                                       int64_t max_elements) override {
    try {
      std::vector<double> r = inner_->estimate_tunings(tracks, max_elements);
      CUDA_CHECK_THROW(cudaGetLastError());
      return r;
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) estimate_tunings: ") + e.what());
    }
  }
  CopyBandwidth measure_copy_bandwidth(int64_t bytes) override {
    try {
      CopyBandwidth r = inner_->measure_copy_bandwidth(bytes);
      CUDA_CHECK_THROW(cudaGetLastError());
      return r;
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) measure_copy_bandwidth: ") + e.what());
    }
  }
  void drain() override {
    try {
      inner_->drain();
      CUDA_CHECK_THROW(cudaGetLastError());
    } catch (const thrust::system_error& e) {
      throw DeviceError(std::string("device engine (CUDA) drain: ") + e.what());
    }
  }
  void discard() noexcept override { inner_->discard(); }

 private:
  std::unique_ptr<Chain> inner_;
};

}  // namespace

bool cuda_chain_built() { return true; }

std::unique_ptr<Chain> make_cuda_chain(const ChainConstants& constants, int ordinal) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw DeviceError("device engine: no CUDA device is available");
  }
  if (ordinal < 0 || ordinal >= count)
    throw DeviceError("device engine: CUDA device " + std::to_string(ordinal) + " does not exist (" +
                      std::to_string(count) + " present)");
  CUDA_CHECK_THROW(cudaSetDevice(ordinal));
  try {
    return std::make_unique<CheckedChain>(std::make_unique<cuda_backend::MelChain>(
        constants, [](int64_t n_fft) -> std::unique_ptr<BatchedRealFft> { return std::make_unique<CufftRealFft>(n_fft); },
        std::make_unique<CublasGemm>(), std::make_unique<CudaCopyQueue>()));
  } catch (const thrust::system_error& e) {
    throw DeviceError(std::string("device engine (CUDA) setup: ") + e.what());
  }
}

}  // namespace songlines::features::device_engine
