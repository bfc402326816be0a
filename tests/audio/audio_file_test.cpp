// load_audio / probe_audio / write_audio: every format libsndfile here can write, downmix, native rates,
// offset/duration, and every bad input of issue 2 as an InputError naming the file. Fixtures are seeded
// synthetic signals written with libsndfile into a TempDir by the test itself.
#include "audio/audio_file.h"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "audio/resample.h"
#include "core/error.h"
#include "support/file_bytes.h"
#include "support/test_support.h"

namespace songlines::audio {
namespace {

namespace fs = std::filesystem;
using songlines::testing::MaxAbsNear;
using songlines::testing::RelativeL2Near;
using songlines::testing::read_bytes;
using songlines::testing::TempDir;
using songlines::testing::write_bytes;

/// A tone pair below 4 kHz: survives every codec and every rate down to 8 kHz.
std::vector<float> tones(int rate, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    y[static_cast<size_t>(i)] = static_cast<float>(0.4 * std::sin(2 * std::numbers::pi * 440.0 * t) +
                                                   0.2 * std::sin(2 * std::numbers::pi * 1000.0 * t));
  }
  return y;
}

std::vector<float> seeded_noise(int64_t n, unsigned seed, float sd = 0.2f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> y(static_cast<size_t>(n));
  for (float& v : y) v = std::clamp(dist(rng), -0.99f, 0.99f);
  return y;
}

std::vector<double> to_double(const std::vector<float>& y, size_t begin = 0, size_t end = SIZE_MAX) {
  end = std::min(end, y.size());
  return std::vector<double>(y.begin() + static_cast<std::ptrdiff_t>(begin), y.begin() + static_cast<std::ptrdiff_t>(end));
}

/// Writes interleaved samples with raw libsndfile in the given format; false when this libsndfile cannot.
bool write_fixture(const fs::path& path, int format, int rate, int channels, const std::vector<float>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  if (!sf_format_check(&info)) return false;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) return false;
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  const sf_count_t written = sf_writef_float(f, interleaved.data(), frames);
  sf_close(f);
  return written == frames;
}


/// Asserts load_audio throws InputError whose message names the file; prints the reason for the log.
void expect_input_error(const fs::path& path, const LoadOptions& options = {}) {
  try {
    load_audio(path.string(), options);
    ADD_FAILURE() << path << ": expected InputError, got a successful load";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos)
        << "message does not name the file: " << e.what();
    EXPECT_FALSE(e.reason().empty());
    std::cout << "  InputError: " << e.what() << "\n";
  }
}

// ---- formats ------------------------------------------------------------------------------------------------

struct FormatCase {
  std::string name;
  std::string ext;
  int format;
  int rate;
  double rel_l2_tolerance;  ///< decoded vs written, at the native rate (best alignment for lossy codecs)
  int max_lag;              ///< codec delay the decoder may leave in (0: sample-exact alignment required)
  int64_t length_slack;     ///< frames the decoded length may differ by (lossy framing)
};

class LoadFormat : public ::testing::TestWithParam<FormatCase> {};

TEST_P(LoadFormat, DecodesToTheWrittenSignalAndResamplesWithLibrosasLength) {
  const FormatCase& fc = GetParam();
  TempDir dir;
  const fs::path path = dir / ("tones" + fc.ext);
  const int64_t n = fc.rate;  // 1 s
  const auto x = tones(fc.rate, n);
  if (!write_fixture(path, fc.format, fc.rate, 1, x))
    GTEST_SKIP() << "this libsndfile (" << sf_version_string() << ") cannot write " << fc.name
                 << " (sf_format_check/sf_open failed), so there is no fixture to decode";

  const AudioInfo info = probe_audio(path.string());
  EXPECT_EQ(info.native_sample_rate, fc.rate);
  EXPECT_EQ(info.channels, 1);

  LoadOptions native;
  native.sample_rate = 0;
  const MonoAudio a = load_audio(path.string(), native);
  EXPECT_EQ(a.sample_rate, fc.rate);
  EXPECT_NEAR(static_cast<double>(a.samples.size()), static_cast<double>(n), static_cast<double>(fc.length_slack))
      << fc.name;
  // Best alignment within +-max_lag (decoded[i + lag] ~ x[i]), compared away from the codec's edge effects.
  const size_t edge = static_cast<size_t>(fc.rate / 20) + static_cast<size_t>(fc.max_lag);
  const size_t m = std::min(a.samples.size(), x.size());
  ASSERT_GT(m, 4 * edge);
  int best_lag = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int lag = -fc.max_lag; lag <= fc.max_lag; ++lag) {
    double num = 0, den = 0;
    for (size_t i = edge; i + edge < m; ++i) {
      const double d = a.samples[static_cast<size_t>(static_cast<std::ptrdiff_t>(i) + lag)] - x[i];
      num += d * d;
      den += static_cast<double>(x[i]) * x[i];
    }
    if (num / den < best_err) best_err = num / den, best_lag = lag;
  }
  std::vector<double> got, want;
  for (size_t i = edge; i + edge < m; ++i) {
    got.push_back(a.samples[static_cast<size_t>(static_cast<std::ptrdiff_t>(i) + best_lag)]);
    want.push_back(x[i]);
  }
  std::cout << "  " << fc.name << ": " << a.samples.size() << " frames decoded (" << n << " written), lag "
            << best_lag << ", relative L2 " << std::sqrt(best_err) << "\n";
  EXPECT_TRUE(RelativeL2Near(got, want, fc.rel_l2_tolerance, fc.name));

  // Default load = the native decode resampled by librosa's rule.
  const MonoAudio r = load_audio(path.string());
  EXPECT_EQ(r.sample_rate, kDefaultSampleRate);
  const auto nd = static_cast<int64_t>(a.samples.size());
  EXPECT_EQ(static_cast<int64_t>(r.samples.size()), (nd * kDefaultSampleRate + fc.rate - 1) / fc.rate);
  EXPECT_TRUE(MaxAbsNear(to_double(r.samples), to_double(resample(a.samples, fc.rate, kDefaultSampleRate)), 0.0,
                         fc.name + " load vs resample"));
}

