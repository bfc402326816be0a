// Decoding and writing audio files with libsndfile (FLAC decoded by libFLAC directly), the way librosa.load reads
// them through soundfile (librosa 0.11, librosa/core/audio.py: load, __soundfile_load, to_mono; then resample,
// see resample.cpp).
#include "audio/audio_file.h"

#include <FLAC/stream_decoder.h>
#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

#include "audio/flac_reader.h"
#include "audio/resample.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace songlines::audio {

namespace {

namespace fs = std::filesystem;

/// Native rates accepted by load_audio (the contract: 8 kHz .. 192 kHz).
constexpr int kMinNativeRate = 8000;
constexpr int kMaxNativeRate = 192000;
/// Frames decoded per sf_readf_float call: the interleaved block (64 KiB in stereo), its mono downmix and its
/// resampled output stay in the core's cache while the block moves through them.
constexpr sf_count_t kReadBlockFrames = 1 << 13;

struct SndfileCloser {
  void operator()(SNDFILE* f) const {
    if (f) sf_close(f);
  }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

/// Short container name for AudioInfo::format.
std::string format_name(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: return "WAV";
    case SF_FORMAT_WAVEX: return "WAVEX";
    case SF_FORMAT_RF64: return "RF64";
    case SF_FORMAT_W64: return "W64";
    case SF_FORMAT_AIFF: return "AIFF";
    case SF_FORMAT_AU: return "AU";
    case SF_FORMAT_FLAC: return "FLAC";
    case SF_FORMAT_OGG: return (format & SF_FORMAT_SUBMASK) == SF_FORMAT_OPUS ? "OPUS" : "OGG";
    case SF_FORMAT_MPEG: return "MPEG";
    default: {
      SF_FORMAT_INFO info{};
      info.format = format & SF_FORMAT_TYPEMASK;
      if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &info, sizeof(info)) == 0 && info.name) return info.name;
      return "unknown";
    }
  }
}

/// Opens path for reading after the checks libsndfile reports poorly (missing, directory, empty).
SndfilePtr open_for_reading(const std::string& path, SF_INFO& sfinfo) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw InputError(path, "file not found");
  if (fs::is_directory(status)) throw InputError(path, "is a directory, not an audio file");
  if (!fs::is_regular_file(status)) throw InputError(path, "not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError(path, "cannot read file size: " + ec.message());
  if (size == 0) throw InputError(path, "empty file (0 bytes)");

  sfinfo = SF_INFO{};
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &sfinfo));
  if (!file)
    throw InputError(path, std::string("not a recognised audio file or its header is corrupt (libsndfile: ") +
                               sf_strerror(nullptr) + ")");
  if (sfinfo.channels <= 0) throw InputError(path, "header declares " + std::to_string(sfinfo.channels) + " channels");
  if (sfinfo.samplerate <= 0)
    throw InputError(path, "header declares sample rate " + std::to_string(sfinfo.samplerate) + " Hz");
  return file;
}

AudioInfo to_info(const SF_INFO& sfinfo) {
  AudioInfo info;
  info.native_sample_rate = sfinfo.samplerate;
  info.channels = sfinfo.channels;
  info.native_frames = sfinfo.frames;
  info.format = format_name(sfinfo.format);
  return info;
}

void check_options(const LoadOptions& options) {
  if (options.sample_rate < 0)
    throw UsageError("load_audio: sample_rate must be >= 0 (0 keeps the native rate), got " +
                     std::to_string(options.sample_rate));
  if (!(options.offset_s >= 0.0) || !std::isfinite(options.offset_s))
    throw UsageError("load_audio: offset_s must be a finite number >= 0, got " + std::to_string(options.offset_s));
  if (!(options.duration_s >= 0.0) || !std::isfinite(options.duration_s))
    throw UsageError("load_audio: duration_s must be a finite number >= 0 (0 reads to the end), got " +
                     std::to_string(options.duration_s));
}

struct WriteFormat {
  int format = 0;
  std::string name;
};

