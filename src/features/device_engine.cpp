// Front end of the device engine (device_engine.h): checks options and inputs, builds the constants from the
// reference's own definitions, packs tracks into ragged batches under the frame budget and hands them to one
// backend (device_engine/chain.h). Plain C++: the device computation itself is device_engine/mel_chain.inl.
#include "features/device_engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "audio/resample.h"
#include "core/error.h"
#include "core/test_kill_point.h"
#include "features/device.h"
#include "features/chroma_stft.h"
#include "features/cqt.h"
#include "features/device_engine/chain.h"
#include "features/mel.h"
#include "features/spectral_contrast.h"
#include "features/stft.h"
#include "features/tonnetz.h"
#include "features/tuning.h"

namespace songlines::features {

namespace de = device_engine;

namespace {

constexpr int64_t kHostDefaultBatchFrames = int64_t{1} << 13;
constexpr int64_t kCudaDefaultBatchFrames = int64_t{1} << 17;
/// Tuning candidates (piptrack peaks) on the device at a time in estimate_tunings, per frame of the budget
/// (~32 bytes each: sort keys, magnitudes, bins, segments).
constexpr int64_t kTuningElementsPerFrame = 64;

std::vector<std::string> requested_features(const FeatureOptions& o);

bool wants_feature(const FeatureOptions& o, const char* name) {
  const std::vector<std::string> names = requested_features(o);
  return std::find(names.begin(), names.end(), name) != names.end();
}

/// Whether tonnetz is requested of chroma_stft (TonnetzChroma::kStft): then it is on the STFT's grid and needs
/// chroma_stft (at its fixed or estimated tuning) whether chroma_stft itself is requested or not.
bool wants_stft_tonnetz(const FeatureOptions& o) {
  return wants_feature(o, "tonnetz") && o.tonnetz_chroma == TonnetzChroma::kStft;
}

/// Whether any of the CQT family (cqt_mag, chroma_cqt, tonnetz of chroma_cqt) is requested.
bool wants_cqt(const FeatureOptions& o) {
  return wants_feature(o, "cqt_mag") || wants_feature(o, "chroma_cqt") ||
         (wants_feature(o, "tonnetz") && o.tonnetz_chroma == TonnetzChroma::kCqt);
}

/// The CQT's constants at one tuning, from the reference's own plan (cqt_octave_plan): the octave geometry, each
/// octave's complex64 basis in the real form of CqtBank, and 1/sqrt(length) per bin.
de::CqtBank make_cqt_bank(const FeatureOptions& o, double tuning) {
  const CqtOctavePlan plan = cqt_octave_plan(o.sample_rate, o.cqt, tuning);
  de::CqtBank bank;
  bank.early_downsample_factor = plan.early_downsample_factor;
  bank.inv_sqrt_length = plan.inv_sqrt_length;
  for (const CqtOctavePlan::Octave& oct : plan.octaves) {
    bank.octaves.push_back({oct.n_fft, oct.hop, oct.first_bin, oct.n_filters, oct.decimate_after});
    const int64_t n_keep = oct.n_fft / 2 + 1, width = 2 * n_keep;
    std::vector<float> w(static_cast<size_t>(2 * oct.n_filters * width), 0.0f);  // [2 n_filters, 2 n_keep]
    int64_t band_begin = n_keep, band_end = 0;
    for (int64_t r = 0; r < oct.n_filters; ++r)
      for (int64_t k = 0; k < n_keep; ++k) {
        const std::complex<float> b = oct.basis[static_cast<size_t>(r * n_keep + k)];
        if (b != std::complex<float>(0.0f, 0.0f)) {
          band_begin = std::min(band_begin, k);
          band_end = std::max(band_end, k + 1);
        }
        float* re_row = w.data() + (2 * r) * width;
        float* im_row = w.data() + (2 * r + 1) * width;
        re_row[2 * k] = b.real();
        re_row[2 * k + 1] = -b.imag();
        im_row[2 * k] = b.imag();
        im_row[2 * k + 1] = b.real();
      }
    bank.basis.push_back(std::move(w));
    bank.band_begin.push_back(std::min(band_begin, band_end));  // an all-zero basis: an empty band
    bank.band_end.push_back(band_end);
  }
  return bank;
}

/// Samples of y_0 for an n-sample track: n, or librosa's resampled length after early downsampling.
int64_t early_length(const de::CqtBank& bank, int64_t n) {
  return bank.early_downsample_factor == 1 ? n
                                           : audio::resampled_length(n, static_cast<double>(bank.early_downsample_factor), 1.0);
}

/// librosa's CQT frame count (__trim_stack): min over octaves of 1 + n_i // hop_i, n_i halved (ceil) at each
/// decimation; n = y_0's samples (early_length).
int64_t cqt_num_frames(const std::vector<de::CqtOctaveGeometry>& octaves, int64_t n) {
  int64_t T = std::numeric_limits<int64_t>::max(), len = n;
  for (const de::CqtOctaveGeometry& g : octaves) {
    T = std::min(T, 1 + len / g.hop);
    if (g.decimate_after) len = (len + 1) / 2;
  }
  return T;
}

/// The spans of every octave's signal that CQT frames [t0, t1) of an n-sample track read (the rest of their frames
/// is zero padding): [t hop_i - n_fft_i/2, t hop_i + n_fft_i/2) for t in [t0, t1), within [0, n_i).
std::vector<de::CqtOctaveSpan> cqt_spans(const std::vector<de::CqtOctaveGeometry>& octaves, int64_t n, int64_t t0,
                                         int64_t t1) {
  std::vector<de::CqtOctaveSpan> spans;
  int64_t len = n;
  for (const de::CqtOctaveGeometry& g : octaves) {
    de::CqtOctaveSpan s;
    s.length = len;
    s.begin = std::min(len, std::max<int64_t>(0, t0 * g.hop - g.n_fft / 2));
    s.end = std::max(s.begin, std::min<int64_t>(len, (t1 - 1) * g.hop - g.n_fft / 2 + g.n_fft));
    spans.push_back(s);
    if (g.decimate_after) len = (len + 1) / 2;
  }
  return spans;
}

/// y_i of every octave of one track (cqt_magnitude's signals): y_0 the track itself, or (early downsampling) the
/// track resampled by 1/factor with scale=True as librosa's __early_downsample (audio::resample: libsoxr HQ, the
/// reference's resampler); y_{i+1} = cqt_decimate_octave(y_i) after an octave that decimates, else y_i. Only the
/// resampled ones are stored.
class CqtOctaveSignals {
 public:
  CqtOctaveSignals(const de::CqtBank& bank, std::span<const float> track) {
    const std::vector<de::CqtOctaveGeometry>& octaves = bank.octaves;
    const float* y = track.data();
    int64_t n = static_cast<int64_t>(track.size());
    if (bank.early_downsample_factor != 1) {
      decimated_.push_back(audio::resample(y, n, static_cast<double>(bank.early_downsample_factor), 1.0,
                                           audio::ResampleScale::kEnergy));
      y = decimated_.back().data();
      n = static_cast<int64_t>(decimated_.back().size());
    }
    for (size_t i = 0; i < octaves.size(); ++i) {
      pointers_.push_back(y);
      if (octaves[i].decimate_after && i + 1 < octaves.size()) {
        decimated_.push_back(cqt_decimate_octave(y, n));  // libsoxr HQ 2:1, scale=True (the reference's decimator)
        y = decimated_.back().data();
        n = static_cast<int64_t>(decimated_.back().size());
      }
    }
  }
  /// The signal of octave i, at its sample `begin`.
  const float* at(size_t i, int64_t begin) const { return pointers_[i] + begin; }