// Tolerances: PCM16 quantisation 2^-15 on a 0.3 RMS signal ~ 1e-4 relative; PCM24 ~ 3e-7; float exact.
// Lossy codecs at libsndfile's default quality on two steady tones: a few percent at most.
INSTANTIATE_TEST_SUITE_P(
    Formats, LoadFormat,
    ::testing::Values(FormatCase{"WAV_PCM16", ".wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2e-4, 0, 0},
                      FormatCase{"WAV_PCM24", ".wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 48000, 1e-6, 0, 0},
                      FormatCase{"WAV_FLOAT", ".wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 0.0, 0, 0},
                      FormatCase{"FLAC_PCM16", ".flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2e-4, 0, 0},
                      FormatCase{"OGG_VORBIS", ".ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 0.05, 64, 0},
                      FormatCase{"OGG_OPUS", ".opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 0.05, 400, 1000},
                      FormatCase{"MP3", ".mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 0.05, 2000,
                                 3000}),
    [](const auto& info) { return info.param.name; });

// ---- downmix, rates, offset/duration -------------------------------------------------------------------------

TEST(LoadAudio, DownmixIsTheMeanOverChannels) {
  for (int channels : {2, 6}) {
    TempDir dir;
    const fs::path path = dir / ("multi" + std::to_string(channels) + ".wav");
    const int64_t frames = 22050;
    const auto interleaved = seeded_noise(frames * channels, 100 + static_cast<unsigned>(channels));
    ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, channels, interleaved));
    const MonoAudio a = load_audio(path.string());  // 22050 native: no resampling
    EXPECT_EQ(a.info.channels, channels);
    ASSERT_EQ(static_cast<int64_t>(a.samples.size()), frames);
    std::vector<double> mean(static_cast<size_t>(frames), 0.0);
    for (int64_t f = 0; f < frames; ++f) {
      for (int c = 0; c < channels; ++c) mean[static_cast<size_t>(f)] += interleaved[static_cast<size_t>(f * channels + c)];
      mean[static_cast<size_t>(f)] /= channels;
    }
    EXPECT_TRUE(MaxAbsNear(to_double(a.samples), mean, 1e-7, std::to_string(channels) + "-channel mean"));
  }
}

TEST(LoadAudio, EveryNativeRateGoesTo22050WithCeilLengthAndTheRightTone) {
  for (int rate : {8000, 16000, 44100, 48000, 96000, 192000}) {
    for (int channels : {1, 6}) {
      TempDir dir;
      const fs::path path = dir / ("rate" + std::to_string(rate) + ".wav");
      const int64_t n = rate * 3 / 4 + 17;  // not a whole number of output samples
      const auto mono = tones(rate, n);
      std::vector<float> interleaved;
      for (float v : mono) interleaved.insert(interleaved.end(), static_cast<size_t>(channels), v);
      ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, channels, interleaved));
      const MonoAudio a = load_audio(path.string());
      const int64_t expected_len = (n * 22050 + rate - 1) / rate;
      ASSERT_EQ(static_cast<int64_t>(a.samples.size()), expected_len) << rate << " Hz";
      EXPECT_EQ(a.info.native_sample_rate, rate);
      EXPECT_EQ(a.info.native_frames, n);
      const auto analytic = tones(22050, expected_len);
      const size_t edge = 2205;
      EXPECT_TRUE(RelativeL2Near(to_double(a.samples, edge, a.samples.size() - edge),
                                 to_double(analytic, edge, analytic.size() - edge), 1e-4,
                                 std::to_string(rate) + " Hz x" + std::to_string(channels)));
    }
  }
}

// load_audio decodes, downmixes and resamples block by block into a buffer sized once; the samples are the
// ones of the whole-signal formula (read everything, librosa.to_mono, resample()) bit for bit, on lengths that
// end mid-block, with an offset and duration, in stereo FLAC at 44.1 kHz (the common case), 24-bit mono and 8-bit
// 3-channel FLAC, and 6-channel WAV.
TEST(LoadAudio, BlockwiseDecodingEqualsTheWholeSignalFormulaBitForBit) {
  struct Case {
    std::string name;
    int format, rate, channels;
    int64_t frames;
  };
  // FLAC is decoded by libFLAC directly (int -> float fused with the downmix): its 8-, 16- and 24-bit cases are
  // compared with libsndfile's sf_readf_float here.
  const Case cases[] = {{"stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, 3 * 8192 + 4099},
                        {"mono24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 48000, 1, 3 * 8192 + 77},
                        {"three8.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_S8, 22050, 3, 2 * 8192 + 5},
                        {"six.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 6, 20011},
                        {"mono.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, 8192 * 2 + 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const auto interleaved = seeded_noise(c.frames * c.channels, 300 + static_cast<unsigned>(c.channels));
    ASSERT_TRUE(write_fixture(dir / c.name, c.format, c.rate, c.channels, interleaved));
    // What the file decodes to, all at once.
    SF_INFO info{};
    SNDFILE* f = sf_open((dir / c.name).c_str(), SFM_READ, &info);
    ASSERT_NE(f, nullptr);
    std::vector<float> decoded(static_cast<size_t>(c.frames * c.channels));
    ASSERT_EQ(sf_readf_float(f, decoded.data(), c.frames), c.frames);
    sf_close(f);
    for (const auto& [offset, duration] : {std::pair{0.0, 0.0}, std::pair{0.1, 0.3}}) {
      const auto start = static_cast<int64_t>(offset * c.rate);
      const int64_t count = duration > 0 ? static_cast<int64_t>(duration * c.rate) : c.frames - start;
      std::vector<float> mono(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        float sum = 0.0f;  // librosa.to_mono: np.mean over channels in float32
        for (int ch = 0; ch < c.channels; ++ch) sum += decoded[static_cast<size_t>((start + i) * c.channels + ch)];
        mono[static_cast<size_t>(i)] = c.channels == 1 ? sum : sum / static_cast<float>(c.channels);
      }
      const std::vector<float> expected = resample(mono, c.rate, 22050);
      LoadOptions o;
      o.offset_s = offset;
      o.duration_s = duration;
      const MonoAudio a = load_audio((dir / c.name).string(), o);
      ASSERT_EQ(a.samples.size(), expected.size()) << "offset " << offset;
      EXPECT_EQ(a.samples.capacity(), expected.size()) << "the output is sized once, from the frame count";
      EXPECT_EQ(std::memcmp(a.samples.data(), expected.data(), expected.size() * sizeof(float)), 0)
          << "offset " << offset << ": worst difference "
          << MaxAbsNear(to_double(a.samples), to_double(expected), 0.0, "blockwise vs whole").message();
    }
  }
}

TEST(LoadAudio, OffsetAndDurationSelectLibrosasFrames) {
  TempDir dir;
  const fs::path path = dir / "noise.wav";
  const auto x = seeded_noise(2 * 22050, 7);
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, x));
  LoadOptions o;
  o.offset_s = 0.5;
  o.duration_s = 0.25;
  const MonoAudio a = load_audio(path.string(), o);
  // librosa: start = int(0.5 * 22050) = 11025, frames = int(0.25 * 22050) = 5512.
  ASSERT_EQ(a.samples.size(), 5512u);
  EXPECT_TRUE(MaxAbsNear(to_double(a.samples), to_double(x, 11025, 11025 + 5512), 0.0, "offset/duration"));
  o.duration_s = 10.0;  // past the end: reads to the end
  EXPECT_EQ(load_audio(path.string(), o).samples.size(), x.size() - 11025);
  o.offset_s = 3.0;
  expect_input_error(path, o);
}

// ---- bad inputs ---------------------------------------------------------------------------------------------

TEST(LoadAudioErrors, MissingFile) {
  TempDir dir;
  expect_input_error(dir / "missing.wav");
  EXPECT_THROW(probe_audio((dir / "missing.wav").string()), InputError);
}

TEST(LoadAudioErrors, DirectoryNamedWav) {
  TempDir dir;
  fs::create_directory(dir / "x.wav");
  expect_input_error(dir / "x.wav");
}

TEST(LoadAudioErrors, EmptyFile) {
  TempDir dir;
  write_bytes(dir / "empty.wav", "");
  expect_input_error(dir / "empty.wav");
}

TEST(LoadAudioErrors, TextFileRenamedWav) {
  TempDir dir;
  write_bytes(dir / "notes.wav", "This is a plain text file, not audio.\nSecond line.\n");
  expect_input_error(dir / "notes.wav");
  write_bytes(dir / "notes.mp3", std::string(4096, 'a'));
  expect_input_error(dir / "notes.mp3");
}

TEST(LoadAudioErrors, ZeroLengthAudio) {
  TempDir dir;
  ASSERT_TRUE(write_fixture(dir / "zero.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1, {}));
  expect_input_error(dir / "zero.wav");
}

TEST(LoadAudioErrors, NonFiniteSamples) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    TempDir dir;
    auto x = seeded_noise(8000, 5);
    x[4321] = bad;
    ASSERT_TRUE(write_fixture(dir / "nonfinite.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x));
    expect_input_error(dir / "nonfinite.wav");
  }
}

TEST(LoadAudioErrors, UnsupportedNativeRate) {
  for (int rate : {4000, 7999, 192001, 384000}) {
    TempDir dir;
    const fs::path path = dir / ("rate" + std::to_string(rate) + ".wav");
    ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, rate, 1, seeded_noise(rate / 10, 9)));
    expect_input_error(path);
  }
}

// Policy (docs/audio.md): a file whose header declares more audio than it holds is rejected as truncated,
// not decoded partially: a half-downloaded track would otherwise enter the shards as a shorter track.
TEST(LoadAudioErrors, TruncatedWav) {
  TempDir dir;
  const fs::path path = dir / "truncated.wav";
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, seeded_noise(2 * 44100, 3)));
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_input_error(path);
}

TEST(LoadAudioErrors, TruncatedFlac) {
  TempDir dir;
  const fs::path path = dir / "truncated.flac";
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 1, seeded_noise(2 * 44100, 4)));
  fs::resize_file(path, fs::file_size(path) * 6 / 10);
  expect_input_error(path);
}

/// Overwrites a stretch in the middle of the file with seeded garbage.
void corrupt_middle(const fs::path& path, unsigned seed) {
  std::string bytes = read_bytes(path);
  std::mt19937 rng(seed);
  const size_t begin = bytes.size() / 2, len = std::min<size_t>(4096, bytes.size() / 8);
  for (size_t i = begin; i < begin + len; ++i) bytes[i] = static_cast<char>(rng() & 0xFF);
  write_bytes(path, bytes);
}

TEST(LoadAudioErrors, CorruptFlacMidStream) {
  TempDir dir;
  const fs::path path = dir / "corrupt.flac";
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 1, seeded_noise(3 * 44100, 12)));
  corrupt_middle(path, 1);
  expect_input_error(path);
}

