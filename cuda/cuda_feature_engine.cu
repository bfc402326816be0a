// The CUDA feature engine (src/features/cuda_feature_engine.h): packs many tracks into ragged device batches
// and runs the kernels of feature_kernels.cu, cuFFT and cuBLAS on one stream.
//
// Per device batch (tracks packed until max_batch_frames):
//   PCM (pinned, async H2D) -> frame+Hann -> cuFFT R2C (chunks of max_fft_frames) -> |X|, |X|^2   [F, 1+n_fft/2]
//   power -> mel (SGEMM)  -> power_to_db (per-track max, clip) -> MFCC (SGEMM with the DCT basis)
//   power -> piptrack -> segmented sort (cub) -> median -> histogram -> tuning (host) -> chroma filterbank -> chroma
//   |X|   -> spectral contrast (per-band shared-memory sort, per-track max of peak and valley dB)
//   |X|   -> piptrack for the CQT tuning; CPU soxr octave decimation (started at batch begin, overlapping all
//            the GPU work above) -> per octave: frame (rect) -> R2C 1024 -> basis projection -> |CQT| [F, 252]
//   |CQT| -> chroma_cqt -> tonnetz
// The host waits for the device twice per batch: for the tuning histograms (which choose the filterbanks) and
// for the final device-to-host copies.
#include <cub/device/device_segmented_sort.cuh>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <map>
#include <set>
#include <vector>
#include <string>

#include "audio/resample.h"
#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_resources.h"
#include "cuda/engine_filterbanks.h"
#include "cuda/feature_kernels.h"
#include "features/cuda_feature_engine.h"
#include "features/device.h"

