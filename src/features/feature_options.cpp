// JSON round trip, validation and dimensions of the feature options (feature_options.h).
#include "features/feature_options.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace songlines::features {

const std::vector<std::string>& all_feature_names() {
  static const std::vector<std::string> names = {"stft_mag", "melspectrogram", "mel_db",  "mfcc",   "chroma_stft",
                                                 "spectral_contrast", "cqt_mag", "chroma_cqt", "tonnetz"};
  return names;
}

const std::vector<std::string>& default_shard_feature_names() {
  static const std::vector<std::string> names = {"mfcc", "chroma_stft", "spectral_contrast", "tonnetz", "mel_db"};
  return names;
}

const std::vector<std::string>& seed_feature_names() {
  static const std::vector<std::string> names = {"mfcc", "chroma_stft", "spectral_contrast", "tonnetz"};
  return names;
}

std::string tonnetz_chroma_name(TonnetzChroma c) { return c == TonnetzChroma::kStft ? "stft" : "cqt"; }

TonnetzChroma parse_tonnetz_chroma(const std::string& text, const std::string& key_path) {
  if (text == "cqt") return TonnetzChroma::kCqt;
  if (text == "stft") return TonnetzChroma::kStft;
  throw ConfigError(key_path + ": expected \"cqt\" or \"stft\", got \"" + text + "\"");
}

namespace {

void require_range(bool ok, const std::string& key, const std::string& rule, const std::string& value) {
  if (!ok) throw ConfigError(key + ": must be " + rule + ", got " + value);
}


// Range checks; messages name the key under the prefix p.
void validate_options(const FeatureOptions& o, const std::string& p) {
  const auto k = [&](const std::string& key) { return p + "." + key; };
  const auto s = [](auto v) { return std::to_string(v); };
  require_range(o.sample_rate > 0, k("sample_rate"), "> 0", s(o.sample_rate));
  require_range(o.stft.n_fft >= 16, k("stft.n_fft"), ">= 16", s(o.stft.n_fft));
  require_range(o.stft.hop_length >= 1, k("stft.hop_length"), ">= 1", s(o.stft.hop_length));
  require_range(o.mel.n_mels >= 1, k("mel.n_mels"), ">= 1", s(o.mel.n_mels));
  require_range(o.mel.fmin >= 0.0, k("mel.fmin"), ">= 0", s(o.mel.fmin));
  require_range(o.mel.fmax >= 0.0 && o.mel.fmax <= o.sample_rate / 2.0, k("mel.fmax"), "in [0, sample_rate/2] (0: Nyquist)",
                s(o.mel.fmax));
  const double mel_top = o.mel.fmax > 0.0 ? o.mel.fmax : o.sample_rate / 2.0;
  require_range(o.mel.fmin < mel_top, k("mel.fmin"), "below fmax " + s(mel_top), s(o.mel.fmin));
  require_range(o.db.amin > 0.0, k("db.amin"), "> 0", s(o.db.amin));
  require_range(o.mfcc.n_mfcc >= 1 && o.mfcc.n_mfcc <= o.mel.n_mels, k("mfcc.n_mfcc"), "in [1, mel.n_mels]", s(o.mfcc.n_mfcc));
  require_range(o.mfcc.lifter >= 0, k("mfcc.lifter"), ">= 0", s(o.mfcc.lifter));
  require_range(o.chroma_stft.n_chroma >= 1, k("chroma_stft.n_chroma"), ">= 1", s(o.chroma_stft.n_chroma));
  if (o.chroma_stft.tuning)
    require_range(*o.chroma_stft.tuning >= -0.5 && *o.chroma_stft.tuning <= 0.5, k("chroma_stft.tuning"),
                  "in [-0.5, 0.5] or null", s(*o.chroma_stft.tuning));
  require_range(o.chroma_stft.tuning_resolution > 0.0 && o.chroma_stft.tuning_resolution < 1.0,
                k("chroma_stft.tuning_resolution"), "in (0, 1)", s(o.chroma_stft.tuning_resolution));
  require_range(o.spectral_contrast.fmin > 0.0, k("spectral_contrast.fmin"), "> 0", s(o.spectral_contrast.fmin));
  require_range(o.spectral_contrast.n_bands >= 1, k("spectral_contrast.n_bands"), ">= 1", s(o.spectral_contrast.n_bands));
  // librosa: every band's lower edge (octa[:-1], the highest being fmin * 2^(n_bands-1)) below Nyquist.
  require_range(o.spectral_contrast.fmin * std::pow(2.0, o.spectral_contrast.n_bands - 1) < o.sample_rate / 2.0,
                k("spectral_contrast"), "such that fmin * 2^(n_bands-1) < sample_rate/2",
                "fmin " + s(o.spectral_contrast.fmin) + ", n_bands " + s(o.spectral_contrast.n_bands));
  require_range(o.spectral_contrast.quantile > 0.0 && o.spectral_contrast.quantile < 1.0, k("spectral_contrast.quantile"),
                "in (0, 1)", s(o.spectral_contrast.quantile));
  require_range(o.cqt.n_bins >= 1, k("cqt.n_bins"), ">= 1", s(o.cqt.n_bins));
  require_range(o.cqt.bins_per_octave >= 1, k("cqt.bins_per_octave"), ">= 1", s(o.cqt.bins_per_octave));
  require_range(o.cqt.fmin > 0.0, k("cqt.fmin"), "> 0", s(o.cqt.fmin));
  if (o.cqt.tuning)
    require_range(*o.cqt.tuning >= -0.5 && *o.cqt.tuning <= 0.5, k("cqt.tuning"), "in [-0.5, 0.5] or null",
                  s(*o.cqt.tuning));
  require_range(o.cqt.sparsity >= 0.0 && o.cqt.sparsity < 1.0, k("cqt.sparsity"), "in [0, 1)", s(o.cqt.sparsity));
  require_range(o.cqt.filter_scale > 0.0, k("cqt.filter_scale"), "> 0", s(o.cqt.filter_scale));
  require_range(o.chroma_cqt.n_chroma >= 1, k("chroma_cqt.n_chroma"), ">= 1", s(o.chroma_cqt.n_chroma));
  const auto& all = all_feature_names();
  for (size_t i = 0; i < o.features.size(); ++i)
    if (std::find(all.begin(), all.end(), o.features[i]) == all.end()) {
      std::string list;
      for (const auto& n : all) list += (list.empty() ? "" : ", ") + n;
      throw ConfigError(k("features[" + std::to_string(i) + "]") + ": unknown feature \"" + o.features[i] +
                        "\" (known: " + list + ")");
    }
}

}  // namespace

Json FeatureOptions::to_json() const { return fields_to_json(*this); }

FeatureOptions FeatureOptions::from_json(const Json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path + ": expected object, got " + json_type_name(j) + " " + j.dump());
  return fields_from_json<FeatureOptions>(j, path);
}

void FeatureOptions::validate(const std::string& path) const { validate_options(*this, path); }

int64_t FeatureOptions::feature_dim(const std::string& name) const {
  if (name == "stft_mag") return stft.n_fft / 2 + 1;
  if (name == "melspectrogram" || name == "mel_db") return mel.n_mels;
  if (name == "mfcc") return mfcc.n_mfcc;
  if (name == "chroma_stft") return chroma_stft.n_chroma;
  if (name == "spectral_contrast") return spectral_contrast.n_bands + 1;
  if (name == "cqt_mag") return cqt.n_bins;
  if (name == "chroma_cqt") return chroma_cqt.n_chroma;
  if (name == "tonnetz") return 6;
  throw UsageError("unknown feature \"" + name + "\"");
}

}  // namespace songlines::features
