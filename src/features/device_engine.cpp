// Front end of the device engine (device_engine.h): checks options and inputs, builds the constants from the
// reference's own definitions, packs tracks into ragged batches under the frame budget and hands them to one
// backend (device_engine/chain.h). Plain C++: the device computation itself is device_engine/mel_chain.inl.
#include "features/device_engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "core/error.h"
#include "features/device.h"
#include "features/chroma_stft.h"
#include "features/device_engine/chain.h"
#include "features/mel.h"
#include "features/spectral_contrast.h"
#include "features/stft.h"
#include "features/tuning.h"

namespace songlines::features {

namespace de = device_engine;

namespace {

constexpr int64_t kHostDefaultBatchFrames = int64_t{1} << 13;
constexpr int64_t kCudaDefaultBatchFrames = int64_t{1} << 17;
/// Tuning candidates (piptrack peaks) on the device at a time in estimate_tunings, per frame of the budget
/// (~32 bytes each: sort keys, magnitudes, bins, segments).
constexpr int64_t kTuningElementsPerFrame = 64;

de::ChainConstants chain_constants(const FeatureOptions& o) {
  de::ChainConstants c;
  c.n_fft = o.stft.n_fft;
  c.hop_length = o.stft.hop_length;
  c.pad = o.stft.center ? o.stft.n_fft / 2 : 0;
  c.n_mels = o.mel.n_mels;
  c.n_mfcc = o.mfcc.n_mfcc;
  c.amin = static_cast<float>(o.db.amin);
  // power_to_db's reference term, as src/features/mel.cpp power_to_db: 10 log10(max(amin, |ref|)).
  c.ref_db = 10.0 * std::log10(std::max(o.db.amin, std::abs(o.db.ref)));
  c.top_db = o.db.top_db;
  c.window = periodic_hann(o.stft.n_fft);
  const MelFilterbank mel(o.sample_rate, o.stft.n_fft, o.mel);
  c.mel = mel.dense();
  const MfccTransform mfcc(o.mel.n_mels, o.mfcc);
  for (double b : mfcc.basis()) c.dct.push_back(static_cast<float>(b));
  const auto& names = o.features.empty() ? all_feature_names() : o.features;
  if (std::find(names.begin(), names.end(), "chroma_stft") != names.end()) {
    c.n_chroma = o.chroma_stft.n_chroma;
    if (!o.chroma_stft.tuning.has_value()) {  // librosa's default: estimate_tuning on the power spectrogram
      const PiptrackBand band = piptrack_band(o.sample_rate, o.stft.n_fft);
      c.sample_rate = o.sample_rate;
      c.tuning_k_lo = band.k_lo;
      c.tuning_k_hi = band.k_hi;
      c.bins_per_octave = o.chroma_stft.n_chroma;
      c.tuning_threshold = kPiptrackThreshold;
      c.tuning_edges = tuning_histogram_edges(o.chroma_stft.tuning_resolution);
    }
  }
  if (std::find(names.begin(), names.end(), "spectral_contrast") != names.end()) {
    const ContrastBands bands = spectral_contrast_bands(o.sample_rate, o.stft.n_fft, o.spectral_contrast);
    c.contrast_begin.assign(bands.begin.begin(), bands.begin.end());
    c.contrast_end.assign(bands.end.begin(), bands.end.end());
    c.contrast_q.assign(bands.q.begin(), bands.q.end());
    c.contrast_amin = kSpectralContrastDb.amin;
    c.contrast_ref_db = 10.0 * std::log10(std::max(kSpectralContrastDb.amin, std::abs(kSpectralContrastDb.ref)));
    c.contrast_top_db = kSpectralContrastDb.top_db;
    c.fft_float64 = true;
  }
  return c;
}

/// m = max(m, v), NaN (a poisoned, unwritten maximum) sticking.
template <class T>
void combine_max(T& m, T v) {
  if (std::isnan(v) || std::isnan(m)) m = std::numeric_limits<T>::quiet_NaN();
  else m = std::max(m, v);
}

std::vector<std::string> requested_features(const FeatureOptions& o) {
  return o.features.empty() ? all_feature_names() : o.features;
}

}  // namespace

const char* device_backend_name(DeviceBackend b) { return b == DeviceBackend::kHost ? "host" : "cuda"; }

bool device_backend_available(DeviceBackend b) {
  if (b == DeviceBackend::kHost) return true;
  return de::cuda_chain_built() && cuda_device_count() > 0;
}

const std::vector<std::string>& DeviceFeatureEngine::supported_features() {
  static const std::vector<std::string> names = {"stft_mag",    "melspectrogram",   "mel_db",
                                                 "mfcc",        "chroma_stft",      "spectral_contrast"};
  return names;
}

std::string DeviceFeatureEngine::supported_feature_list() {
  std::string list;
  for (const auto& s : supported_features()) list += (list.empty() ? "" : ",") + s;
  return list;
}

std::optional<std::string> DeviceFeatureEngine::first_unsupported_feature(const FeatureOptions& options) {
  const auto& ok = supported_features();
  for (const std::string& name : requested_features(options))
    if (std::find(ok.begin(), ok.end(), name) == ok.end()) return name;
  return std::nullopt;
}

std::optional<std::string> DeviceFeatureEngine::first_unsupported_option(const FeatureOptions&) {
  return std::nullopt;  // every option of the supported features is honoured
}

struct DeviceFeatureEngine::Impl {
  FeatureOptions options;
  DeviceEngineOptions engine;
  std::vector<std::string> names;
  std::unique_ptr<de::Chain> chain;
  int64_t batches = 0;
  /// chroma_stft filterbanks by tuning (estimate_tuning returns one of ~1/resolution edges, so few are built).
  std::map<double, std::vector<float>> chroma_banks;
  const float* chroma_bank(double tuning) {
    auto it = chroma_banks.find(tuning);
    if (it == chroma_banks.end())
      it = chroma_banks
               .emplace(tuning, ChromaFilterbank(options.sample_rate, options.stft.n_fft, options.chroma_stft.n_chroma,
                                                 tuning)
                                    .dense())
               .first;
    return it->second.data();
  }
  bool wants(const char* name) const { return std::find(names.begin(), names.end(), name) != names.end(); }
};

DeviceFeatureEngine::DeviceFeatureEngine(const FeatureOptions& options, DeviceEngineOptions engine)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  if (auto name = first_unsupported_feature(options))
    throw UsageError("features: \"" + *name + "\" is not computed by the device engine yet (it computes " +
                     supported_feature_list() + "; issue 14)");
  if (engine.max_batch_frames < 0)
    throw UsageError("device engine: max_batch_frames must be >= 0, got " + std::to_string(engine.max_batch_frames));
  if (engine.max_batch_frames == 0)
    engine.max_batch_frames = engine.backend == DeviceBackend::kHost ? kHostDefaultBatchFrames : kCudaDefaultBatchFrames;
  impl_->options = options;
  impl_->engine = engine;
  impl_->names = requested_features(options);
  const de::ChainConstants constants = chain_constants(options);
  impl_->chain = engine.backend == DeviceBackend::kHost ? de::make_host_chain(constants)
                                                        : de::make_cuda_chain(constants, engine.cuda_device);
}