namespace songlines::cuda {

const char* cublas_status_name(cublasStatus_t s) {
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

namespace songlines::features {

using namespace songlines::cuda;

namespace {

constexpr double kPiptrackFmin = 150.0;       // core/pitch.py: estimate_tuning -> piptrack(fmin=150, fmax=4000)
constexpr double kPiptrackFmax = 4000.0;
constexpr float kPiptrackThreshold = 0.1f;
constexpr int kTuningStftNfft = 2048;         // estimate_tuning(y=...) for the CQT uses stft(n_fft=2048, hop=512)
constexpr int kTuningStftHop = 512;

bool wants(const std::set<std::string>& s, const char* name) { return s.count(name) > 0; }

// The features this engine computes (feature_options.h all_feature_names(); listed here so that songlines_cuda
// needs no symbol of songlines_features, which links it).
const std::vector<std::string>& engine_feature_names() {
  static const std::vector<std::string> names = {"stft_mag", "melspectrogram", "mel_db", "mfcc", "chroma_stft",
                                                 "spectral_contrast", "cqt_mag", "chroma_cqt", "tonnetz"};
  return names;
}

// row-major C[rows, n] = A[rows, k] @ B[n, k]^T, as the column-major product C^T = B @ A^T.
void gemm_rows_by_matrix_t(cublasHandle_t h, const float* A, int64_t rows, int k, const float* B, int n, float* C) {
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK_THROW(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, static_cast<int>(rows), k, &one, B, k, A, k, &zero,
                                 C, n));
}

// Tuning from a histogram: the left edge of the first maximal bin (np.argmax), 0.0 when empty (librosa warns).
double tuning_from_histogram(const int* hist) {
  int best = 0;
  long total = 0;
  for (int b = 0; b < kTuningBins; ++b) {
    total += hist[b];
    if (hist[b] > hist[best]) best = b;
  }
  if (total == 0) return 0.0;
  return static_cast<double>(best) * 0.01 + (-0.5);  // np.linspace(-0.5, 0.5, 101)[best]
}

// Piptrack range: bins with fmin <= f_k < fmax, f_k = linspace(0, sr/2, 1 + n_fft/2)[k].
std::pair<int, int> piptrack_bins(int sample_rate, int n_fft) {
  const int n = 1 + n_fft / 2;
  const double step = (sample_rate / 2.0) / (n - 1);
  const double fmax = std::min(kPiptrackFmax, sample_rate / 2.0);
  int lo = n, hi = 0;
  for (int k = 0; k < n; ++k) {
    double f = k * step;
    if (f >= kPiptrackFmin && f < fmax) {
      lo = std::min(lo, k);
      hi = k + 1;
    }
  }
  if (lo >= hi) throw UsageError("CUDA engine: no STFT bin lies in piptrack's 150-4000 Hz range");
  return {lo, hi};
}

}  // namespace

struct CudaFeatureEngine::Impl {
  FeatureOptions opt;
  CudaEngineOptions eng;
  std::set<std::string> want;  // requested features
  bool need_power = false, need_mag = false, need_chroma_stft = false, need_contrast = false, need_cqt = false;
  int n_bins = 0;              // 1 + n_fft/2
  CqtGeometry cqt_geo;
  int cqt_bins = 0;            // CQT FFT bins (1 + cqt_geo.n_fft/2)
  std::pair<int, int> pip_range{0, 0};

  Stream stream;
  std::unique_ptr<CublasHandle> blas;
  std::map<std::pair<int, int>, std::unique_ptr<R2CPlan>> plans;  // (n, batch) -> plan

  // constant device matrices
  DeviceBuffer<float> d_window, d_mel_fb, d_dct, d_cq_to_chroma;
  DeviceBuffer<int> d_band_begin, d_band_end, d_band_q;
  ContrastBands bands;
  // tuning-dependent filterbanks, cached by tuning value on the host
  std::map<double, std::vector<float>> chroma_fb_cache;
  std::map<double, std::vector<std::complex<float>>> cqt_basis_cache;

  // per-batch device buffers (grow only)
  DeviceBuffer<float> d_pcm, d_frames, d_power, d_mag, d_mel, d_mel_db, d_mfcc, d_chroma, d_cqt, d_chroma_cqt,
      d_tonnetz, d_contrast, d_track_max, d_keys, d_sorted, d_shift, d_threshold, d_chroma_fbs;
  DeviceBuffer<double> d_peak, d_valley, d_track_max64, d_track_max64b;
  DeviceBuffer<cufftComplex> d_spec, d_cqt_bases;
  DeviceBuffer<int64_t> d_sample_offsets, d_frame_offsets, d_seg_offsets, d_cqt_limit;
  DeviceBuffer<int32_t> d_frame_track, d_fb_of_track, d_basis_of_track;
  DeviceBuffer<int> d_peak_count, d_hist;
  DeviceBuffer<unsigned char> d_cub_temp;
  PinnedBuffer<float> h_pcm, h_out;
  PinnedBuffer<int> h_hist;

  CudaStageTimes times;

  Impl(const FeatureOptions& o, CudaEngineOptions e) : opt(o), eng(e) {}

  R2CPlan& plan(int n, int batch) {
    auto& p = plans[{n, batch}];
    if (!p) p = std::make_unique<R2CPlan>(n, batch, stream.get());
    return *p;
  }

  // An output buffer of n elements, NaN-filled when the engine poisons outputs (0xFF bytes are a NaN in both
  // float and double).
  template <typename T>
  T* output(DeviceBuffer<T>& d, int64_t n) {
    T* p = d.ensure(static_cast<size_t>(n));
    if (eng.poison_outputs) CUDA_CHECK_THROW(cudaMemsetAsync(p, 0xFF, sizeof(T) * n, stream.get()));
    return p;
  }

  template <typename T>
  T* upload(DeviceBuffer<T>& d, const std::vector<T>& h) {
    T* p = d.ensure(h.size());
    CUDA_CHECK_THROW(cudaMemcpyAsync(p, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice, stream.get()));
    return p;
  }

  void setup();
  void run_batch(const std::vector<std::span<const float>>& tracks, const std::vector<size_t>& ids,
                 std::vector<TrackFeatures>& out);
  // estimate_tuning per track on S [F, n_bins] (device); returns one tuning per track.
  std::vector<double> estimate_tunings(const float* S, const RaggedBatch& rb, int bins_per_octave);
  // Timed stage: events around fn, summed into times after the batch synchronises.
  struct Pending {
    std::string name;
    Event start, stop;
  };
  std::vector<Pending> pending;
  template <typename Fn>
  void stage(const char* name, Fn&& fn) {
    pending.emplace_back();
    pending.back().name = name;
    pending.back().start.record(stream.get());
    fn();
    pending.back().stop.record(stream.get());
  }
  void collect_times() {
    for (auto& p : pending) {
      float ms = 0.0f;
      CUDA_CHECK_THROW(cudaEventElapsedTime(&ms, p.start.get(), p.stop.get()));
      times.ms[p.name] += ms;
    }
    pending.clear();
  }
};

void CudaFeatureEngine::Impl::setup() {
  const auto& names = opt.features.empty() ? engine_feature_names() : opt.features;
  for (const auto& n : names) {
    const auto& known = engine_feature_names();
    if (std::find(known.begin(), known.end(), n) == known.end())
      throw UsageError("CUDA engine: unknown feature \"" + n + "\"");
    want.insert(n);
  }
  if (opt.stft.n_fft <= 0 || opt.stft.hop_length <= 0 || opt.sample_rate <= 0)
    throw UsageError("CUDA engine: n_fft, hop_length and sample_rate must be positive");
  if (!opt.stft.center) throw UsageError("CUDA engine: stft.center=false is not implemented (librosa default: true)");
  const bool tonnetz_cqt = wants(want, "tonnetz") && opt.tonnetz_chroma == TonnetzChroma::kCqt;
  const bool tonnetz_stft = wants(want, "tonnetz") && opt.tonnetz_chroma == TonnetzChroma::kStft;
  need_chroma_stft = wants(want, "chroma_stft") || tonnetz_stft;
  need_contrast = wants(want, "spectral_contrast");
  need_cqt = wants(want, "cqt_mag") || wants(want, "chroma_cqt") || tonnetz_cqt;
  need_power = wants(want, "melspectrogram") || wants(want, "mel_db") || wants(want, "mfcc") || need_chroma_stft;
  need_mag = wants(want, "stft_mag") || need_contrast || (need_cqt && !opt.cqt.tuning);
  if (need_cqt && !opt.cqt.tuning && (opt.stft.n_fft != kTuningStftNfft || opt.stft.hop_length != kTuningStftHop))
    throw UsageError("CUDA engine: estimating the CQT tuning needs stft.n_fft=2048 and hop_length=512 "
                     "(librosa estimate_tuning's own STFT); set cqt.tuning to use other STFT options");
  n_bins = 1 + opt.stft.n_fft / 2;
  pip_range = piptrack_bins(opt.sample_rate, opt.stft.n_fft);

  blas = std::make_unique<CublasHandle>(stream.get());
  upload(d_window, periodic_hann_f32(opt.stft.n_fft));
  upload(d_mel_fb, mel_filterbank(opt.sample_rate, opt.stft.n_fft, opt.mel));
  upload(d_dct, dct_ortho_basis(opt.mel.n_mels, opt.mfcc));
  if (need_contrast) {
    bands = contrast_bands(opt.sample_rate, opt.stft.n_fft, opt.spectral_contrast);
    if (bands.max_size > 4096) throw UsageError("CUDA engine: spectral contrast band wider than 4096 bins");
    upload(d_band_begin, bands.begin);
    upload(d_band_end, bands.end);
    upload(d_band_q, bands.q);
  }
  if (need_cqt) {
    cqt_geo = cqt_geometry(opt.sample_rate, opt.stft.hop_length, opt.cqt);
    cqt_bins = cqt_geo.n_fft / 2 + 1;
    upload(d_cq_to_chroma, cq_to_chroma(opt.cqt.n_bins, opt.cqt.bins_per_octave, opt.chroma_cqt.n_chroma, opt.cqt.fmin));
  }
  stream.synchronize();
}

std::vector<double> CudaFeatureEngine::Impl::estimate_tunings(const float* S, const RaggedBatch& rb,
                                                              int bins_per_octave) {
  const int R = pip_range.second - pip_range.first;
  const int64_t items = rb.frames * R;
  float* keys = d_keys.ensure(items);
  float* sorted = d_sorted.ensure(items);
  float* shift = d_shift.ensure(items);
  int* counts = d_peak_count.ensure(rb.n_tracks);
  launch_piptrack(S, rb, n_bins, pip_range.first, pip_range.second, kPiptrackThreshold, keys, shift, counts,
                  stream.get());
  // Segment i = track i's candidates; +inf (non-peaks) sort last, so the first counts[i] are the peak magnitudes.
  const int64_t* seg = d_seg_offsets.get();
  size_t temp_bytes = 0;
  CUDA_CHECK_THROW(cub::DeviceSegmentedSort::SortKeys(nullptr, temp_bytes, keys, sorted, items, rb.n_tracks, seg,
                                                      seg + 1, stream.get()));
  CUDA_CHECK_THROW(cub::DeviceSegmentedSort::SortKeys(d_cub_temp.ensure(temp_bytes), temp_bytes, keys, sorted, items,
                                                      rb.n_tracks, seg, seg + 1, stream.get()));
  float* threshold = d_threshold.ensure(rb.n_tracks);
  launch_track_median(sorted, rb, R, counts, threshold, stream.get());
  int* hist = d_hist.ensure(static_cast<size_t>(rb.n_tracks) * kTuningBins);
  launch_tuning_histogram(keys, shift, rb, R, pip_range.first, opt.sample_rate, opt.stft.n_fft, bins_per_octave,
                          threshold, hist, stream.get());
  int* h = h_hist.ensure(static_cast<size_t>(rb.n_tracks) * kTuningBins);
  CUDA_CHECK_THROW(cudaMemcpyAsync(h, hist, sizeof(int) * rb.n_tracks * kTuningBins, cudaMemcpyDeviceToHost,
                                   stream.get()));
  stream.synchronize();
  std::vector<double> tunings(rb.n_tracks);
  for (int t = 0; t < rb.n_tracks; ++t) tunings[t] = tuning_from_histogram(h + static_cast<size_t>(t) * kTuningBins);
  return tunings;
}

void CudaFeatureEngine::Impl::run_batch(const std::vector<std::span<const float>>& tracks,
                                        const std::vector<size_t>& ids, std::vector<TrackFeatures>& out) {
  cudaStream_t s = stream.get();
  const int n_tracks = static_cast<int>(ids.size());
  const int n_fft = opt.stft.n_fft, hop = opt.stft.hop_length;

  // Ragged layout on the host.
  std::vector<int64_t> sample_offsets(n_tracks + 1, 0), frame_offsets(n_tracks + 1, 0);
  for (int t = 0; t < n_tracks; ++t) {
    int64_t n = static_cast<int64_t>(tracks[ids[t]].size());
    sample_offsets[t + 1] = sample_offsets[t] + n;
    frame_offsets[t + 1] = frame_offsets[t] + 1 + n / hop;  // librosa centred stft: 1 + len // hop frames
  }
  const int64_t F = frame_offsets[n_tracks];
  std::vector<int32_t> frame_track(F);
  for (int t = 0; t < n_tracks; ++t)
    std::fill(frame_track.begin() + frame_offsets[t], frame_track.begin() + frame_offsets[t + 1], t);

  // Octave decimation for the CQT on CPU threads while the GPU works (librosa vqt: resample(y, 2, 1,
  // res_type="soxr_hq", scale=True) per octave). octaves[t][i] = track t at sr / 2^i.
  std::future<std::vector<std::vector<std::vector<float>>>> decimated;
  if (need_cqt) {
    decimated = std::async(std::launch::async, [&tracks, &ids, n_oct = cqt_geo.n_octaves] {
      std::vector<std::vector<std::vector<float>>> res(ids.size());
      for (size_t t = 0; t < ids.size(); ++t) {
        res[t].resize(n_oct);
        res[t][0].assign(tracks[ids[t]].begin(), tracks[ids[t]].end());
        for (int i = 1; i < n_oct; ++i)
          res[t][i] = audio::resample(res[t][i - 1], 2.0, 1.0, audio::ResampleScale::kEnergy);
      }
      return res;
    });
  }

  // Upload PCM through a pinned staging buffer.
  float* hp = h_pcm.ensure(sample_offsets[n_tracks]);
  for (int t = 0; t < n_tracks; ++t)
    std::memcpy(hp + sample_offsets[t], tracks[ids[t]].data(), sizeof(float) * tracks[ids[t]].size());
  float* pcm = d_pcm.ensure(sample_offsets[n_tracks]);
  CUDA_CHECK_THROW(cudaMemcpyAsync(pcm, hp, sizeof(float) * sample_offsets[n_tracks], cudaMemcpyHostToDevice, s));
  RaggedBatch rb;
  rb.sample_offsets = upload(d_sample_offsets, sample_offsets);
  rb.frame_offsets = upload(d_frame_offsets, frame_offsets);
  rb.frame_track = upload(d_frame_track, frame_track);
  rb.frames = F;
  rb.n_tracks = n_tracks;
  {
    const int R = pip_range.second - pip_range.first;
    std::vector<int64_t> seg(n_tracks + 1);
    for (int t = 0; t <= n_tracks; ++t) seg[t] = frame_offsets[t] * R;
    upload(d_seg_offsets, seg);
  }

  // STFT: frame + window -> R2C -> magnitude / power, chunked to bound the FFT work area.
  float* power = need_power ? output(d_power, F * n_bins) : nullptr;
  float* mag = need_mag ? output(d_mag, F * n_bins) : nullptr;
  auto chunk_size = [&](int64_t frames) {
    int64_t c = 1;
    while (c < std::min<int64_t>(frames, eng.max_fft_frames)) c <<= 1;  // few distinct plan sizes
    return static_cast<int>(c);
  };
  if (need_power || need_mag) {
    stage("stft", [&] {
      const int chunk = chunk_size(F);
      R2CPlan& p = plan(n_fft, chunk);
      float* frames = d_frames.ensure(static_cast<size_t>(chunk) * n_fft);
      cufftComplex* spec = d_spec.ensure(static_cast<size_t>(chunk) * n_bins);
      for (int64_t f0 = 0; f0 < F; f0 += chunk) {
        int64_t count = std::min<int64_t>(chunk, F - f0);
        launch_frame_signal(pcm, rb, f0, count, n_fft, hop, n_fft / 2, d_window.get(), frames, s);
        p.execute(frames, spec);  // rows past `count` hold stale frames; their spectra are ignored
        launch_spectra(spec, count, n_bins, power ? power + f0 * n_bins : nullptr, mag ? mag + f0 * n_bins : nullptr,
                       s);
      }
    });
  }

  // Mel, mel_db, MFCC: S [F, n_bins] -> mel [F, n_mels] = S @ W^T -> dB -> mfcc [F, n_mfcc] = mel_db @ D^T.
  const int n_mels = opt.mel.n_mels, n_mfcc = opt.mfcc.n_mfcc;
  const bool need_mel_db = wants(want, "mel_db") || wants(want, "mfcc");
  if (wants(want, "melspectrogram") || need_mel_db) {
    stage("mel", [&] {
      gemm_rows_by_matrix_t(blas->get(), power, F, n_bins, d_mel_fb.get(), n_mels, output(d_mel, F * n_mels));
    });
  }
  if (need_mel_db) {
    stage("mel_db", [&] {
      float* db = output(d_mel_db, F * n_mels);
      const float ref_db = static_cast<float>(10.0 * std::log10(std::max(opt.db.amin, std::abs(opt.db.ref))));
      launch_power_to_db(d_mel.get(), F * n_mels, static_cast<float>(opt.db.amin), ref_db, db, s);
      if (opt.db.top_db > 0) {
        float* mx = d_track_max.ensure(n_tracks);
        launch_segmented_max(db, rb, n_mels, mx, s);
        launch_clip_below_max(db, rb, n_mels, mx, static_cast<float>(opt.db.top_db), s);
      }
    });
  }
  if (wants(want, "mfcc")) {
    stage("mfcc", [&] {
      gemm_rows_by_matrix_t(blas->get(), d_mel_db.get(), F, n_mels, d_dct.get(), n_mfcc, output(d_mfcc, F * n_mfcc));
    });
  }

  // chroma_stft: tuning per track (unless fixed), then each track's filterbank.
  std::vector<double> chroma_tuning(n_tracks, opt.chroma_stft.tuning.value_or(0.0));
  if (need_chroma_stft) {
    if (!opt.chroma_stft.tuning)
      stage("tuning_stft", [&] { chroma_tuning = estimate_tunings(power, rb, opt.chroma_stft.n_chroma); });
    stage("chroma_stft", [&] {
      std::map<double, int> slot;
      std::vector<int32_t> fb_of_track(n_tracks);
      for (int t = 0; t < n_tracks; ++t) {
        auto [it, inserted] = slot.emplace(chroma_tuning[t], static_cast<int>(slot.size()));
        fb_of_track[t] = it->second;
      }
      const size_t fb_size = static_cast<size_t>(opt.chroma_stft.n_chroma) * n_bins;
      std::vector<float> fbs(slot.size() * fb_size);
      for (auto& [tuning, i] : slot) {
        auto& fb = chroma_fb_cache[tuning];
        if (fb.empty()) fb = chroma_filterbank(opt.sample_rate, n_fft, opt.chroma_stft.n_chroma, tuning);
        std::copy(fb.begin(), fb.end(), fbs.begin() + i * fb_size);
      }
      upload(d_chroma_fbs, fbs);
      upload(d_fb_of_track, fb_of_track);
      launch_project_norm_inf(power, rb, n_bins, d_chroma_fbs.get(), d_fb_of_track.get(), opt.chroma_stft.n_chroma,
                              output(d_chroma, F * opt.chroma_stft.n_chroma), s);
      stream.synchronize();  // the host vectors above must outlive their async copies
    });
  }

  // spectral_contrast on |X|: peak/valley per band, each converted to dB with its own per-track max clip.
  const int n_band = opt.spectral_contrast.n_bands + 1;
  if (need_contrast) {
    stage("spectral_contrast", [&] {
      double* peak = output(d_peak, F * n_band);
      double* valley = output(d_valley, F * n_band);
      launch_contrast_bands(mag, F, n_bins, d_band_begin.get(), d_band_end.get(), d_band_q.get(), n_band,
                            bands.max_size, peak, valley, s);
      const double ref_db = 10.0 * std::log10(std::max(opt.db.amin, std::abs(opt.db.ref)));
      launch_power_to_db(peak, F * n_band, opt.db.amin, ref_db, peak, s);
      launch_power_to_db(valley, F * n_band, opt.db.amin, ref_db, valley, s);
      if (opt.db.top_db > 0) {
        double* mx = d_track_max64.ensure(n_tracks);
        launch_segmented_max(peak, rb, n_band, mx, s);
        launch_clip_below_max(peak, rb, n_band, mx, opt.db.top_db, s);
        double* mx2 = d_track_max64b.ensure(n_tracks);
        launch_segmented_max(valley, rb, n_band, mx2, s);
        launch_clip_below_max(valley, rb, n_band, mx2, opt.db.top_db, s);
      }
      launch_difference(peak, valley, F * n_band, output(d_contrast, F * n_band), s);
    });
  }

  // CQT: per-track tuning -> basis; per octave: decimated PCM -> frames (rect window) -> R2C -> projection.
  std::vector<double> cqt_tuning(n_tracks, opt.cqt.tuning.value_or(0.0));
  std::vector<int64_t> cqt_frames(n_tracks, 0);
  const int n_cqt = opt.cqt.n_bins, bpo = opt.cqt.bins_per_octave;
  if (need_cqt) {
    if (!opt.cqt.tuning) stage("tuning_cqt", [&] { cqt_tuning = estimate_tunings(mag, rb, bpo); });
    auto octaves = decimated.get();
    std::map<double, int> slot;
    std::vector<int32_t> basis_of_track(n_tracks);
    for (int t = 0; t < n_tracks; ++t) basis_of_track[t] = slot.emplace(cqt_tuning[t], static_cast<int>(slot.size())).first->second;
    const size_t b_size = static_cast<size_t>(bpo) * cqt_bins;
    std::vector<std::complex<float>> bases(slot.size() * b_size);
    for (auto& [tuning, i] : slot) {
      auto& b = cqt_basis_cache[tuning];
      if (b.empty()) b = cqt_octave_basis(opt.sample_rate, opt.cqt, cqt_geo.n_fft, tuning);
      std::copy(b.begin(), b.end(), bases.begin() + i * b_size);
    }
    // __trim_stack: T = min over octaves of 1 + len(y_i) // hop_i (<= the STFT's frames: octave 0 is y itself).
    for (int t = 0; t < n_tracks; ++t) {
      int64_t T = frame_offsets[t + 1] - frame_offsets[t];
      for (int i = 0; i < cqt_geo.n_octaves; ++i)
        T = std::min<int64_t>(T, 1 + static_cast<int64_t>(octaves[t][i].size()) / (hop >> i));
      cqt_frames[t] = T;
    }
    stage("cqt", [&] {
      CUDA_CHECK_THROW(cudaMemcpyAsync(d_cqt_bases.ensure(bases.size()), bases.data(),
                                       sizeof(cufftComplex) * bases.size(), cudaMemcpyHostToDevice, s));
      upload(d_basis_of_track, basis_of_track);
      upload(d_cqt_limit, cqt_frames);
      float* cqt = output(d_cqt, F * n_cqt);
      const int cn = cqt_geo.n_fft;
      const int chunk = chunk_size(F);
      R2CPlan& p = plan(cn, chunk);
      float* frames = d_frames.ensure(static_cast<size_t>(chunk) * std::max(cn, n_fft));
      cufftComplex* spec = d_spec.ensure(static_cast<size_t>(chunk) * std::max(cqt_bins, n_bins));
      for (int i = 0; i < cqt_geo.n_octaves; ++i) {
        std::vector<int64_t> offs(n_tracks + 1, 0);
        for (int t = 0; t < n_tracks; ++t) offs[t + 1] = offs[t] + static_cast<int64_t>(octaves[t][i].size());
        float* hy = h_pcm.ensure(offs[n_tracks]);
        for (int t = 0; t < n_tracks; ++t)
          std::memcpy(hy + offs[t], octaves[t][i].data(), sizeof(float) * octaves[t][i].size());
        float* y = d_pcm.ensure(std::max(offs[n_tracks], sample_offsets[n_tracks]));
        CUDA_CHECK_THROW(cudaMemcpyAsync(y, hy, sizeof(float) * offs[n_tracks], cudaMemcpyHostToDevice, s));
        RaggedBatch ob = rb;
        ob.sample_offsets = upload(d_sample_offsets, offs);
        const int col0 = n_cqt - (i + 1) * bpo;  // octave 0 holds the top bins
        for (int64_t f0 = 0; f0 < F; f0 += chunk) {
          int64_t count = std::min<int64_t>(chunk, F - f0);
          launch_frame_signal(y, ob, f0, count, cn, hop >> i, cn / 2, nullptr, frames, s);
          p.execute(frames, spec);
          launch_cqt_project(spec, ob, f0, count, cqt_bins, d_cqt_bases.get(), d_basis_of_track.get(), bpo,
                             d_cqt_limit.get(), cqt, n_cqt, col0, s);
        }
        stream.synchronize();  // the pinned staging buffer and offsets are reused by the next octave
      }
    });
    if (wants(want, "chroma_cqt") || (wants(want, "tonnetz") && opt.tonnetz_chroma == TonnetzChroma::kCqt)) {
      stage("chroma_cqt", [&] {
        launch_project_norm_inf(d_cqt.get(), rb, n_cqt, d_cq_to_chroma.get(), nullptr, opt.chroma_cqt.n_chroma,
                                output(d_chroma_cqt, F * opt.chroma_cqt.n_chroma), s);
      });
    }
  }
  if (wants(want, "tonnetz")) {
    const bool from_cqt = opt.tonnetz_chroma == TonnetzChroma::kCqt;
    int n_chroma = from_cqt ? opt.chroma_cqt.n_chroma : opt.chroma_stft.n_chroma;
    if (n_chroma != 12) throw UsageError("CUDA engine: tonnetz needs 12 chroma bins, got " + std::to_string(n_chroma));
    stage("tonnetz", [&] { launch_tonnetz(from_cqt ? d_chroma_cqt.get() : d_chroma.get(), F, output(d_tonnetz, F * 6), s); });
  }

  // Download each requested feature [F, dim] and split it into tracks.
  struct Source {
    const char* name;
    const float* data;
    int dim;
    bool cqt_frames;
  };
  std::vector<Source> sources = {
      {"stft_mag", mag, n_bins, false},
      {"melspectrogram", d_mel.get(), n_mels, false},
      {"mel_db", d_mel_db.get(), n_mels, false},
      {"mfcc", d_mfcc.get(), n_mfcc, false},
      {"chroma_stft", d_chroma.get(), opt.chroma_stft.n_chroma, false},
      {"spectral_contrast", d_contrast.get(), n_band, false},
      {"cqt_mag", d_cqt.get(), n_cqt, true},
      {"chroma_cqt", d_chroma_cqt.get(), opt.chroma_cqt.n_chroma, true},
      {"tonnetz", d_tonnetz.get(), 6, opt.tonnetz_chroma == TonnetzChroma::kCqt},
  };
  for (const Source& src : sources) {
    if (!wants(want, src.name)) continue;
    float* h = h_out.ensure(F * src.dim);
    stage("download", [&] {
      CUDA_CHECK_THROW(cudaMemcpyAsync(h, src.data, sizeof(float) * F * src.dim, cudaMemcpyDeviceToHost, s));
    });
    stream.synchronize();
    for (int t = 0; t < n_tracks; ++t) {
      int64_t rows = src.cqt_frames ? cqt_frames[t] : frame_offsets[t + 1] - frame_offsets[t];
      FeatureMatrix m(rows, src.dim);
      std::memcpy(m.data.data(), h + frame_offsets[t] * src.dim, sizeof(float) * rows * src.dim);
      out[ids[t]].frames[src.name] = std::move(m);
    }
  }
  for (int t = 0; t < n_tracks; ++t) {
    out[ids[t]].n_frames = frame_offsets[t + 1] - frame_offsets[t];
    out[ids[t]].tuning_chroma_stft = need_chroma_stft ? chroma_tuning[t] : std::nan("");
    out[ids[t]].tuning_cqt = need_cqt ? cqt_tuning[t] : std::nan("");
  }
  stream.synchronize();
  collect_times();
}

CudaFeatureEngine::CudaFeatureEngine(const FeatureOptions& options, CudaEngineOptions engine)
{
  if (engine.device < 0 || cuda_device_count() <= engine.device)
    throw DeviceError("CUDA engine: device " + std::to_string(engine.device) + " is not available (" +
                      std::to_string(cuda_device_count()) + " CUDA devices)");
  if (engine.max_batch_frames <= 0 || engine.max_fft_frames <= 0)
    throw UsageError("CUDA engine: max_batch_frames and max_fft_frames must be positive");
  CUDA_CHECK_THROW(cudaSetDevice(engine.device));  // before Impl creates its stream and handles
  impl_ = std::make_unique<Impl>(options, engine);
  impl_->setup();
}
CudaFeatureEngine::~CudaFeatureEngine() = default;
CudaFeatureEngine::CudaFeatureEngine(CudaFeatureEngine&&) noexcept = default;
CudaFeatureEngine& CudaFeatureEngine::operator=(CudaFeatureEngine&&) noexcept = default;

std::vector<TrackFeatures> CudaFeatureEngine::compute_batch(const std::vector<std::span<const float>>& tracks) {
  Impl& im = *impl_;
  CUDA_CHECK_THROW(cudaSetDevice(im.eng.device));
  im.times.ms.clear();
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (tracks[i].empty()) throw InputError("track " + std::to_string(i), "empty signal");
    for (size_t j = 0; j < tracks[i].size(); ++j)
      if (!std::isfinite(tracks[i][j]))
        throw InputError("track " + std::to_string(i), "non-finite sample at index " + std::to_string(j));
  }
  std::vector<TrackFeatures> out(tracks.size());
  std::vector<size_t> ids;
  int64_t frames = 0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    int64_t f = 1 + static_cast<int64_t>(tracks[i].size()) / im.opt.stft.hop_length;
    if (!ids.empty() && frames + f > im.eng.max_batch_frames) {
      im.run_batch(tracks, ids, out);
      ids.clear();
      frames = 0;
    }
    ids.push_back(i);
    frames += f;
  }
  if (!ids.empty()) im.run_batch(tracks, ids, out);
  return out;
}

