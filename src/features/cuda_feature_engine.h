// The CUDA feature engine: every frame-level feature of many tracks at once, batched over ragged track lengths
// (cuda/*.cu). The CPU engine (FeatureExtractor) is the reference it is tested against; outputs have the same
// names, shapes and layout ([frames, dim] row-major float32) so the shards are identical in format.
// This header includes no CUDA header: the implementation hides behind a pointer, and a CPU-only build links
// cuda_feature_engine_cuda_stub.cpp, whose functions throw songlines::Error("built without CUDA").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "features/feature_extractor.h"  // TrackFeatures: the CPU and CUDA engines return the same type
#include "features/feature_matrix.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Resources of the CUDA engine. Memory on the device is bounded by max_batch_frames, not by collection size.
struct CudaEngineOptions {
  int device = 0;                        ///< CUDA device ordinal
  int64_t max_batch_frames = 1 << 17;    ///< STFT frames (all tracks together) per device batch; ~30 KiB of
                                         ///< device memory per frame at n_fft 2048 (spectra, features, scratch)
  int64_t max_fft_frames = 1 << 15;      ///< frames per cuFFT execution (bounds the plan's work area)
  bool poison_outputs = false;           ///< fill every device output with NaN before each batch (tests: an
                                         ///< element a kernel fails to write then fails the comparison)
  bool operator==(const CudaEngineOptions&) const = default;
};

/// Per-feature device time of the last compute_batch call (milliseconds, CUDA events), for `bench cuda-features`.
struct CudaStageTimes {
  std::map<std::string, double> ms;  ///< stage name ("stft", "mel", "mfcc", ...) -> milliseconds
};

class CudaFeatureEngine {
 public:
  /// Validates the options, selects the device, builds filterbanks that do not depend on the signal.
  /// Throws DeviceError when no device is usable, UsageError for options the engine does not support.
  explicit CudaFeatureEngine(const FeatureOptions& options, CudaEngineOptions engine = {});
  ~CudaFeatureEngine();
  CudaFeatureEngine(const CudaFeatureEngine&) = delete;
  CudaFeatureEngine& operator=(const CudaFeatureEngine&) = delete;
  CudaFeatureEngine(CudaFeatureEngine&&) noexcept;
  CudaFeatureEngine& operator=(CudaFeatureEngine&&) noexcept;

  /// Mono float32 tracks at options.sample_rate -> one TrackFeatures each, in order (CQT-based features have
  /// min over octaves of 1 + len_i // hop_i rows, librosa __trim_stack, at most n_frames). Tracks are packed into
  /// device batches of at most max_batch_frames frames (a longer track gets a batch of its own). Throws
  /// InputError for an empty or non-finite track (path "track <i>").
  std::vector<TrackFeatures> compute_batch(const std::vector<std::span<const float>>& tracks);

  /// Device timings of the last compute_batch, summed over its device batches.
  const CudaStageTimes& last_times() const;
  const FeatureOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One-shot convenience for the `features`/`extract` front ends (--device cuda): builds an engine (cached per
/// thread while the options stay equal) and computes the tracks. CPU-only builds: throws Error("built without CUDA").
std::vector<TrackFeatures> compute_features_cuda(const FeatureOptions& options,
                                                     const std::vector<std::span<const float>>& tracks,
                                                     const CudaEngineOptions& engine = {});

/// Measured device-to-device copy bandwidth in GB/s (bytes read + bytes written per second, median of `repeats`
/// cudaMemcpy of `bytes`): the memory floor `bench cuda-features` compares kernels against.
/// CPU-only builds: throws Error("built without CUDA").
double measure_device_copy_bandwidth_gbs(int device = 0, size_t bytes = size_t(1) << 30, int repeats = 20);

}  // namespace songlines::features