WriteFormat write_format_for(const std::string& path, SampleEncoding encoding) {
  const std::string ext = lower_extension(path);
  const bool is_float = encoding == SampleEncoding::kFloat32;
  if (ext == ".wav") return {SF_FORMAT_WAV | (is_float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16), "WAV"};
  // FLAC stores integers only: float samples are kept at 24 bits.
  if (ext == ".flac") return {SF_FORMAT_FLAC | (is_float ? SF_FORMAT_PCM_24 : SF_FORMAT_PCM_16), "FLAC"};
  if (ext == ".ogg" || ext == ".oga") return {SF_FORMAT_OGG | SF_FORMAT_VORBIS, "OGG/Vorbis"};
  if (ext == ".opus") return {SF_FORMAT_OGG | SF_FORMAT_OPUS, "OGG/Opus"};
  if (ext == ".mp3") return {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, "MP3"};
  throw UsageError(path + ": cannot choose an audio format for extension \"" + ext +
                   "\" (use .wav, .flac, .ogg, .opus or .mp3)");
}

/// libsndfile repairs some damage silently (a WAV data chunk longer than the file is cut to what is there; an
/// Ogg page with a bad CRC is skipped) and only writes it to the file's log. Returns the log line that shows
/// damage, or "" when there is none. Markers, from libsndfile 1.2's wav/aiff/ogg parsers:
///   "data : <declared> (should be <present>)" / "SSND : ... (should be ...)"  - chunk longer than the file;
///   "Corrupted bitstream", "reports a hole"                                  - Ogg pages lost mid-stream;
///   "File ended unexpectedly"                                                 - Ogg stream cut before its end.
std::string damage_in_log(SNDFILE* file) {
  std::string log(1 << 14, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  log.resize(log.find('\0'));
  size_t pos = 0;
  while (pos < log.size()) {
    size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(pos, end - pos);
    pos = end + 1;
    const bool chunk_too_long =
        (line.rfind("data", 0) == 0 || line.rfind("SSND", 0) == 0) && line.find("(should be") != std::string::npos;
    if (chunk_too_long || line.find("Corrupted bitstream") != std::string::npos ||
        line.find("reports a hole") != std::string::npos || line.find("File ended unexpectedly") != std::string::npos)
      return line;
  }
  return "";
}

/// True when none of x[0..n) is NaN or Inf. Branch-free over the block (it vectorises); the exact position is
/// looked up only for the error message.
bool all_finite(const float* x, size_t n) {
  bool finite = true;
  for (size_t i = 0; i < n; ++i) finite &= std::isfinite(x[i]);
  return finite;
}
size_t first_non_finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return n;
}

/// librosa.to_mono (np.mean over channels in float32): the channels summed in order from 0.0f, then divided by
/// the channel count; one channel is copied through that same sum (0.0f + x). frames: [n, channels] interleaved.
void downmix(const float* frames, size_t n, int channels, float* mono) {
  if (channels == 2) {
    for (size_t f = 0; f < n; ++f) {
      float sum = 0.0f;
      sum += frames[2 * f];
      sum += frames[2 * f + 1];
      mono[f] = sum / 2.0f;
    }
    return;
  }
  const auto channel_count = static_cast<float>(channels);
  for (size_t f = 0; f < n; ++f) {
    const float* frame = frames + f * static_cast<size_t>(channels);
    float sum = 0.0f;
    for (int c = 0; c < channels; ++c) sum += frame[c];
    mono[f] = channels == 1 ? sum : sum / channel_count;
  }
}

/// Bits per sample of a FLAC file as libsndfile reports it; 0 for subtypes the direct libFLAC path leaves to
/// libsndfile.
int flac_bits(int format) {
  if ((format & SF_FORMAT_TYPEMASK) != SF_FORMAT_FLAC) return 0;
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return 8;
    case SF_FORMAT_PCM_16: return 16;
    case SF_FORMAT_PCM_24: return 24;
    default: return 0;
  }
}