 private:
  std::deque<std::vector<float>> decimated_;  // a deque: pointers into earlier elements stay valid
  std::vector<const float*> pointers_;
};

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
  // estimate_tuning's piptrack band, threshold and histogram edges: the same for chroma_stft's estimate and the
  // CQT's (both at chroma_stft.tuning_resolution, as the reference engine), which differ in bins per octave.
  auto estimate_tuning_constants = [&] {
    const PiptrackBand band = piptrack_band(o.sample_rate, o.stft.n_fft);
    c.sample_rate = o.sample_rate;
    c.tuning_k_lo = band.k_lo;
    c.tuning_k_hi = band.k_hi;
    c.tuning_threshold = kPiptrackThreshold;
    c.tuning_edges = tuning_histogram_edges(o.chroma_stft.tuning_resolution);
  };
  if (wants_feature(o, "chroma_stft") || wants_stft_tonnetz(o)) {
    c.n_chroma = o.chroma_stft.n_chroma;
    if (!o.chroma_stft.tuning.has_value()) {  // librosa's default: estimate_tuning on the power spectrogram
      estimate_tuning_constants();
      c.bins_per_octave = o.chroma_stft.n_chroma;
    }
  }
  if (wants_feature(o, "spectral_contrast")) {
    const ContrastBands bands = spectral_contrast_bands(o.sample_rate, o.stft.n_fft, o.spectral_contrast);
    c.contrast_begin.assign(bands.begin.begin(), bands.begin.end());
    c.contrast_end.assign(bands.end.begin(), bands.end.end());
    c.contrast_q.assign(bands.q.begin(), bands.q.end());
    c.contrast_amin = kSpectralContrastDb.amin;
    c.contrast_ref_db = 10.0 * std::log10(std::max(kSpectralContrastDb.amin, std::abs(kSpectralContrastDb.ref)));
    c.contrast_top_db = kSpectralContrastDb.top_db;
    c.fft_float64 = true;
  }
  if (wants_cqt(o)) {
    c.cqt_n_bins = o.cqt.n_bins;
    const bool cqt_tonnetz = wants_feature(o, "tonnetz") && !wants_stft_tonnetz(o);
    if (wants_feature(o, "chroma_cqt") || cqt_tonnetz) {
      c.cqt_n_chroma = o.chroma_cqt.n_chroma;
      c.cq_to_chroma = cq_to_chroma(o.cqt, o.chroma_cqt.n_chroma);  // UsageError unless n_chroma divides bpo
      c.chroma_cqt_threshold = static_cast<float>(o.chroma_cqt.threshold);
    }
    if (cqt_tonnetz) c.tonnetz_phi = tonnetz_phi(o.chroma_cqt.n_chroma);
    if (!o.cqt.tuning.has_value()) {  // librosa cqt(tuning=None): estimate_tuning on the MAGNITUDE spectrogram
      estimate_tuning_constants();
      c.cqt_bins_per_octave = o.cqt.bins_per_octave;
    }
  }
  if (wants_stft_tonnetz(o)) c.tonnetz_phi = tonnetz_phi(o.chroma_stft.n_chroma);
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

/// Features on the CQT's frame grid (hop 512 at the track's rate), not the STFT's.
bool on_cqt_grid(const FeatureOptions& o, const std::string& name) {
  return name == "cqt_mag" || name == "chroma_cqt" || (name == "tonnetz" && o.tonnetz_chroma == TonnetzChroma::kCqt);
}

}  // namespace

const char* device_backend_name(DeviceBackend b) { return b == DeviceBackend::kHost ? "host" : "cuda"; }

bool device_backend_available(DeviceBackend b) {
  if (b == DeviceBackend::kHost) return true;
  return de::cuda_chain_built() && cuda_device_count() > 0;
}

const std::vector<std::string>& DeviceFeatureEngine::supported_features() {
  // Every feature of the reference (all_feature_names), in its order.
  static const std::vector<std::string> names = {"stft_mag",          "melspectrogram", "mel_db",     "mfcc",   "chroma_stft",
                                                 "spectral_contrast", "cqt_mag",        "chroma_cqt", "tonnetz"};
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
  // Every option of the supported features is honoured (the CQT's early downsampling included: it runs on the host
  // with the reference's resampler, as the octave decimation). Kept for options a later feature may not honour.
  return std::nullopt;
}

int64_t DeviceFeatureEngine::min_track_samples(const FeatureOptions& options) {
  // librosa's __early_downsample refuses a signal shorter than its factor (as cqt_magnitude does); the factor can
  // change with the estimated tuning, so the largest over the tunings the track may get.
  if (!wants_cqt(options)) return 1;
  int64_t m = 1;
  const std::vector<double> tunings =
      options.cqt.tuning.has_value() ? std::vector<double>{*options.cqt.tuning} : std::vector<double>{-0.5, 0.0, 0.5};
  for (double t : tunings) m = std::max<int64_t>(m, cqt_octave_plan(options.sample_rate, options.cqt, t).early_downsample_factor);
  return m;
}


struct DeviceFeatureEngine::Impl {
  FeatureOptions options;
  DeviceEngineOptions engine;
  std::vector<std::string> names;
  int64_t min_samples = 1;  ///< min_track_samples(options)
  std::unique_ptr<de::Chain> chain;
  int64_t batches = 0;
  /// chroma_stft filterbanks by tuning (estimate_tuning returns one of ~1/resolution edges, so few are built).
  std::map<double, std::vector<float>> chroma_banks;
  /// CQT constants by tuning (estimated tunings are histogram edges, so few are built).
  std::map<double, de::CqtBank> cqt_banks;
  const de::CqtBank* cqt_bank(double tuning) {
    auto it = cqt_banks.find(tuning);
    if (it == cqt_banks.end()) it = cqt_banks.emplace(tuning, make_cqt_bank(options, tuning)).first;
    return &it->second;
  }
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
  if (auto option = first_unsupported_option(options))
    throw UsageError("features." + *option + ": this value is not computed by the device engine yet (options that "
                     "need librosa's early downsampling of the CQT; raise cqt.fmin or cqt.n_bins; issue 14)");
  if (engine.max_batch_frames < 0)
    throw UsageError("device engine: max_batch_frames must be >= 0, got " + std::to_string(engine.max_batch_frames));
  if (engine.max_batch_frames == 0)
    engine.max_batch_frames = engine.backend == DeviceBackend::kHost ? kHostDefaultBatchFrames : kCudaDefaultBatchFrames;
  impl_->options = options;
  impl_->engine = engine;
  impl_->names = requested_features(options);
  impl_->min_samples = min_track_samples(options);
  const de::ChainConstants constants = chain_constants(options);
  if (engine.deferred_host_copies && engine.backend != DeviceBackend::kHost)
    throw UsageError("device engine: deferred_host_copies is a test setting of the host backend");
  impl_->chain = engine.backend == DeviceBackend::kHost
                     ? de::make_host_chain(constants, engine.deferred_host_copies
                                                          ? std::make_unique<de::DeferredCopyQueue>()
                                                          : std::unique_ptr<de::CopyQueue>())
                     : de::make_cuda_chain(constants, engine.cuda_device);
}

DeviceFeatureEngine::~DeviceFeatureEngine() = default;
const FeatureOptions& DeviceFeatureEngine::options() const { return impl_->options; }
const DeviceEngineOptions& DeviceFeatureEngine::engine_options() const { return impl_->engine; }
int64_t DeviceFeatureEngine::last_batch_count() const { return impl_->batches; }
CopyBandwidth DeviceFeatureEngine::measure_copy_bandwidth(int64_t bytes) {
  if (bytes < 1) throw UsageError("device engine: measure_copy_bandwidth needs >= 1 byte, got " + std::to_string(bytes));
  return impl_->chain->measure_copy_bandwidth(bytes);
}

void DeviceFeatureEngine::check_track(std::span<const float> track, const std::string& path) {
  if (track.empty()) throw InputError(path, "empty signal (0 samples)");
  for (size_t j = 0; j < track.size(); ++j)
    if (!std::isfinite(track[j]))
      throw InputError(path, "non-finite sample " + std::to_string(track[j]) + " at index " + std::to_string(j));
}

void DeviceFeatureEngine::check(std::span<const float> track, const std::string& path) const {
  check_track(track, path);
  if (static_cast<int64_t>(track.size()) < impl_->min_samples)
    throw InputError(path, "too short for the CQT's early downsampling: " + std::to_string(track.size()) +
                               " samples, at least " + std::to_string(impl_->min_samples) + " (librosa refuses it too)");
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
  // Batch results reach `out` through the backend's staging (device_engine/staging.h): drained before any row is
  // read on the host and at the end; dropped if anything throws (their rows die with `out`).
  struct DiscardOnError {
    de::Chain* chain;
    bool done = false;
    ~DiscardOnError() {
      if (!done) chain->discard();
    }
  } staging{impl_->chain.get()};
  for (size_t i = 0; i < tracks.size(); ++i) check(tracks[i], "track " + std::to_string(i));

  const bool want_mag = impl_->wants("stft_mag"), want_mel = impl_->wants("melspectrogram"),
             want_db = impl_->wants("mel_db"), want_mfcc = impl_->wants("mfcc"),
             want_chroma_stft = impl_->wants("chroma_stft"), want_contrast = impl_->wants("spectral_contrast");
  // chroma_stft is computed for itself and for a tonnetz of it (tonnetz_chroma = stft)
  const bool stft_tonnetz = wants_stft_tonnetz(o), want_chroma = want_chroma_stft || stft_tonnetz;
  // chroma_stft's default tuning is estimated from the whole track (estimate_tuning), so it is known only after
  // the track's last chunk: the main pass gathers each track's piptrack peaks, estimate_tunings reduces them per
  // track, and a second pass computes chroma_stft at each track's tuning.
  const bool estimate = want_chroma && !o.chroma_stft.tuning.has_value();
  // The CQT family runs in a pass of its own (run_cqt_pass) at each track's CQT tuning, estimated by default from
  // the main pass's magnitude (librosa cqt(tuning=None)).
  const bool want_cqt = wants_cqt(o);
  const bool estimate_cqt = want_cqt && !o.cqt.tuning.has_value();
  const bool main_pass = want_mag || want_mel || want_db || want_mfcc || want_chroma || want_contrast ||
                         estimate_cqt;
  // frame counts at the fixed tuning, else at 0 (run_cqt_pass resizes when the estimated tuning's plan, with early
  // downsampling, gives another count)
  const de::CqtBank* cqt_frames_bank = want_cqt ? impl_->cqt_bank(o.cqt.tuning.value_or(0.0)) : nullptr;
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
    if (want_cqt && !estimate_cqt) tf.tuning_cqt = *o.cqt.tuning;
    const int64_t cqt_frames =
        want_cqt ? cqt_num_frames(cqt_frames_bank->octaves, early_length(*cqt_frames_bank, static_cast<int64_t>(tracks[i].size())))
                 : 0;
    for (const std::string& name : impl_->names)
      tf.frames[name] = FeatureMatrix(on_cqt_grid(o, name) ? cqt_frames : tf.n_frames, o.feature_dim(name), fill);
  }