const CudaStageTimes& CudaFeatureEngine::last_times() const { return impl_->times; }
const FeatureOptions& CudaFeatureEngine::options() const { return impl_->opt; }

std::vector<TrackFeatures> compute_features_cuda(const FeatureOptions& options,
                                                     const std::vector<std::span<const float>>& tracks,
                                                     const CudaEngineOptions& engine) {
  thread_local std::unique_ptr<CudaFeatureEngine> cached;
  thread_local FeatureOptions cached_options;
  thread_local CudaEngineOptions cached_engine;
  if (!cached || !(cached_options == options) || !(cached_engine == engine)) {
    cached.reset();
    cached = std::make_unique<CudaFeatureEngine>(options, engine);
    cached_options = options;
    cached_engine = engine;
  }
  return cached->compute_batch(tracks);
}

double measure_device_copy_bandwidth_gbs(int device, size_t bytes, int repeats) {
  if (device < 0 || cuda_device_count() <= device) throw DeviceError("no CUDA device " + std::to_string(device));
  CUDA_CHECK_THROW(cudaSetDevice(device));
  Stream stream;
  DeviceBuffer<unsigned char> a, b;
  a.ensure(bytes);
  b.ensure(bytes);
  CUDA_CHECK_THROW(cudaMemsetAsync(a.get(), 1, bytes, stream.get()));
  Event start, stop;
  std::vector<float> ms;
  for (int r = 0; r < repeats + 2; ++r) {  // two warm-up copies
    start.record(stream.get());
    CUDA_CHECK_THROW(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
    stop.record(stream.get());
    stream.synchronize();
    float t = 0.0f;
    CUDA_CHECK_THROW(cudaEventElapsedTime(&t, start.get(), stop.get()));
    if (r >= 2) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median_s = ms[ms.size() / 2] * 1e-3;
  return 2.0 * static_cast<double>(bytes) / median_s / 1e9;
}

}  // namespace songlines::features
