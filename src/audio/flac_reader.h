// A FLAC decoder of our own for the common case of load_audio (issue 16, bar A3): a whole file read from its first
// sample, frames with the fixed 0xFFF8/0xFFF9 sync one after another, the stream's own rate, channels and sample
// size in every frame. Anything else (a bad CRC, a lost sync, a reserved code, a truncated stream, an ID3 tag
// before "fLaC") makes it stop and say why; load_audio then decodes the file again with libFLAC, which reports the
// damage as it always did. Format facts: the FLAC format specification (xiph.org/flac/format.html, RFC 9639).
//
// Why: Debian's libFLAC 1.4.2 (32-bit bit-reader words, a per-sample callback interface around the residual
// decoding) took ~27% of a whole `extract` of 44.1 kHz stereo FLAC (docs/benchmarks.md). This one reads 64 bits at
// a time, decodes Rice codes on a fast path without a function call per sample, and hands whole frames over.
// The samples are the same integers libFLAC decodes (tests/audio/flac_reader_test.cpp compares them on files of
// every predictor kind, order, channel decorrelation and sample size libFLAC's encoder writes).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace songlines::audio {

/// STREAMINFO of a FLAC file.
struct FlacStreamInfo {
  int sample_rate = 0;
  int channels = 0;
  int bits_per_sample = 0;
  int64_t total_samples = 0;  ///< per channel; 0 when the encoder did not know
  int max_blocksize = 0;
};

/// Called once per decoded frame: channel c's samples are channels[c][0..blocksize). Return false to stop.
using FlacFrameSink = std::function<bool(const int32_t* const* channels, int blocksize)>;

/// Decodes the FLAC file at `path` from its first frame, calling `sink` per frame, until the sink returns false
/// or the stream ends after a whole frame. Returns "" when that happened, else why it gave up (the file is
/// damaged, or uses something this decoder leaves to libFLAC); the sink may have been called for the frames before.
/// `info` receives the STREAMINFO (when it was read).
std::string decode_flac_frames(const std::string& path, const FlacFrameSink& sink, FlacStreamInfo* info = nullptr);

}  // namespace songlines::audio