TEST(LoadAudioErrors, CorruptOggMidStream) {
  TempDir dir;
  const fs::path path = dir / "corrupt.ogg";
  if (!write_fixture(path, SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 1, tones(44100, 3 * 44100)))
    GTEST_SKIP() << "this libsndfile cannot write OGG/Vorbis";
  corrupt_middle(path, 2);
  expect_input_error(path);
}

// Lossy streams cut short or damaged mid-stream. libsndfile reports these as short reads (Xing/granule frame
// counts) or only in its log (Ogg holes, a missing end-of-stream page); both must become InputErrors.
enum class Damage { kTruncate, kCorruptMiddle };
struct DamageCase {
  std::string name;
  std::string ext;
  int format;
  int rate;
  Damage damage;
};
class LoadDamaged : public ::testing::TestWithParam<DamageCase> {};

TEST_P(LoadDamaged, IsAnInputError) {
  const DamageCase& dc = GetParam();
  TempDir dir;
  const fs::path path = dir / ("damaged" + dc.ext);
  if (!write_fixture(path, dc.format, dc.rate, 1, seeded_noise(3 * dc.rate, 31)))
    GTEST_SKIP() << "this libsndfile (" << sf_version_string() << ") cannot write " << dc.name;
  ASSERT_NO_THROW(load_audio(path.string())) << "the undamaged file must load";
  if (dc.damage == Damage::kTruncate)
    fs::resize_file(path, fs::file_size(path) * 6 / 10);
  else
    corrupt_middle(path, 5);
  expect_input_error(path);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, LoadDamaged,
    ::testing::Values(DamageCase{"VorbisTruncated", ".ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, Damage::kTruncate},
                      DamageCase{"VorbisCorrupt", ".ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, Damage::kCorruptMiddle},
                      DamageCase{"OpusTruncated", ".opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, Damage::kTruncate},
                      DamageCase{"OpusCorrupt", ".opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, Damage::kCorruptMiddle},
                      DamageCase{"Mp3Truncated", ".mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, Damage::kTruncate},
                      DamageCase{"Mp3Corrupt", ".mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, Damage::kCorruptMiddle},
                      DamageCase{"FlacCorrupt", ".flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, Damage::kCorruptMiddle}),
    [](const auto& info) { return info.param.name; });

TEST(LoadAudioErrors, BadOptionsAreUsageErrors) {
  TempDir dir;
  const fs::path path = dir / "ok.wav";
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 1, seeded_noise(2205, 1)));
  LoadOptions o;
  o.offset_s = -1.0;
  EXPECT_THROW(load_audio(path.string(), o), UsageError);
  o = {};
  o.sample_rate = -5;
  EXPECT_THROW(load_audio(path.string(), o), UsageError);
}

// ---- probe / write ------------------------------------------------------------------------------------------

TEST(ProbeAudio, ReportsHeaderFields) {
  TempDir dir;
  const fs::path path = dir / "probe.flac";
  ASSERT_TRUE(write_fixture(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 48000, 2, seeded_noise(2 * 4800, 2)));
  const AudioInfo info = probe_audio(path.string());
  EXPECT_EQ(info.native_sample_rate, 48000);
  EXPECT_EQ(info.channels, 2);
  EXPECT_EQ(info.native_frames, 4800);
  EXPECT_EQ(info.format, "FLAC");
}

TEST(WriteAudio, RoundTripsAndLeavesNoTemporaryFiles) {
  TempDir dir;
  const auto x = seeded_noise(22050, 21);
  LoadOptions native;
  native.sample_rate = 0;

  write_audio((dir / "f.wav").string(), x.data(), static_cast<int64_t>(x.size()), 22050, 1, SampleEncoding::kFloat32);
  EXPECT_TRUE(MaxAbsNear(to_double(load_audio((dir / "f.wav").string(), native).samples), to_double(x), 0.0, "float"));

  write_audio((dir / "p.wav").string(), x.data(), static_cast<int64_t>(x.size()), 22050);
  EXPECT_TRUE(MaxAbsNear(to_double(load_audio((dir / "p.wav").string(), native).samples), to_double(x),
                         1.0 / 32767.0, "pcm16"));

  write_audio((dir / "p.flac").string(), x.data(), static_cast<int64_t>(x.size()), 22050);
  EXPECT_TRUE(MaxAbsNear(to_double(load_audio((dir / "p.flac").string(), native).samples), to_double(x),
                         1.0 / 32767.0, "flac"));

  // Overwrite in place: the new content replaces the old one completely.
  const std::vector<float> short_x(100, 0.25f);
  write_audio((dir / "f.wav").string(), short_x.data(), 100, 22050, 1, SampleEncoding::kFloat32);
  EXPECT_EQ(load_audio((dir / "f.wav").string(), native).samples, short_x);

  // Out-of-range floats clip instead of wrapping around in PCM16.
  const std::vector<float> loud = {2.0f, -2.0f, 0.5f};
  write_audio((dir / "loud.wav").string(), loud.data(), 3, 22050);
  const auto back = load_audio((dir / "loud.wav").string(), native).samples;
  EXPECT_GT(back[0], 0.99f);
  EXPECT_LT(back[1], -0.99f);

  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "leftover " << entry.path();
  EXPECT_THROW(write_audio((dir / "x.xyz").string(), x.data(), 10, 22050), UsageError);
  EXPECT_THROW(write_audio((dir / "odd.wav").string(), x.data(), 11, 22050, 2), UsageError);
}

TEST(AudioExtensions, ListsTheDecodedFormats) {
  const auto& ext = audio_extensions();
  for (const char* e : {".wav", ".flac", ".ogg", ".opus", ".mp3"})
    EXPECT_NE(std::find(ext.begin(), ext.end(), e), ext.end()) << e;
}

}  // namespace
}  // namespace songlines::audio