DeviceFeatureEngine::~DeviceFeatureEngine() = default;
const FeatureOptions& DeviceFeatureEngine::options() const { return impl_->options; }
const DeviceEngineOptions& DeviceFeatureEngine::engine_options() const { return impl_->engine; }
int64_t DeviceFeatureEngine::last_batch_count() const { return impl_->batches; }

void DeviceFeatureEngine::check_track(std::span<const float> track, const std::string& path) {
  if (track.empty()) throw InputError(path, "empty signal (0 samples)");
  for (size_t j = 0; j < track.size(); ++j)
    if (!std::isfinite(track[j]))
      throw InputError(path, "non-finite sample " + std::to_string(track[j]) + " at index " + std::to_string(j));
}

std::unique_ptr<DeviceFeatureEngine> open_device_engine(const FeatureOptions& options, DeviceEngineOptions engine) {
  const std::string flag = std::string("--device ") + device_backend_name(engine.backend);
  if (auto name = DeviceFeatureEngine::first_unsupported_feature(options))
    throw UsageError(flag + ": feature \"" + *name + "\" is not computed by the device engine yet; pass --features " +
                     "with a subset of " + DeviceFeatureEngine::supported_feature_list() + " (issue 14), or use --device cpu");
  if (auto option = DeviceFeatureEngine::first_unsupported_option(options))
    throw UsageError(flag + ": option " + *option + " is not honoured by the device engine; leave it at its " +
                     "default, or use --device cpu");
  try {
    return std::make_unique<DeviceFeatureEngine>(options, engine);
  } catch (const UsageError&) {
    throw;  // names its option already
  } catch (const Error& e) {  // no CUDA device, no CUDA backend in this build, a failed device setup
    throw UsageError(flag + ": " + e.what());
  }
}

