// Front end of the CPU feature engine (feature_extractor.h).
#include "features/feature_extractor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <string>

#include "core/error.h"
#include "core/thread_cpu_time.h"
#include "features/chroma_stft.h"
#include "features/cqt.h"
#include "features/mel.h"
#include "features/spectral_contrast.h"
#include "features/stft.h"
#include "features/tonnetz.h"
#include "features/tuning.h"

namespace songlines::features {

struct FeatureExtractor::Impl {
  explicit Impl(const FeatureOptions& o)
      : stft(o.stft), mel(o.sample_rate, o.stft.n_fft, o.mel), mfcc(o.mel.n_mels, o.mfcc) {}
  StftPlan stft;
  MelFilterbank mel;
  MfccTransform mfcc;
  // Chroma filterbanks by tuning: estimate_tuning returns one of ~1/resolution histogram edges, so the cache
  // stays small; guarded because compute() is const and shared between threads.
  mutable std::mutex chroma_mutex;
  mutable std::map<double, std::shared_ptr<const ChromaFilterbank>> chroma;

  std::shared_ptr<const ChromaFilterbank> chroma_filterbank(const FeatureOptions& o, double tuning) const {
    std::lock_guard<std::mutex> lock(chroma_mutex);
    auto it = chroma.find(tuning);
    if (it != chroma.end()) return it->second;
    auto fb = std::make_shared<const ChromaFilterbank>(o.sample_rate, o.stft.n_fft, o.chroma_stft.n_chroma, tuning);
    chroma.emplace(tuning, fb);
    return fb;
  }
};

FeatureExtractor::FeatureExtractor(FeatureOptions options, ChunkOptions chunking)
    : options_(std::move(options)), chunking_(chunking) {
  options_.validate();
  if (chunking_.chunk_frames < 1)
    throw UsageError("chunk_frames: must be >= 1, got " + std::to_string(chunking_.chunk_frames));
  names_ = options_.features.empty() ? all_feature_names() : options_.features;
  impl_ = std::make_unique<Impl>(options_);
}

FeatureExtractor::~FeatureExtractor() = default;

namespace {
/// Spectrum rows that pass 1 takes through all its row-wise stages at once: two [rows, n_fft/2+1] float blocks
/// (S_mag, S_pow; 256 KiB at n_fft 2048) stay in a core's L2 cache between the stages.
constexpr int64_t kCacheBlockRows = 32;

/// True when no y[i] is NaN or Inf: x - x is 0 for a finite x and NaN otherwise, and a NaN stays in the sum.
/// Four lanes at a time (GCC leaves a std::isfinite loop scalar); the signal is read once, at memory speed.
bool all_finite(const float* y, int64_t n) {
  typedef float Lanes __attribute__((vector_size(4 * sizeof(float))));
  Lanes acc = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    Lanes v;
    std::memcpy(&v, y + i, sizeof v);
    acc += v - v;
  }
  float rest = acc[0] + acc[1] + acc[2] + acc[3];
  for (; i < n; ++i) rest += y[i] - y[i];
  return rest == 0.0f;
}

/// Records the wall and thread-CPU seconds since the previous mark under a stage name (no-op without StageTimes).
class StageClock {
 public:
  explicit StageClock(StageTimes* times) : times_(times) {
    if (times_) {
      times_->stages.clear();
      last_wall_ = std::chrono::steady_clock::now();
      last_cpu_ = thread_cpu_seconds();
    }
  }
  /// Adds the time since the previous mark to `stage` (a stage met again, in a later chunk, accumulates).
  void mark(const char* stage) {
    if (!times_) return;
    const auto wall = std::chrono::steady_clock::now();
    const double cpu = thread_cpu_seconds();
    const double wall_s = std::chrono::duration<double>(wall - last_wall_).count();
    auto it = std::find_if(times_->stages.begin(), times_->stages.end(),
                           [&](const StageTimes::Stage& s) { return s.name == stage; });
    if (it == times_->stages.end()) {
      times_->stages.push_back({stage, wall_s, cpu - last_cpu_});
    } else {
      it->wall_s += wall_s;
      it->cpu_s += cpu - last_cpu_;
    }
    last_wall_ = wall;
    last_cpu_ = cpu;
  }