/// Decodes frames [start, start + wanted) of a FLAC file, downmixed on the fly, and hands the mono samples to
/// `sink` in blocks of kReadBlockFrames (the last one shorter): the same blocks, and the same float32 values, as
/// sf_readf_float followed by downmix() (libsndfile's FLAC reader converts each sample as int * (1 / 2^(bits-1))
/// in float32, an exact scaling; the channels are then summed in order from 0.0f and divided by the channel
/// count). Skips libsndfile's interleaved copy and its per-sample conversion loop.
/// From the first frame, the file is decoded by decode_flac_frames (flac_reader.h); when that gives up (damage, or
/// something it leaves to libFLAC), `restart` is called (the sink's consumer starts over) and libFLAC decodes the
/// file, reporting the damage. With an offset, libFLAC seeks and decodes.
/// Returns the frames decoded; `error` gets libFLAC's description of the first decoding error ("" if none).
template <class Sink, class Restart>
sf_count_t decode_flac_mono(const std::string& path, int channels, int bits, sf_count_t start, sf_count_t wanted,
                            std::string& error, Sink&& sink, Restart&& restart) {
  struct State {
    int channels;
    float norm;
    sf_count_t wanted;
    sf_count_t done = 0;
    std::vector<float> mono;
    size_t fill = 0;
    std::string error;
    std::remove_reference_t<Sink>* sink;

    /// One decoded frame (channel c's samples in buffer[c]); false when decoding should stop.
    bool consume(const int32_t* const* buffer, unsigned blocksize, unsigned frame_channels) {
      if (static_cast<int>(frame_channels) != channels) {
        error = "a frame has " + std::to_string(frame_channels) + " channels, the stream " + std::to_string(channels);
        return false;
      }
      auto left = static_cast<size_t>(std::min<sf_count_t>(blocksize, wanted - done));
      size_t at = 0;
      while (left > 0) {
        const size_t n = std::min(left, mono.size() - fill);
        float* m = mono.data() + fill;
        if (channels == 2) {
          const int32_t* l = buffer[0] + at;
          const int32_t* r = buffer[1] + at;
          for (size_t i = 0; i < n; ++i) {
            float sum = 0.0f;
            sum += static_cast<float>(l[i]) * norm;
            sum += static_cast<float>(r[i]) * norm;
            m[i] = sum / 2.0f;
          }
        } else {
          const auto channel_count = static_cast<float>(channels);
          for (size_t i = 0; i < n; ++i) {
            float sum = 0.0f;
            for (int c = 0; c < channels; ++c) sum += static_cast<float>(buffer[c][at + i]) * norm;
            m[i] = channels == 1 ? sum : sum / channel_count;
          }
        }
        fill += n;
        at += n;
        left -= n;
        done += static_cast<sf_count_t>(n);
        if (fill == mono.size()) {
          (*sink)(mono.data(), fill);
          fill = 0;
        }
      }
      return done < wanted;
    }
  };
  State st{channels, 1.0f / static_cast<float>(1 << (bits - 1)), wanted, 0, {}, 0, {}, &sink};
  st.mono.resize(static_cast<size_t>(kReadBlockFrames));
  if (start == 0) {
    const std::string why = decode_flac_frames(path, [&st](const int32_t* const* buffer, int blocksize) {
      return st.consume(buffer, static_cast<unsigned>(blocksize), static_cast<unsigned>(st.channels));
    });
    if (why.empty() && st.error.empty() && st.done == st.wanted) {
      if (st.fill > 0) sink(st.mono.data(), st.fill);
      error.clear();
      return st.done;
    }
    st.done = 0;  // libFLAC decodes it again, and says what is wrong with it
    st.fill = 0;
    st.error.clear();
    restart();
  }
  auto write = [](const FLAC__StreamDecoder*, const FLAC__Frame* frame, const FLAC__int32* const buffer[],
                  void* client) -> FLAC__StreamDecoderWriteStatus {
    State& s = *static_cast<State*>(client);
    return s.consume(buffer, frame->header.blocksize, frame->header.channels)
               ? FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE
               : FLAC__STREAM_DECODER_WRITE_STATUS_ABORT;
  };
  auto on_error = [](const FLAC__StreamDecoder*, FLAC__StreamDecoderErrorStatus status, void* client) {
    State& s = *static_cast<State*>(client);
    if (s.error.empty()) s.error = FLAC__StreamDecoderErrorStatusString[status];
  };
  struct DecoderDeleter {
    void operator()(FLAC__StreamDecoder* d) const { FLAC__stream_decoder_delete(d); }
  };
  std::unique_ptr<FLAC__StreamDecoder, DecoderDeleter> decoder(FLAC__stream_decoder_new());
  if (!decoder) throw Error(path + ": libFLAC could not allocate a decoder");
  if (FLAC__stream_decoder_init_file(decoder.get(), path.c_str(), write, nullptr, on_error, &st) !=
      FLAC__STREAM_DECODER_INIT_STATUS_OK)
    throw InputError(path, "libFLAC cannot open the stream that libsndfile opened");
  if (start > 0 && !FLAC__stream_decoder_seek_absolute(decoder.get(), static_cast<FLAC__uint64>(start)))
    throw InputError(path, std::string("cannot seek to offset (libFLAC: ") +
                               FLAC__StreamDecoderStateString[FLAC__stream_decoder_get_state(decoder.get())] + ")");
  // A seek decodes the target's frame already (the write callback gets it from the target sample on).
  while (st.done < st.wanted && st.error.empty()) {
    if (!FLAC__stream_decoder_process_single(decoder.get())) break;
    const FLAC__StreamDecoderState state = FLAC__stream_decoder_get_state(decoder.get());
    if (state == FLAC__STREAM_DECODER_END_OF_STREAM || state == FLAC__STREAM_DECODER_ABORTED) break;
  }
  if (st.fill > 0) sink(st.mono.data(), st.fill);
  error = st.error;
  return st.done;
}

}  // namespace

