// decode_flac_frames (src/audio/flac_reader.h) against libFLAC's own decoder: the same integers, frame by frame,
// on seeded files libFLAC's encoder writes with every predictor kind it uses (constant, verbatim, fixed, LPC of
// orders up to 32, wasted bits), every stereo decorrelation, 8/16/24-bit samples, 1 to 6 channels and odd block
// sizes; damaged files are refused with a reason, and load_audio then gives libFLAC's InputError.
#include "audio/flac_reader.h"

#include <FLAC/stream_decoder.h>
#include <FLAC/stream_encoder.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "core/error.h"
#include "support/file_bytes.h"
#include "support/test_support.h"

namespace songlines::audio {
namespace {

namespace fs = std::filesystem;
using songlines::testing::read_bytes;
using songlines::testing::TempDir;
using songlines::testing::write_bytes;

using Channels = std::vector<std::vector<int32_t>>;

struct EncodeCase {
  std::string name;
  int channels = 2;
  int bits = 16;
  int rate = 44100;
  unsigned level = 5;      ///< libFLAC compression level 0..8
  unsigned blocksize = 0;  ///< 0: the level's
  unsigned max_lpc_order = 0;  ///< 0: the level's; else overrides it (up to 32)
  int64_t frames = 20000;
  unsigned seed = 1;
};

/// Seeded music-like integers per channel: tones and noise, with stretches that make the encoder pick constant
/// (digital silence), verbatim (white noise at full scale) and wasted-bits (every sample a multiple of 8)
/// subframes, and channels correlated enough for mid/side.
Channels make_signal(const EncodeCase& c) {
  std::mt19937 rng(c.seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_int_distribution<int32_t> full(-(1 << (c.bits - 1)), (1 << (c.bits - 1)) - 1);
  const double peak = std::ldexp(1.0, c.bits - 1) - 1.0;
  Channels out(static_cast<size_t>(c.channels), std::vector<int32_t>(static_cast<size_t>(c.frames)));
  for (int64_t i = 0; i < c.frames; ++i) {
    const double t = static_cast<double>(i) / c.rate;
    const double common = 0.4 * std::sin(2 * std::numbers::pi * 220.0 * t) + 0.1 * std::sin(2 * std::numbers::pi * 3150.0 * t);
    const int64_t part = (i * 8) / c.frames;  // eight stretches
    const double shared_noise = 0.3 * noise(rng);
    for (int ch = 0; ch < c.channels; ++ch) {
      double v = common * (1.0 - 0.1 * ch) + 0.02 * noise(rng);
      if (part == 5) v = 0.6 * std::sin(2 * std::numbers::pi * 25.0 * t + ch);  // smooth: high fixed orders
      if (part == 7) v = shared_noise + (ch == 0 ? 0.5 * std::sin(2 * std::numbers::pi * 500.0 * t) : 0.0);
      int32_t x = static_cast<int32_t>(std::lround(std::clamp(v, -1.0, 1.0) * peak));
      if (part == 2) x = 0;                        // silence: constant subframes
      if (part == 4) x = full(rng);                // white noise: verbatim or high-order fits
      if (part == 6) x = (x / 8) * 8;              // wasted bits
      out[static_cast<size_t>(ch)][static_cast<size_t>(i)] = x;
    }
  }
  return out;
}

void encode(const fs::path& path, const EncodeCase& c, const Channels& x) {
  FLAC__StreamEncoder* e = FLAC__stream_encoder_new();
  ASSERT_NE(e, nullptr);
  FLAC__stream_encoder_set_channels(e, static_cast<unsigned>(c.channels));
  FLAC__stream_encoder_set_bits_per_sample(e, static_cast<unsigned>(c.bits));
  FLAC__stream_encoder_set_sample_rate(e, static_cast<unsigned>(c.rate));
  FLAC__stream_encoder_set_compression_level(e, c.level);
  if (c.blocksize) FLAC__stream_encoder_set_blocksize(e, c.blocksize);
  if (c.max_lpc_order) {
    FLAC__stream_encoder_set_max_lpc_order(e, c.max_lpc_order);
    FLAC__stream_encoder_set_do_exhaustive_model_search(e, true);
    FLAC__stream_encoder_set_streamable_subset(e, c.max_lpc_order <= 12);  // orders above 12 leave the subset
  }
  FLAC__stream_encoder_set_do_escape_coding(e, true);  // raw-bit partitions where they are shorter
  FLAC__stream_encoder_set_total_samples_estimate(e, static_cast<FLAC__uint64>(c.frames));
  ASSERT_EQ(FLAC__stream_encoder_init_file(e, path.c_str(), nullptr, nullptr), FLAC__STREAM_ENCODER_INIT_STATUS_OK);
  std::vector<const FLAC__int32*> ptrs;
  for (const auto& ch : x) ptrs.push_back(ch.data());
  ASSERT_TRUE(FLAC__stream_encoder_process(e, ptrs.data(), static_cast<unsigned>(c.frames)));
  ASSERT_TRUE(FLAC__stream_encoder_finish(e));
  FLAC__stream_encoder_delete(e);
}

/// What a frame of libFLAC's decoding used, by name: subframe kinds ("constant", "verbatim", "fixed0".."fixed4",
/// "lpc", "lpc>12", "lpc-wide"), "wasted", "escape" (a residual partition in raw bits), the channel assignment
/// ("left-side", "right-side", "mid-side").
void note_kinds(const FLAC__Frame* f, std::set<std::string>& kinds) {
  switch (f->header.channel_assignment) {
    case FLAC__CHANNEL_ASSIGNMENT_LEFT_SIDE: kinds.insert("left-side"); break;
    case FLAC__CHANNEL_ASSIGNMENT_RIGHT_SIDE: kinds.insert("right-side"); break;
    case FLAC__CHANNEL_ASSIGNMENT_MID_SIDE: kinds.insert("mid-side"); break;
    default: break;
  }
  for (unsigned c = 0; c < f->header.channels; ++c) {
    const FLAC__Subframe& sf = f->subframes[c];
    if (sf.wasted_bits > 0) kinds.insert("wasted");
    const FLAC__EntropyCodingMethod* residual = nullptr;
    unsigned order = 0;
    switch (sf.type) {
      case FLAC__SUBFRAME_TYPE_CONSTANT: kinds.insert("constant"); break;
      case FLAC__SUBFRAME_TYPE_VERBATIM: kinds.insert("verbatim"); break;
      case FLAC__SUBFRAME_TYPE_FIXED:
        kinds.insert("fixed" + std::to_string(sf.data.fixed.order));
        residual = &sf.data.fixed.entropy_coding_method;
        order = sf.data.fixed.order;
        break;
      case FLAC__SUBFRAME_TYPE_LPC:
        kinds.insert(sf.data.lpc.order > 12 ? "lpc>12" : "lpc");
        // The decoder sums in 64 bits when sample bits + precision + log2(order) > 32.
        if (f->header.bits_per_sample + sf.data.lpc.qlp_coeff_precision + 5 > 32) kinds.insert("lpc-wide");
        residual = &sf.data.lpc.entropy_coding_method;
        order = sf.data.lpc.order;
        break;
      default: break;
    }
    if (residual) {
      const auto& rice = residual->data.partitioned_rice;
      const unsigned escape = residual->type == FLAC__ENTROPY_CODING_METHOD_PARTITIONED_RICE ? 15u : 31u;
      for (unsigned p = 0; p < (1u << rice.order); ++p)
        if (rice.contents->parameters[p] == escape) kinds.insert("escape");
    }
    (void)order;
  }
}

/// The whole file through libFLAC's decoder; what its frames used goes into kinds.
Channels decode_with_libflac(const fs::path& path, std::set<std::string>* kinds = nullptr) {
  struct Client {
    Channels ch;
    bool error = false;
    std::set<std::string>* kinds;
  } client{{}, false, kinds};
  auto write = [](const FLAC__StreamDecoder*, const FLAC__Frame* f, const FLAC__int32* const b[],
                  void* p) -> FLAC__StreamDecoderWriteStatus {
    auto& cl = *static_cast<Client*>(p);
    cl.ch.resize(f->header.channels);
    for (unsigned c = 0; c < f->header.channels; ++c) cl.ch[c].insert(cl.ch[c].end(), b[c], b[c] + f->header.blocksize);
    if (cl.kinds) note_kinds(f, *cl.kinds);
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
  };
  auto err = [](const FLAC__StreamDecoder*, FLAC__StreamDecoderErrorStatus, void* p) {
    static_cast<Client*>(p)->error = true;
  };
  FLAC__StreamDecoder* d = FLAC__stream_decoder_new();
  EXPECT_EQ(FLAC__stream_decoder_init_file(d, path.c_str(), write, nullptr, err, &client),
            FLAC__STREAM_DECODER_INIT_STATUS_OK);
  EXPECT_TRUE(FLAC__stream_decoder_process_until_end_of_stream(d));
  FLAC__stream_decoder_delete(d);
  EXPECT_FALSE(client.error);
  return client.ch;
}

/// The whole file through decode_flac_frames; why it stopped in `why`, its STREAMINFO in `info`.
Channels decode_with_ours(const fs::path& path, std::string& why, FlacStreamInfo* info = nullptr) {
  FlacStreamInfo local;
  FlacStreamInfo& si = info ? *info : local;
  Channels out;
  why = decode_flac_frames(
      path.string(),
      [&](const int32_t* const* ch, int blocksize) {
        out.resize(static_cast<size_t>(si.channels));  // si is read before the first frame
        for (size_t c = 0; c < out.size(); ++c) out[c].insert(out[c].end(), ch[c], ch[c] + blocksize);
        return true;
      },
      &si);
  return out;
}

/// First index where two decodes differ, for the failure message ("" when equal).
std::string first_difference(const Channels& a, const Channels& b) {
  if (a.size() != b.size()) return "channel counts " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (size_t c = 0; c < a.size(); ++c) {
    if (a[c].size() != b[c].size())
      return "channel " + std::to_string(c) + ": " + std::to_string(a[c].size()) + " vs " + std::to_string(b[c].size()) +
             " samples";
    for (size_t i = 0; i < a[c].size(); ++i)
      if (a[c][i] != b[c][i])
        return "channel " + std::to_string(c) + " sample " + std::to_string(i) + ": " + std::to_string(a[c][i]) +
               " vs " + std::to_string(b[c][i]);
  }
  return "";
}

// Every encoding below decodes to libFLAC's samples; together they use every subframe kind, fixed order, stereo
// decorrelation, wasted bits, escaped partitions and 64-bit LPC sums (checked from libFLAC's own view of the
// frames, so the list cannot silently stop covering them).
TEST(FlacReader, SameSamplesAsLibflacOnEveryEncoding) {
  const EncodeCase cases[] = {
      {"stereo16_level5", 2, 16, 44100, 5, 0, 0, 50000, 1},
      {"stereo16_level8", 2, 16, 44100, 8, 0, 0, 50000, 2},
      {"stereo16_level0", 2, 16, 44100, 0, 0, 0, 30000, 3},  // fixed predictors only
      {"stereo16_level2_loose", 2, 16, 48000, 2, 0, 0, 30000, 4},
      {"stereo24_level8", 2, 24, 96000, 8, 0, 0, 40000, 5},
      {"stereo24_level0", 2, 24, 44100, 0, 0, 0, 30000, 14},  // fixed predictors on quiet quantisation noise
      {"mono8", 1, 8, 22050, 5, 0, 0, 20011, 6},
      {"mono24", 1, 24, 48000, 5, 0, 0, 20011, 7},
      {"three16", 3, 16, 44100, 5, 0, 0, 12345, 8},
      {"six24", 6, 24, 48000, 8, 0, 0, 9000, 9},
      {"stereo16_block192", 2, 16, 44100, 5, 192, 0, 10000, 10},    // 8-bit block size code
      {"stereo16_block1000", 2, 16, 44100, 5, 1000, 0, 10000, 11},  // 16-bit block size code
      {"stereo16_order32", 2, 16, 44100, 8, 4096, 32, 20000, 12},   // orders above 12
      {"stereo24_order32", 2, 24, 44100, 8, 4096, 32, 20000, 13}};
  std::set<std::string> kinds;
  for (const EncodeCase& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const fs::path path = dir / (c.name + ".flac");
    const Channels x = make_signal(c);
    encode(path, c, x);
    const Channels ref = decode_with_libflac(path, &kinds);
    ASSERT_EQ(first_difference(ref, x), "") << "libFLAC round trip";  // the encoder is lossless
    FlacStreamInfo info;
    std::string why;
    const Channels ours = decode_with_ours(path, why, &info);
    EXPECT_EQ(why, "");
    EXPECT_EQ(info.channels, c.channels);
    EXPECT_EQ(info.bits_per_sample, c.bits);
    EXPECT_EQ(info.sample_rate, c.rate);
    EXPECT_EQ(info.total_samples, c.frames);
    EXPECT_EQ(first_difference(ours, ref), "");
  }
  // (fixed order 4 and escaped partitions, which libFLAC 1.4's encoder does not write here: HandBuiltFrame below.)
  for (const char* kind : {"constant", "verbatim", "fixed0", "fixed1", "fixed2", "fixed3", "lpc", "lpc>12", "lpc-wide",
                           "wasted", "left-side", "right-side", "mid-side"})
    EXPECT_TRUE(kinds.count(kind)) << "no encoding used " << kind;
}


/// MSB-first bit writer with the format's two CRCs computed bit by bit (a plain reference for the reader's tables).
class BitWriter {
 public:
  void put(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) {
      if (bits_ % 8 == 0) bytes_.push_back(0);
      if ((v >> i) & 1) bytes_.back() = static_cast<char>(bytes_.back() | (0x80 >> (bits_ % 8)));
      ++bits_;
    }
  }
  void put_signed(int64_t v, int n) { put(static_cast<uint64_t>(v) & ((uint64_t{1} << n) - 1), n); }
  void rice(int32_t v, int k) {  // zigzag, unary quotient, k-bit remainder
    const uint32_t u = v >= 0 ? static_cast<uint32_t>(v) << 1 : (static_cast<uint32_t>(-(v + 1)) << 1) | 1u;
    for (uint32_t q = u >> k; q > 0; --q) put(0, 1);
    put(1, 1);
    put(u & ((1u << k) - 1), k);
  }
  void align() { bits_ = (bits_ + 7) / 8 * 8; }
  static unsigned crc(const std::string& b, size_t from, size_t to, unsigned poly, int width) {
    unsigned c = 0;
    for (size_t i = from; i < to; ++i)
      for (int bit = 7; bit >= 0; --bit) {
        const unsigned top = ((c >> (width - 1)) & 1u) ^ ((static_cast<unsigned char>(b[i]) >> bit) & 1u);
        c = ((c << 1) & ((1u << width) - 1)) ^ (top ? poly : 0u);
      }
    return c;
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
  size_t bits_ = 0;
};

/// A mono 16-bit stream of one frame of 16 samples, written by hand: a fixed order-4 predictor with warm-up
/// samples warm[0..4), whose first partition is escaped (raw 7-bit residuals, residual[0..4)) and whose second is
/// Rice-coded (parameter 2, residual[4..12)).
std::string hand_built_stream(const int32_t* warm, const int32_t* residual) {
  BitWriter w;
  w.put(0x664C6143, 32);  // "fLaC"
  w.put(1, 1);            // last metadata block
  w.put(0, 7);            // STREAMINFO
  w.put(34, 24);
  w.put(16, 16);          // min and max block size
  w.put(16, 16);
  w.put(0, 24);           // frame sizes unknown
  w.put(0, 24);
  w.put(44100, 20);
  w.put(0, 3);            // 1 channel
  w.put(15, 5);           // 16 bits
  w.put(16, 36);          // total samples
  for (int i = 0; i < 4; ++i) w.put(0, 32);  // MD5 unknown
  const size_t frame_start = w.bytes().size();
  w.put(0xFFF8, 16);  // sync, fixed block size
  w.put(7, 4);        // block size - 1 in 16 bits after the number
  w.put(9, 4);        // 44.1 kHz
  w.put(0, 4);        // mono
  w.put(4, 3);        // 16 bits
  w.put(0, 1);
  w.put(0, 8);        // frame number 0
  w.put(15, 16);      // block size 16
  w.put(BitWriter::crc(w.bytes(), frame_start, w.bytes().size(), 0x07, 8), 8);
  w.put(0, 1);        // subframe padding
  w.put(8 + 4, 6);    // FIXED, order 4
  w.put(0, 1);        // no wasted bits
  for (int i = 0; i < 4; ++i) w.put_signed(warm[i], 16);
  w.put(0, 2);        // Rice, 4-bit parameters
  w.put(1, 4);        // partition order 1: two partitions of 8 samples
  w.put(15, 4);       // escape
  w.put(7, 5);        // raw 7-bit residuals
  for (int i = 0; i < 4; ++i) w.put_signed(residual[i], 7);
  w.put(2, 4);        // Rice parameter 2
  for (int i = 4; i < 12; ++i) w.rice(residual[i], 2);
  w.align();
  w.put(BitWriter::crc(w.bytes(), frame_start, w.bytes().size(), 0x8005, 16), 16);
  return w.bytes();
}

// Fixed order 4 and an escaped partition (libFLAC 1.4's encoder writes neither on the signals above): both
// decoders give back the samples the frame was built from.
TEST(FlacReader, HandBuiltFrameWithFixedOrder4AndAnEscapedPartition) {
  // A smooth signal: its fourth differences (the order-4 residuals) fit the 7 raw bits.
  std::vector<int32_t> expected(16);
  for (int i = 0; i < 16; ++i) expected[static_cast<size_t>(i)] = static_cast<int32_t>(std::lround(3000.0 * std::sin(0.2 * i)));
  int32_t residual[12];
  for (int i = 4; i < 16; ++i) {
    const int32_t* x = expected.data() + i;
    residual[i - 4] = x[0] - (4 * x[-1] - 6 * x[-2] + 4 * x[-3] - x[-4]);
    ASSERT_LE(std::abs(residual[i - 4]), 63);
  }
  TempDir dir;
  write_bytes(dir / "hand.flac", hand_built_stream(expected.data(), residual));
  std::set<std::string> kinds;
  const Channels ref = decode_with_libflac(dir / "hand.flac", &kinds);
  EXPECT_TRUE(kinds.count("fixed4") && kinds.count("escape"));
  ASSERT_EQ(first_difference(ref, Channels{expected}), "");
  std::string why;
  EXPECT_EQ(first_difference(decode_with_ours(dir / "hand.flac", why), ref), "");
  EXPECT_EQ(why, "");
}

// A frame with valid CRCs whose predicted samples leave the 16-bit range is refused (libFLAC then decides).
TEST(FlacReader, RefusesSamplesBeyondTheSampleSize) {
  const int32_t warm[4] = {30000, 30000, 30000, 30000};
  int32_t residual[12];
  std::fill(residual, residual + 12, 63);  // each adds to the fourth difference: the samples run away
  TempDir dir;
  write_bytes(dir / "wild.flac", hand_built_stream(warm, residual));
  std::string why;
  decode_with_ours(dir / "wild.flac", why);
  EXPECT_EQ(why, "a decoded sample exceeds the sample size");
}

TEST(FlacReader, StopsWhenTheSinkSaysSo) {
  TempDir dir;
  const EncodeCase c{"stop", 2, 16, 44100, 5, 1024, 0, 10000, 20};
  encode(dir / "s.flac", c, make_signal(c));
  int frames = 0;
  EXPECT_EQ(decode_flac_frames((dir / "s.flac").string(), [&](const int32_t* const*, int) { return ++frames < 3; }), "");
  EXPECT_EQ(frames, 3);
}

TEST(FlacReader, RefusesDamageWithAReason) {
  TempDir dir;
  const EncodeCase c{"damage", 2, 16, 44100, 5, 0, 0, 3 * 44100, 21};
  encode(dir / "ok.flac", c, make_signal(c));
  const std::string bytes = read_bytes(dir / "ok.flac");
  auto ours = [&](const std::string& data) {
    write_bytes(dir / "bad.flac", data);
    std::string why;
    decode_with_ours(dir / "bad.flac", why);
    return why;
  };
  // One flipped bit in the middle of a frame: the frame's CRC-16 (or its header's CRC-8) no longer matches.
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x10);
  EXPECT_NE(ours(flipped), "");
  EXPECT_NE(ours(bytes.substr(0, bytes.size() * 6 / 10)), "");  // truncated inside a frame
  EXPECT_NE(ours(bytes.substr(0, 30)), "");                      // inside STREAMINFO
  EXPECT_NE(ours("ID3\x04" + std::string(6, '\0') + bytes), "");  // left to libFLAC
  EXPECT_NE(ours(bytes + "TAG trailing bytes"), "");               // likewise
  EXPECT_EQ(ours(bytes), "");
}

// load_audio decodes FLAC with decode_flac_frames and falls back to libFLAC when it gives up: a file it leaves to
// libFLAC (an ID3v2 tag before "fLaC") loads to the same samples, and damage is libFLAC's InputError.
TEST(FlacReader, LoadAudioFallsBackToLibflac) {
  TempDir dir;
  const EncodeCase c{"fallback", 2, 16, 44100, 5, 0, 0, 2 * 44100 + 77, 22};
  encode(dir / "ok.flac", c, make_signal(c));
  const std::string bytes = read_bytes(dir / "ok.flac");
  // An ID3v2.4 header with an empty 10-byte padding body (size 10, syncsafe).
  write_bytes(dir / "id3.flac", std::string("ID3\x04\x00\x00\x00\x00\x00\x0A", 10) + std::string(10, '\0') + bytes);
  const MonoAudio plain = load_audio((dir / "ok.flac").string());
  const MonoAudio tagged = load_audio((dir / "id3.flac").string());
  ASSERT_EQ(plain.samples.size(), tagged.samples.size());
  EXPECT_TRUE(plain.samples == tagged.samples);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x10);
  write_bytes(dir / "bad.flac", flipped);
  EXPECT_THROW(load_audio((dir / "bad.flac").string()), InputError);
}

}  // namespace
}  // namespace songlines::audio