 private:
  StageTimes* times_;
  std::chrono::steady_clock::time_point last_wall_;
  double last_cpu_ = 0.0;
};
}  // namespace

TrackFeatures FeatureExtractor::compute(const float* y, int64_t n, StageTimes* times) const {
  StageClock clock(times);
  if (n <= 0) throw InputError("track", "empty signal (0 samples)");
  // The position is looked up only for the error message.
  const bool finite = all_finite(y, n);
  for (int64_t i = 0; i < n && !finite; ++i)
    if (!std::isfinite(y[i]))
      throw InputError("track", "non-finite sample " + std::to_string(y[i]) + " at index " + std::to_string(i));
  clock.mark("input_check");
  const FeatureOptions& o = options_;
  const std::set<std::string> want(names_.begin(), names_.end());
  auto wants = [&](const char* name) { return want.count(name) > 0; };

  const bool tonnetz_cqt = wants("tonnetz") && o.tonnetz_chroma == TonnetzChroma::kCqt;
  const bool tonnetz_stft = wants("tonnetz") && o.tonnetz_chroma == TonnetzChroma::kStft;
  const bool need_cqt = wants("cqt_mag") || wants("chroma_cqt") || tonnetz_cqt;
  const bool need_chroma_stft = wants("chroma_stft") || tonnetz_stft;
  const bool need_mel = wants("melspectrogram") || wants("mel_db") || wants("mfcc");
  const bool need_power = need_mel || need_chroma_stft;
  const bool need_mag = wants("stft_mag") || wants("spectral_contrast") || (need_cqt && !o.cqt.tuning.has_value());

  TrackFeatures out;
  const int64_t T = stft_num_frames(n, o.stft);
  const int64_t n_bins = o.stft.n_fft / 2 + 1;
  const int64_t C = chunking_.chunk_frames;
  out.n_frames = T;
  out.tuning_chroma_stft = std::numeric_limits<double>::quiet_NaN();
  out.tuning_cqt = std::numeric_limits<double>::quiet_NaN();

  // Outputs [T, dim], filled chunk by chunk. mel_db is kept for mfcc too: its clip needs the track's global max.
  auto output = [&](const char* name, int64_t rows, int64_t dim) -> FeatureMatrix& {
    return out.frames[name] = FeatureMatrix(rows, dim);
  };
  FeatureMatrix* stft_mag = wants("stft_mag") ? &output("stft_mag", T, n_bins) : nullptr;
  FeatureMatrix* melspec = wants("melspectrogram") ? &output("melspectrogram", T, o.mel.n_mels) : nullptr;
  FeatureMatrix mel_db_only;  // mel_db when only mfcc asks for it
  FeatureMatrix* mel_db = nullptr;
  if (wants("mel_db")) mel_db = &output("mel_db", T, o.mel.n_mels);
  else if (wants("mfcc")) mel_db = &(mel_db_only = FeatureMatrix(T, o.mel.n_mels));
  FeatureMatrix chroma_stft;  // [T, n_chroma]
  if (need_chroma_stft) chroma_stft = FeatureMatrix(T, o.chroma_stft.n_chroma);
  const ContrastBands bands = wants("spectral_contrast")
                                  ? spectral_contrast_bands(o.sample_rate, o.stft.n_fft, o.spectral_contrast)
                                  : ContrastBands{};
  const auto n_contrast = static_cast<int64_t>(bands.q.size());
  std::vector<float> contrast_peak(static_cast<size_t>(T * n_contrast)), contrast_valley(contrast_peak.size());

  // Per-thread scratch of one chunk: S_mag = |X| and S_pow = |X|^2, each [rows, n_fft/2+1], and mel [rows, n_mels]
  // (about 10 MB each for a 60 s track): reusing the allocations saves the page faults and zero-fill of fresh
  // ones on every track.
  const int64_t chunk_rows = std::min(C, T);
  thread_local std::vector<float> mag_scratch, pow_scratch, mel_scratch;
  if (need_mag && !stft_mag) mag_scratch.resize(static_cast<size_t>(chunk_rows * n_bins));
  if (need_power) pow_scratch.resize(static_cast<size_t>(chunk_rows * n_bins));
  if (need_mel && !melspec) mel_scratch.resize(static_cast<size_t>(chunk_rows * o.mel.n_mels));
  const bool estimate_chroma_tuning = need_chroma_stft && !o.chroma_stft.tuning.has_value();
  const bool estimate_cqt_tuning = need_cqt && !o.cqt.tuning.has_value();
  PitchPeaks peaks_pow, peaks_mag;  // estimate_tuning's candidates of the whole track (power; magnitude)
  float mel_db_max = -std::numeric_limits<float>::infinity();

  // Pass 1, chunk by chunk: one STFT per chunk feeds mel / power_to_db (before its clip), the tuning candidates,
  // spectral_contrast's peaks and valleys and chroma_stft. chroma_stft's filterbank needs the track's tuning,
  // known only after the last chunk: each chunk uses the estimate from the candidates so far (re-estimated at
  // chunks 0, 1, 3, 7, ... and the last, which gives the track's own), and pass 2 recomputes the chunks whose
  // estimate differs from the track's (on music, rarely any).
  const int64_t n_chunks = (T + C - 1) / C;
  std::vector<double> chunk_tuning(static_cast<size_t>(n_chunks), std::numeric_limits<double>::quiet_NaN());
  double tuning_stft = o.chroma_stft.tuning.value_or(std::numeric_limits<double>::quiet_NaN());
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t t0 = c * C, rows = std::min(C, T - t0);
    float* mag = need_mag ? (stft_mag ? stft_mag->row(t0) : mag_scratch.data()) : nullptr;
    float* pow = need_power ? pow_scratch.data() : nullptr;
    // The row-wise stages run block by block while the block's spectra are in the core's cache, instead of each
    // stage streaming the whole chunk's spectra (tens of MB) from memory again. Every stage is row by row, the
    // tuning candidates are appended in row order and mel_db's running max does not depend on order, so the
    // results are those of whole-chunk stages bit for bit. chroma_stft waits for the chunk's tuning estimate.
    for (int64_t b0 = 0; b0 < rows; b0 += kCacheBlockRows) {
      const int64_t br = std::min(kCacheBlockRows, rows - b0);
      float* bmag = mag ? mag + b0 * n_bins : nullptr;
      float* bpow = pow ? pow + b0 * n_bins : nullptr;
      impl_->stft.compute_frames(y, n, t0 + b0, t0 + b0 + br, bmag, bpow);
      clock.mark("stft");
      if (need_mel) {
        float* mel = (melspec ? melspec->row(t0) : mel_scratch.data()) + b0 * o.mel.n_mels;  // S_pow @ W^T
        impl_->mel.apply_rows(bpow, br, mel);
        if (mel_db)
          mel_db_max = std::max(mel_db_max, db_unclipped(mel, br * o.mel.n_mels, o.db, mel_db->row(t0 + b0)));
        clock.mark("mel");
      }
      if (estimate_chroma_tuning) {
        piptrack_peaks(bpow, br, o.sample_rate, o.stft.n_fft, peaks_pow);
        clock.mark("tuning_stft");
      }
      if (n_contrast > 0) {
        spectral_contrast_peaks_valleys(bmag, br, o.stft.n_fft, bands, contrast_peak.data() + (t0 + b0) * n_contrast,
                                        contrast_valley.data() + (t0 + b0) * n_contrast);
        clock.mark("spectral_contrast");
      }
      if (estimate_cqt_tuning) {
        // librosa cqt(tuning=None): estimate_tuning(y=y, bins_per_octave) = piptrack on the MAGNITUDE stft.
        piptrack_peaks(bmag, br, o.sample_rate, o.stft.n_fft, peaks_mag);
        clock.mark("tuning_cqt");
      }
    }
    if (need_chroma_stft) {
      if (estimate_chroma_tuning && ((c & (c + 1)) == 0 || c == n_chunks - 1))
        tuning_stft = tuning_from_peaks(peaks_pow, o.chroma_stft.n_chroma, o.chroma_stft.tuning_resolution);
      chunk_tuning[static_cast<size_t>(c)] = tuning_stft;
      clock.mark("tuning_stft");
      impl_->chroma_filterbank(o, tuning_stft)->apply_rows(pow, rows, chroma_stft.row(t0));
      clock.mark("chroma_stft");
    }
  }

  // The per-track reductions.
  if (mel_db) {
    clip_db(mel_db->data.data(), T * o.mel.n_mels, mel_db_max, o.db);  // global top_db over the whole track
    clock.mark("mel");
    if (wants("mfcc")) out.frames["mfcc"] = impl_->mfcc.apply(*mel_db);
    clock.mark("mfcc");
  }
  if (need_chroma_stft) {
    if (estimate_chroma_tuning && n_chunks == 0)
      tuning_stft = tuning_from_peaks(peaks_pow, o.chroma_stft.n_chroma, o.chroma_stft.tuning_resolution);
    out.tuning_chroma_stft = tuning_stft;  // the last chunk's estimate: all of the track's candidates
    peaks_pow = PitchPeaks();
  }
  if (n_contrast > 0) {
    FeatureMatrix& contrast = output("spectral_contrast", T, n_contrast);
    spectral_contrast_from_peaks_valleys(contrast_peak.data(), contrast_valley.data(), T * n_contrast,
                                         contrast.data.data());
    contrast_peak = std::vector<float>();
    contrast_valley = std::vector<float>();
    clock.mark("spectral_contrast");
  }

  // Pass 2: chroma_stft of the chunks computed with another tuning than the track's (their power spectra again),
  // then the CQT and what follows from it, chunk by chunk.
  for (int64_t c = 0; c < n_chunks && need_chroma_stft; ++c) {
    if (chunk_tuning[static_cast<size_t>(c)] == tuning_stft) continue;
    const int64_t t0 = c * C, rows = std::min(C, T - t0);
    impl_->stft.compute_frames(y, n, t0, t0 + rows, nullptr, pow_scratch.data());
    clock.mark("stft");
    impl_->chroma_filterbank(o, tuning_stft)->apply_rows(pow_scratch.data(), rows, chroma_stft.row(t0));
    clock.mark("chroma_stft");
  }
  if (need_cqt) {
    const double tuning = o.cqt.tuning.has_value()
                              ? *o.cqt.tuning
                              : tuning_from_peaks(peaks_mag, o.cqt.bins_per_octave, o.chroma_stft.tuning_resolution);
    peaks_mag = PitchPeaks();
    out.tuning_cqt = tuning;
    clock.mark("tuning_cqt");
    CqtStream cqt(y, n, o.sample_rate, o.cqt, tuning);
    const int64_t Tq = cqt.frames();  // 1 + n / 512
    FeatureMatrix* cqt_mag = wants("cqt_mag") ? &output("cqt_mag", Tq, o.cqt.n_bins) : nullptr;
    FeatureMatrix* chroma_cqt =
        wants("chroma_cqt") ? &output("chroma_cqt", Tq, o.chroma_cqt.n_chroma) : nullptr;
    FeatureMatrix* tonnetz = tonnetz_cqt ? &output("tonnetz", Tq, o.feature_dim("tonnetz")) : nullptr;
    thread_local FeatureMatrix cqt_rows;
    while (cqt.next_row() < Tq) {
      const int64_t t0 = cqt.next_row(), rows = std::min(C, Tq - t0);
      cqt.next(rows, cqt_rows);  // [rows, n_bins]
      clock.mark("cqt");
      if (cqt_mag) std::copy(cqt_rows.data.begin(), cqt_rows.data.end(), cqt_mag->row(t0));
      if (chroma_cqt || tonnetz) {
        const FeatureMatrix chroma = chroma_cqt_from_cqt(cqt_rows, o.cqt, o.chroma_cqt);  // [rows, n_chroma]
        clock.mark("chroma_cqt");
        if (tonnetz) {
          const FeatureMatrix tz = tonnetz_from_chroma(chroma);  // [rows, 6]
          std::copy(tz.data.begin(), tz.data.end(), tonnetz->row(t0));
          clock.mark("tonnetz");
        }
        if (chroma_cqt) std::copy(chroma.data.begin(), chroma.data.end(), chroma_cqt->row(t0));
      }
    }
  }
  if (tonnetz_stft) {
    out.frames["tonnetz"] = tonnetz_from_chroma(chroma_stft);
    clock.mark("tonnetz");
  }
  if (wants("chroma_stft")) out.frames["chroma_stft"] = std::move(chroma_stft);
  return out;
}

}  // namespace songlines::features