const std::vector<std::string>& audio_extensions() {
  static const std::vector<std::string> extensions = {".wav", ".wave", ".flac", ".ogg", ".oga",
                                                      ".opus", ".mp3", ".aif", ".aiff"};
  return extensions;
}

AudioInfo probe_audio(const std::string& path) {
  SF_INFO sfinfo{};
  SndfilePtr file = open_for_reading(path, sfinfo);
  return to_info(sfinfo);
}

MonoAudio load_audio(const std::string& path, const LoadOptions& options) {
  check_options(options);
  SF_INFO sfinfo{};
  SndfilePtr file = open_for_reading(path, sfinfo);
  MonoAudio out;
  out.info = to_info(sfinfo);
  const int sr = sfinfo.samplerate;
  const int channels = sfinfo.channels;
  if (sr < kMinNativeRate || sr > kMaxNativeRate)
    throw InputError(path, "unsupported sample rate " + std::to_string(sr) + " Hz (supported: " +
                               std::to_string(kMinNativeRate) + " to " + std::to_string(kMaxNativeRate) + " Hz)");
  if (sfinfo.frames <= 0) throw InputError(path, "contains no audio samples (zero length)");

  // librosa __soundfile_load: seek(int(offset * sr_native)); read(frames=int(duration * sr_native)).
  const auto start = static_cast<sf_count_t>(options.offset_s * sr);
  if (start >= sfinfo.frames)
    throw InputError(path, "offset " + std::to_string(options.offset_s) + " s is at or past the end (" +
                               std::to_string(static_cast<double>(sfinfo.frames) / sr) + " s)");
  if (start > 0 && sf_seek(file.get(), start, SEEK_SET) < 0)
    throw InputError(path, std::string("cannot seek to offset: ") + sf_strerror(file.get()));
  sf_count_t wanted = sfinfo.frames - start;
  if (options.duration_s > 0.0) wanted = std::min(wanted, static_cast<sf_count_t>(options.duration_s * sr));
  if (wanted <= 0) throw InputError(path, "duration " + std::to_string(options.duration_s) + " s selects no samples");

  // Decode, downmix and resample block by block into the output, which is sized once from the frame count: the
  // samples are written once, and only blocks of a few tens of KiB are reused in between (issue 16).
  // Ogg streams without an end-of-stream page report an unknown length (SF_COUNT_MAX): read to the end, growing.
  const bool length_known = sfinfo.frames != SF_COUNT_MAX;
  const int target = options.sample_rate == 0 ? sr : options.sample_rate;
  auto resampler = std::make_unique<StreamingResampler>(sr, target);
  std::vector<float>& samples = out.samples;
  if (length_known) samples.reserve(static_cast<size_t>(target == sr ? wanted : resampled_length(wanted, sr, target)));
  sf_count_t done = 0;
  if (const int bits = flac_bits(sfinfo.format); bits > 0 && length_known) {
    // FLAC (the common compressed case): libFLAC directly, int -> float fused with the downmix.
    file.reset();
    std::string error;
    done = decode_flac_mono(
        path, channels, bits, start, wanted, error,
        [&](const float* mono, size_t count) { resampler->push(mono, static_cast<int64_t>(count), samples); },
        [&] {  // decoding starts over
          samples.clear();
          resampler = std::make_unique<StreamingResampler>(sr, target);
        });
    if (!error.empty())
      throw InputError(path, "corrupt audio data after " + std::to_string(start + done) + " frames (libFLAC: " +
                                 error + ")");
    if (done < wanted)
      throw InputError(path, "truncated or corrupt: header declares " + std::to_string(sfinfo.frames) +
                                 " frames but decoding stopped at frame " + std::to_string(start + done));
    resampler->finish(samples);
    out.sample_rate = target;
    return out;
  }
  std::vector<float> block(static_cast<size_t>(kReadBlockFrames) * static_cast<size_t>(channels));
  std::vector<float> mono(static_cast<size_t>(kReadBlockFrames));
  while (done < wanted) {
    const sf_count_t ask = std::min(kReadBlockFrames, wanted - done);
    const sf_count_t got = sf_readf_float(file.get(), block.data(), ask);
    if (got <= 0) break;
    const auto count = static_cast<size_t>(got);
    if (!all_finite(block.data(), count * static_cast<size_t>(channels))) {
      const size_t at = first_non_finite(block.data(), count * static_cast<size_t>(channels));
      throw InputError(path, "non-finite sample (NaN or Inf) at frame " +
                                 std::to_string(start + done + static_cast<sf_count_t>(at / channels)) + ", channel " +
                                 std::to_string(at % static_cast<size_t>(channels)));
    }
    downmix(block.data(), count, channels, mono.data());
    resampler->push(mono.data(), got, samples);
    done += got;
    if (got < ask) break;
  }
  // libsndfile reports decoder trouble as a short read with sf_error set, not as a failed call.
  if (sf_error(file.get()) != SF_ERR_NO_ERROR)
    throw InputError(path, "corrupt audio data after " + std::to_string(start + done) + " frames (libsndfile: " +
                               sf_strerror(file.get()) + ")");
  if (length_known && done < wanted)
    throw InputError(path, "truncated or corrupt: header declares " + std::to_string(sfinfo.frames) +
                               " frames but decoding stopped at frame " + std::to_string(start + done));
  if (const std::string damage = damage_in_log(file.get()); !damage.empty())
    throw InputError(path, "truncated or corrupt (libsndfile: \"" + damage + "\")");
  if (done == 0) throw InputError(path, "contains no audio samples (zero length)");
  if (!length_known) out.info.native_frames = start + done;  // the header could not say; now we know
  resampler->finish(samples);
  out.sample_rate = target;
  return out;
}

