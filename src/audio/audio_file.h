// Audio input: decode any file libsndfile reads (WAV, FLAC, OGG/Vorbis, Opus, MP3, ...), downmix to mono by
// averaging channels, and resample with libsoxr HQ exactly as librosa.load(path, sr=22050) does
// (librosa/core/audio.py: load, to_mono, resample; see docs/features.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace songlines::audio {

/// librosa's default target rate.
inline constexpr int kDefaultSampleRate = 22050;

struct LoadOptions {
  int sample_rate = kDefaultSampleRate;  ///< target rate in Hz; 0 keeps the native rate
  double offset_s = 0.0;                 ///< start reading this many seconds in
  double duration_s = 0.0;               ///< seconds to read; 0 reads to the end
  bool operator==(const LoadOptions&) const = default;
};

struct AudioInfo {
  int native_sample_rate = 0;  ///< Hz
  int channels = 0;
  int64_t native_frames = 0;   ///< samples per channel as stored (probe: SF_COUNT_MAX when the header cannot tell)
  std::string format;          ///< e.g. "WAV", "FLAC", "OGG", "MPEG"
};

struct MonoAudio {
  std::vector<float> samples;  ///< mono, at sample_rate
  int sample_rate = 0;         ///< Hz
  AudioInfo info;              ///< what the file held
  double duration_s() const { return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0; }
};

/// Decodes, downmixes and resamples one file. Throws InputError naming the file and the reason for anything
/// that cannot be decoded: missing, a directory, empty, not audio, truncated/corrupt, NaN/Inf samples,
/// an unsupported sample rate (outside 8 kHz..192 kHz).
MonoAudio load_audio(const std::string& path, const LoadOptions& options = {});

/// Reads only the header.
AudioInfo probe_audio(const std::string& path);

/// File extensions extract treats as audio (lower case, with dot).
const std::vector<std::string>& audio_extensions();

/// Writes mono float samples as a WAV (PCM 16 or float) or FLAC/OGG by extension, via libsndfile, atomically.
enum class SampleEncoding { kPcm16, kFloat32 };
void write_audio(const std::string& path, const float* samples, int64_t n, int sample_rate, int channels = 1,
                 SampleEncoding encoding = SampleEncoding::kPcm16);

}  // namespace songlines::audio
