// The device feature engine (issue 14): one device source with two backends (docs/cuda.md, "Two backends").
// The computation is written once (src/features/device_engine/mel_chain.inl, CCCL/Thrust over __host__
// __device__ functors) and runs on the host (Thrust OpenMP + FFTW + cblas; always built, runs in CI) or
// on a GPU (Thrust CUDA + cuFFT + cuBLAS; built with nvcc). It returns the reference's TrackFeatures
// (features/feature_extractor.h): same names, shapes and [frames, dim] float32 layout.
//
// It computes the STFT family up to MFCC: stft_mag, melspectrogram, mel_db, mfcc, with every option of their
// structs (stft, mel, db, mfcc), and chroma_stft at a fixed tuning (options.chroma_stft.tuning) or, by default,
// at the tuning librosa's estimate_tuning finds per track (piptrack peaks per frame on the device, the per-track
// median and histogram reduced exactly across chunks and batches, then a second pass for the chroma);
// spectral_contrast with every option of its struct (bands from the reference's spectral_contrast_bands, the
// peak and valley dB clipped against their per-track maxima across chunks); and the CQT family (cqt_mag,
// chroma_cqt, tonnetz of chroma_cqt or of chroma_stft) in a pass of its own at the CQT's fixed or estimated
// tuning, on the reference's octave plan, with each track's octave signals decimated on the host by the
// reference's libsoxr decimator (on worker threads, one track per thread), after librosa's early downsampling
// when the options need it (the reference's libsoxr resampler, on the host too). That is every feature of the
// reference, with every option.
// Tracks are packed into ragged batches of at most max_batch_frames frames; a longer track is cut into chunks
// (power_to_db's per-track max is carried across them), so device memory does not grow with track length.
// No CUDA header here (pimpl).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "features/device_engine/copy_bandwidth.h"
#include "features/feature_extractor.h"
#include "features/feature_options.h"

namespace songlines::features {

/// Where the device engine's source runs.
enum class DeviceBackend {
  kHost,  ///< Thrust's OpenMP system on the CPU, FFTW (float32 and float64), cblas
  kCuda,  ///< Thrust's CUDA system, cuFFT, cuBLAS
};
const char* device_backend_name(DeviceBackend b);
/// kHost: always. kCuda: the binary holds the CUDA backend and a GPU is present at run time.
bool device_backend_available(DeviceBackend b);

/// Resources of the device engine.
struct DeviceEngineOptions {
  DeviceBackend backend = DeviceBackend::kHost;
  int cuda_device = 0;           ///< CUDA device ordinal (kCuda only)
  /// STFT frames (all tracks of a batch together) per batch; 0: 8192 on the host (~40 KiB per frame: frames,
  /// spectra, power, magnitude, mel), 131072 on CUDA. A track longer than this is processed in chunks. The CQT
  /// pass uses the same budget in CQT frames (~20 KiB each: one octave's float64 frames and spectra at a time).
  int64_t max_batch_frames = 0;
  /// Fill every output (device buffers and the returned matrices) with NaN before each batch, so that an element
  /// the engine fails to write shows up as NaN (tests).
  bool poison_outputs = false;
  /// kHost, tests: the result staging's device-to-host copies are held back until waited for, as an asynchronous
  /// copy engine may (device_engine/staging.h DeferredCopyQueue), so that a missing wait shows up in CI.
  bool deferred_host_copies = false;
  bool operator==(const DeviceEngineOptions&) const = default;
};

class DeviceFeatureEngine {
 public:
  /// The features this engine computes so far.
  static const std::vector<std::string>& supported_features();
  /// The first requested feature (options.features; empty means all) the engine does not compute, if any.
  static std::optional<std::string> first_unsupported_feature(const FeatureOptions& options);
  /// The first option the engine cannot honour for the requested features, as its path in FeatureOptions, if
  /// any (none now: the CQT's early downsampling, the last one refused, is computed).
  static std::optional<std::string> first_unsupported_option(const FeatureOptions& options);
  /// The fewest samples a track may have with these options: 1, or the CQT's early downsampling factor (librosa
  /// and the reference refuse a shorter signal; the largest factor over the tunings when it is estimated).
  static int64_t min_track_samples(const FeatureOptions& options);
  /// supported_features() joined with commas.
  static std::string supported_feature_list();

  /// Validates the options (ConfigError), refuses unsupported features (UsageError), builds the filterbanks from
  /// src/features and sets up the backend (Error / DeviceError when it is not available).
  DeviceFeatureEngine(const FeatureOptions& options, DeviceEngineOptions engine = {});
  ~DeviceFeatureEngine();
  DeviceFeatureEngine(const DeviceFeatureEngine&) = delete;
  DeviceFeatureEngine& operator=(const DeviceFeatureEngine&) = delete;

  const FeatureOptions& options() const;
  const DeviceEngineOptions& engine_options() const;

  /// Throws InputError(path, reason) for a track no engine configuration accepts: empty, or a non-finite sample
  /// (named by index).
  static void check_track(std::span<const float> track, const std::string& path);
  /// check_track, and InputError for a track shorter than min_track_samples(options()): every track this engine
  /// refuses. compute_batch checks every track with it first; a batcher calls it to keep one bad track from failing
  /// its batch.
  void check(std::span<const float> track, const std::string& path) const;

  /// Mono float32 tracks at options.sample_rate -> one TrackFeatures each, in order (tuning_chroma_stft and
  /// tuning_cqt the fixed or estimated tunings when chroma_stft / the CQT is computed, else NaN). Not thread-safe:
  /// one engine per thread.
  /// Throws InputError naming "track <i>" for a track check() refuses, before any computation.
  std::vector<TrackFeatures> compute_batch(const std::vector<std::span<const float>>& tracks);
  /// Device batches run by the last compute_batch.
  int64_t last_batch_count() const;
  /// The backend's copy bandwidths (copy_bandwidth.h), best of a few copies of `bytes` bytes: the denominators of
  /// the memory floors `songlines bench device-features` prints.
  CopyBandwidth measure_copy_bandwidth(int64_t bytes = int64_t{256} << 20);

 private:
  /// The CQT family's pass (after the tunings are known): fills cqt_mag, chroma_cqt and tonnetz of `out`.
  void run_cqt_pass(const std::vector<std::span<const float>>& tracks, std::vector<TrackFeatures>& out);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The device engine for a command (`features`, `extract`), built before any file is read: an unsupported
/// feature or option, a bad option value or an unusable backend (no CUDA device, a build without the CUDA
/// backend) is a UsageError (exit status 2) naming --device and the feature, option or reason.
std::unique_ptr<DeviceFeatureEngine> open_device_engine(const FeatureOptions& options, DeviceEngineOptions engine);

}  // namespace songlines::features