void write_audio(const std::string& path, const float* samples, int64_t n, int sample_rate, int channels,
                 SampleEncoding encoding) {
  if (channels <= 0) throw UsageError(path + ": write_audio needs channels >= 1, got " + std::to_string(channels));
  if (sample_rate <= 0)
    throw UsageError(path + ": write_audio needs a positive sample rate, got " + std::to_string(sample_rate));
  if (n < 0 || n % channels != 0)
    throw UsageError(path + ": write_audio got " + std::to_string(n) + " samples, not a whole number of " +
                     std::to_string(channels) + "-channel frames");
  const WriteFormat wf = write_format_for(path, encoding);
  SF_INFO sfinfo{};
  sfinfo.samplerate = sample_rate;
  sfinfo.channels = channels;
  sfinfo.format = wf.format;
  if (!sf_format_check(&sfinfo))
    throw IoError(path + ": this libsndfile cannot write " + wf.name + " with " + std::to_string(channels) +
                  " channels at " + std::to_string(sample_rate) + " Hz");

  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path tmp = temporary_path_for(target);
  auto discard_tmp = [&tmp] {
    std::error_code ec;
    fs::remove(tmp, ec);
  };
  {
    SndfilePtr file(sf_open(tmp.c_str(), SFM_WRITE, &sfinfo));
    if (!file) {
      const std::string reason = sf_strerror(nullptr);
      discard_tmp();
      throw IoError(path + ": cannot open for writing: " + reason);
    }
    // Without clipping, libsndfile wraps out-of-range floats when converting to integers.
    sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const sf_count_t frames = n / channels;
    const sf_count_t written = sf_writef_float(file.get(), samples, frames);
    if (written != frames) {
      const std::string reason = sf_strerror(file.get());
      file.reset();
      discard_tmp();
      throw IoError(path + ": wrote " + std::to_string(written) + " of " + std::to_string(frames) +
                    " frames: " + reason);
    }
    // sf_close finalises headers (and flushes encoders); its status is the last chance to see a failure.
    const int close_status = sf_close(file.release());
    if (close_status != 0) {
      discard_tmp();
      throw IoError(path + ": closing the encoder failed: " + sf_error_number(close_status));
    }
  }
  commit_atomic(tmp, target);
}

}  // namespace songlines::audio