std::vector<TrackFeatures> DeviceFeatureEngine::compute_batch(const std::vector<std::span<const float>>& tracks) {
  const FeatureOptions& o = impl_->options;
  const int64_t budget = impl_->engine.max_batch_frames;
  const bool poison = impl_->engine.poison_outputs;
  impl_->batches = 0;
  for (size_t i = 0; i < tracks.size(); ++i) check_track(tracks[i], "track " + std::to_string(i));

  const bool want_mag = impl_->wants("stft_mag"), want_mel = impl_->wants("melspectrogram"),
             want_db = impl_->wants("mel_db"), want_mfcc = impl_->wants("mfcc"),
             want_chroma = impl_->wants("chroma_stft"), want_contrast = impl_->wants("spectral_contrast");
  // chroma_stft's default tuning is estimated from the whole track (estimate_tuning), so it is known only after
  // the track's last chunk: the main pass gathers each track's piptrack peaks, estimate_tunings reduces them per
  // track, and a second pass computes chroma_stft at each track's tuning.
  const bool estimate = want_chroma && !o.chroma_stft.tuning.has_value();
  const float fill = poison ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
  std::vector<TrackFeatures> out(tracks.size());
  std::vector<FeatureMatrix> scratch_db(tracks.size());  // chunked tracks' unclipped mel_db when mel_db is unwanted
  std::vector<float> track_max(tracks.size(), -std::numeric_limits<float>::infinity());
  // Chunked tracks' spectral_contrast: the unclipped peak and valley dB rows and their maxima over the chunks.
  const int64_t n_contrast = o.feature_dim("spectral_contrast");
  std::vector<std::vector<double>> contrast_peak(tracks.size()), contrast_valley(tracks.size());
  std::vector<double> peak_max(tracks.size(), -std::numeric_limits<double>::infinity()), valley_max = peak_max;
  for (size_t i = 0; i < tracks.size(); ++i) {
    TrackFeatures& tf = out[i];
    tf.n_frames = stft_num_frames(static_cast<int64_t>(tracks[i].size()), o.stft);
    tf.tuning_chroma_stft = tf.tuning_cqt = std::numeric_limits<double>::quiet_NaN();
    if (want_chroma && !estimate) tf.tuning_chroma_stft = *o.chroma_stft.tuning;
    for (const std::string& name : impl_->names) tf.frames[name] = FeatureMatrix(tf.n_frames, o.feature_dim(name), fill);
  }

  // ---- ragged batches: whole tracks while they fit; a track longer than the budget is cut into chunks that
  // start in whatever room the current batch has left ----
  enum class Pass {
    kMain,    // every feature but an estimated-tuning chroma_stft; gathers tuning candidates when estimating
    kChroma,  // chroma_stft alone, at each track's estimated tuning
  };
  std::vector<de::TuningCandidates> candidates(estimate ? tracks.size() : 0);
  const float* fixed_bank = want_chroma && !estimate ? impl_->chroma_bank(*o.chroma_stft.tuning) : nullptr;
  struct PieceOf {
    size_t track;
    bool last_chunk;
  };
  de::BatchRequest request;
  request.poison = poison;
  std::vector<PieceOf> owners;
  int64_t batch_frames = 0;
  Pass pass = Pass::kMain;
  auto flush = [&] {
    if (request.pieces.empty()) return;
    const de::PieceMaxima maxima = impl_->chain->run_batch(request);
    ++impl_->batches;
    for (size_t p = 0; p < request.pieces.size() && pass == Pass::kMain; ++p) {
      if (request.pieces[p].kind != de::PieceKind::kChunk) continue;
      const size_t t = owners[p].track;
      if (want_contrast) {
        combine_max(peak_max[t], maxima.contrast_peak[p]);
        combine_max(valley_max[t], maxima.contrast_valley[p]);
        if (owners[p].last_chunk) {
          FeatureMatrix& contrast = out[t].frames.at("spectral_contrast");
          impl_->chain->finish_contrast(contrast_peak[t].data(), contrast_valley[t].data(), contrast.data.data(),
                                        contrast.frames, peak_max[t], valley_max[t], budget, poison);
          contrast_peak[t] = contrast_valley[t] = {};
        }
      }
      float& m = track_max[t];
      combine_max(m, maxima.mel_db[p]);
      if (!owners[p].last_chunk || !(want_db || want_mfcc)) continue;
      FeatureMatrix& db = want_db ? out[t].frames.at("mel_db") : scratch_db[t];
      impl_->chain->finish_track(db.data.data(), want_mfcc ? out[t].frames.at("mfcc").data.data() : nullptr, db.frames,
                                 m, budget, poison);
      scratch_db[t] = FeatureMatrix();
    }
    request.pieces.clear();
    owners.clear();
    batch_frames = 0;
  };
  auto add_piece = [&](size_t i, de::PieceKind kind, int64_t t0, int64_t nf, bool last_chunk) {
    const int64_t n = static_cast<int64_t>(tracks[i].size());
    const int64_t s_lo = std::max<int64_t>(0, t0 * o.stft.hop_length - (o.stft.center ? o.stft.n_fft / 2 : 0));
    const int64_t s_hi =
        std::min<int64_t>(n, (t0 + nf - 1) * o.stft.hop_length - (o.stft.center ? o.stft.n_fft / 2 : 0) + o.stft.n_fft);
    de::BatchPiece b;
    b.kind = kind;
    b.samples = tracks[i].data() + s_lo;
    b.track_samples = n;
    b.sample_begin = s_lo;
    b.n_samples = std::max<int64_t>(0, s_hi - s_lo);
    b.frame_begin = t0;
    b.n_frames = nf;
    auto rows = [&](const char* name) -> float* {
      auto it = out[i].frames.find(name);
      return it == out[i].frames.end() ? nullptr : it->second.row(t0);
    };
    if (pass == Pass::kMain) {
      b.magnitude = want_mag ? rows("stft_mag") : nullptr;
      b.melspectrogram = want_mel ? rows("melspectrogram") : nullptr;
      b.mel_db = want_db ? rows("mel_db") : nullptr;
      b.mfcc = want_mfcc ? rows("mfcc") : nullptr;
      if (fixed_bank) {
        b.chroma = rows("chroma_stft");
        b.chroma_bank = fixed_bank;
      }
      if (estimate) b.tuning = &candidates[i];
      if (kind == de::PieceKind::kChunk && want_mfcc && !want_db) b.mel_db = scratch_db[i].row(t0);
      if (want_contrast && kind == de::PieceKind::kWholeTrack) b.contrast = rows("spectral_contrast");
      if (want_contrast && kind == de::PieceKind::kChunk) {
        b.contrast_peak_db = contrast_peak[i].data() + t0 * n_contrast;
        b.contrast_valley_db = contrast_valley[i].data() + t0 * n_contrast;
      }
    } else {
      b.chroma = rows("chroma_stft");
      b.chroma_bank = impl_->chroma_bank(out[i].tuning_chroma_stft);
    }
    request.pieces.push_back(b);
    owners.push_back({i, last_chunk});
    batch_frames += nf;
  };
  auto run_pass = [&](Pass which) {
    pass = which;
    for (size_t i = 0; i < tracks.size(); ++i) {
      const int64_t T = out[i].n_frames;
      if (T == 0) continue;  // center=false and shorter than n_fft: no frames (librosa errors; nothing to compute)
      if (T <= budget) {
        if (batch_frames + T > budget) flush();
        add_piece(i, de::PieceKind::kWholeTrack, 0, T, false);
        continue;
      }
      if (pass == Pass::kMain && want_mfcc && !want_db) scratch_db[i] = FeatureMatrix(T, o.mel.n_mels, fill);
      if (pass == Pass::kMain && want_contrast) {
        contrast_peak[i].assign(static_cast<size_t>(T * n_contrast), std::numeric_limits<double>::quiet_NaN());
        contrast_valley[i] = contrast_peak[i];
      }
      for (int64_t t0 = 0; t0 < T;) {
        if (batch_frames == budget) flush();
        const int64_t nf = std::min(budget - batch_frames, T - t0);
        add_piece(i, de::PieceKind::kChunk, t0, nf, t0 + nf == T);
        t0 += nf;
      }
    }
    flush();
  };
  run_pass(Pass::kMain);
  if (estimate) {
    std::vector<const de::TuningCandidates*> per_track;
    for (const auto& c : candidates) per_track.push_back(&c);
    const std::vector<double> tunings = impl_->chain->estimate_tunings(per_track, budget * kTuningElementsPerFrame);
    for (size_t i = 0; i < tracks.size(); ++i) out[i].tuning_chroma_stft = tunings[i];
    candidates.clear();
    candidates.shrink_to_fit();
    run_pass(Pass::kChroma);
  }
  return out;
}

}  // namespace songlines::features