  // ---- ragged batches: whole tracks while they fit; a track longer than the budget is cut into chunks that
  // start in whatever room the current batch has left ----
  enum class Pass {
    kMain,    // every feature but an estimated-tuning chroma_stft; gathers tuning candidates when estimating
    kChroma,  // chroma_stft alone, at each track's estimated tuning
  };
  std::vector<de::TuningCandidates> candidates(estimate ? tracks.size() : 0);
  std::vector<de::TuningCandidates> cqt_candidates(estimate_cqt ? tracks.size() : 0);
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
    // Fault injection for the tests (SONGLINES_TEST_KILL_AT=device-engine-batch:N): the N-th batch fails as a
    // device would, mid-pass, with earlier batches' results still in the staging.
    if (test_kill_point_reached("device-engine-batch"))
      throw DeviceError("device engine: injected failure of batch " + std::to_string(impl_->batches + 1));
    const de::PieceMaxima maxima = impl_->chain->run_batch(request);
    ++impl_->batches;
    for (size_t p = 0; p < request.pieces.size() && pass == Pass::kMain; ++p) {
      if (request.pieces[p].kind != de::PieceKind::kChunk) continue;
      const size_t t = owners[p].track;
      if (want_contrast) {
        combine_max(peak_max[t], maxima.contrast_peak[p]);
        combine_max(valley_max[t], maxima.contrast_valley[p]);
        if (owners[p].last_chunk) {
          impl_->chain->drain();  // the chunks' rows, this batch's included, on the host
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
      impl_->chain->drain();  // the chunks' rows, this batch's included, on the host
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
        b.tonnetz = stft_tonnetz ? rows("tonnetz") : nullptr;
        b.chroma_bank = fixed_bank;
      }
      if (estimate) b.tuning = &candidates[i];
      if (estimate_cqt) b.cqt_tuning = &cqt_candidates[i];
      if (kind == de::PieceKind::kChunk && want_mfcc && !want_db) b.mel_db = scratch_db[i].row(t0);
      if (want_contrast && kind == de::PieceKind::kWholeTrack) b.contrast = rows("spectral_contrast");
      if (want_contrast && kind == de::PieceKind::kChunk) {
        b.contrast_peak_db = contrast_peak[i].data() + t0 * n_contrast;
        b.contrast_valley_db = contrast_valley[i].data() + t0 * n_contrast;
      }
    } else {
      b.chroma = rows("chroma_stft");
      b.tonnetz = stft_tonnetz ? rows("tonnetz") : nullptr;
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
  // Each track's tuning from its candidates (then freed) into out[i].*tuning.
  auto estimate_tunings = [&](std::vector<de::TuningCandidates>& per_track, double TrackFeatures::*tuning) {
    std::vector<const de::TuningCandidates*> pointers;
    for (const auto& c : per_track) pointers.push_back(&c);
    const std::vector<double> tunings = impl_->chain->estimate_tunings(pointers, budget * kTuningElementsPerFrame);
    for (size_t i = 0; i < tracks.size(); ++i) out[i].*tuning = tunings[i];
    per_track.clear();
    per_track.shrink_to_fit();
  };
  if (main_pass) run_pass(Pass::kMain);
  if (estimate_cqt) estimate_tunings(cqt_candidates, &TrackFeatures::tuning_cqt);
  if (estimate) {
    estimate_tunings(candidates, &TrackFeatures::tuning_chroma_stft);
    run_pass(Pass::kChroma);
  }
  if (want_cqt) run_cqt_pass(tracks, out);
  impl_->chain->drain();
  staging.done = true;
  return out;
}

void DeviceFeatureEngine::run_cqt_pass(const std::vector<std::span<const float>>& tracks, std::vector<TrackFeatures>& out) {
  // Ragged batches of CQT frames under the same budget, a track longer than the room left cut into chunks anywhere:
  // each track's octave signals are decimated on the host first (libsoxr, as the reference, over the whole track,
  // so they are the reference's samples whatever the chunking), and every step on the device is row-local. One
  // batch holds one octave geometry (the FFT sizes can change with the tuning).
  //
  // Why not decimate on the device: an FIR with libsoxr's impulse response (measured from cqt_decimate_octave)
  // matched it within 2.7e-7 of the signal's peak, but librosa's CQT in frames with almost nothing in the CQT's
  // range (digital silence next to sound, the chirp's top above 4.1 kHz) is libsoxr's float32 rounding noise, and
  // the FIR's differs: chroma_cqt there was off by up to 1 (a silent frame normalised) against 1e-3 (docs/cuda.md).
  const int64_t budget = impl_->engine.max_batch_frames;
  de::CqtBatchRequest request;
  request.poison = impl_->engine.poison_outputs;
  int64_t batch_frames = 0;
  const std::vector<de::CqtOctaveGeometry>* geometry = nullptr;
  // The banks first (cqt_bank builds and caches them: one thread), then each track's octave signals on worker
  // threads, up to one track per hardware thread ahead of the one being batched (libsoxr calls are independent).
  std::vector<const de::CqtBank*> banks;
  for (size_t i = 0; i < tracks.size(); ++i) banks.push_back(impl_->cqt_bank(out[i].tuning_cqt));
  std::vector<std::future<std::unique_ptr<CqtOctaveSignals>>> pending(tracks.size());
  const size_t ahead = std::max(1u, std::thread::hardware_concurrency());
  auto start_signals = [&](size_t j) {
    if (j < tracks.size() && !pending[j].valid())
      pending[j] = std::async(std::launch::async, [&banks, &tracks, j] {
        return std::make_unique<CqtOctaveSignals>(*banks[j], tracks[j]);
      });
  };
  std::vector<std::unique_ptr<CqtOctaveSignals>> signals;  // of the tracks with pieces in the request
  auto flush = [&] {
    if (!request.pieces.empty()) {
      impl_->chain->run_cqt_batch(request);
      ++impl_->batches;
    }
    request.pieces.clear();
    batch_frames = 0;
    if (signals.size() > 1) signals.erase(signals.begin(), signals.end() - 1);  // the last track may go on
  };
  const float fill = impl_->engine.poison_outputs ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
  for (size_t i = 0; i < tracks.size(); ++i) {
    const de::CqtBank* bank = banks[i];
    if (geometry != nullptr && *geometry != bank->octaves) flush();
    geometry = &bank->octaves;
    for (size_t j = i; j < i + ahead; ++j) start_signals(j);
    signals.push_back(pending[i].get());
    const CqtOctaveSignals& y = *signals.back();
    const int64_t n = early_length(*bank, static_cast<int64_t>(tracks[i].size()));
    const int64_t T = cqt_num_frames(bank->octaves, n);
    for (auto& [name, m] : out[i].frames)  // the tuning's plan may give another count than compute_batch assumed
      if (on_cqt_grid(impl_->options, name) && m.frames != T) m = FeatureMatrix(T, m.dim, fill);
    auto rows = [&](const char* name, int64_t t0) -> float* {
      auto it = out[i].frames.find(name);
      return it == out[i].frames.end() ? nullptr : it->second.row(t0);
    };
    for (int64_t t0 = 0; t0 < T;) {
      if (batch_frames == budget) flush();
      const int64_t nf = std::min(budget - batch_frames, T - t0);
      de::CqtPiece piece;
      piece.bank = bank;
      piece.spans = cqt_spans(bank->octaves, n, t0, t0 + nf);
      for (size_t k = 0; k < piece.spans.size(); ++k) piece.signals.push_back(y.at(k, piece.spans[k].begin));
      piece.frame_begin = t0;
      piece.n_frames = nf;
      piece.cqt_mag = rows("cqt_mag", t0);
      piece.chroma = rows("chroma_cqt", t0);
      if (impl_->options.tonnetz_chroma == TonnetzChroma::kCqt) piece.tonnetz = rows("tonnetz", t0);
      request.pieces.push_back(std::move(piece));
      batch_frames += nf;
      t0 += nf;
    }
  }
  flush();
}

}  // namespace songlines::features
