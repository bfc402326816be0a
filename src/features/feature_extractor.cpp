// Front end of the CPU feature engine (feature_extractor.h).
#include "features/feature_extractor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
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

FeatureExtractor::FeatureExtractor(FeatureOptions options) : options_(std::move(options)) {
  options_.validate();
  names_ = options_.features.empty() ? all_feature_names() : options_.features;
  impl_ = std::make_unique<Impl>(options_);
}

FeatureExtractor::~FeatureExtractor() = default;

namespace {
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
  void mark(const char* stage) {
    if (!times_) return;
    const auto wall = std::chrono::steady_clock::now();
    const double cpu = thread_cpu_seconds();
    times_->stages.push_back({stage, std::chrono::duration<double>(wall - last_wall_).count(), cpu - last_cpu_});
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
  for (int64_t i = 0; i < n; ++i)
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
  out.n_frames = stft_num_frames(n, o.stft);
  out.tuning_chroma_stft = std::numeric_limits<double>::quiet_NaN();
  out.tuning_cqt = std::numeric_limits<double>::quiet_NaN();

  // One STFT: S_mag = |X| and S_pow = |X|^2, each [T, n_fft/2+1]. Per-thread scratch (about 10 MB each for a
  // 60 s track): reusing the allocations saves the page faults and zero-fill of fresh ones on every track.
  thread_local FeatureMatrix mag, pow;
  impl_->stft.compute(y, n, need_mag ? &mag : nullptr, need_power ? &pow : nullptr);
  clock.mark("stft");

  if (need_mel) {
    FeatureMatrix mel = impl_->mel.apply(pow);  // [T, n_mels] = S_pow @ W^T
    if (wants("mel_db") || wants("mfcc")) {
      FeatureMatrix mel_db = power_to_db(mel, o.db);  // global top_db over the whole track
      clock.mark("mel");
      if (wants("mfcc")) out.frames["mfcc"] = impl_->mfcc.apply(mel_db);
      clock.mark("mfcc");
      if (wants("mel_db")) out.frames["mel_db"] = std::move(mel_db);
    }
    if (wants("melspectrogram")) out.frames["melspectrogram"] = std::move(mel);
  }
  FeatureMatrix chroma_stft;
  if (need_chroma_stft) {
    const double tuning = o.chroma_stft.tuning.has_value()
                              ? *o.chroma_stft.tuning
                              : estimate_tuning(pow, o.sample_rate, o.stft.n_fft, o.chroma_stft.n_chroma,
                                                o.chroma_stft.tuning_resolution);
    out.tuning_chroma_stft = tuning;
    clock.mark("tuning_stft");
    chroma_stft = impl_->chroma_filterbank(o, tuning)->apply(pow);
    clock.mark("chroma_stft");
  }
  if (wants("spectral_contrast"))
    out.frames["spectral_contrast"] =
        spectral_contrast_from_magnitude(mag, o.sample_rate, o.stft.n_fft, o.spectral_contrast);
  if (wants("spectral_contrast")) clock.mark("spectral_contrast");

  if (need_cqt) {
    // librosa cqt(tuning=None): estimate_tuning(y=y, bins_per_octave) = piptrack on the MAGNITUDE stft.
    const double tuning = o.cqt.tuning.has_value()
                              ? *o.cqt.tuning
                              : estimate_tuning(mag, o.sample_rate, o.stft.n_fft, o.cqt.bins_per_octave,
                                                o.chroma_stft.tuning_resolution);
    out.tuning_cqt = tuning;
    clock.mark("tuning_cqt");
    FeatureMatrix cqt = cqt_magnitude(y, n, o.sample_rate, o.cqt, tuning);  // [T, n_bins]
    clock.mark("cqt");
    if (wants("chroma_cqt") || tonnetz_cqt) {
      FeatureMatrix chroma_cqt = chroma_cqt_from_cqt(cqt, o.cqt, o.chroma_cqt);  // [T, n_chroma]
      clock.mark("chroma_cqt");
      if (tonnetz_cqt) out.frames["tonnetz"] = tonnetz_from_chroma(chroma_cqt);
      if (tonnetz_cqt) clock.mark("tonnetz");
      if (wants("chroma_cqt")) out.frames["chroma_cqt"] = std::move(chroma_cqt);
    }
    if (wants("cqt_mag")) out.frames["cqt_mag"] = std::move(cqt);
  }
  if (tonnetz_stft) {
    out.frames["tonnetz"] = tonnetz_from_chroma(chroma_stft);
    clock.mark("tonnetz");
  }
  if (wants("chroma_stft")) out.frames["chroma_stft"] = std::move(chroma_stft);
  if (wants("stft_mag")) out.frames["stft_mag"] = std::move(mag);
  return out;
}

}  // namespace songlines::features
