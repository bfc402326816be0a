// Long tracks on the CPU engine (issue 14 item 5): FeatureExtractor computes a track in chunks of
// ChunkOptions::chunk_frames STFT frames, and the output must equal the unchunked computation bit for bit, wherever
// the chunk edges fall; the per-track reductions (power_to_db's global max, the tunings' median and histogram,
// spectral_contrast's clips) and the CQT's octave decimation cross the edges. Memory: the working memory beside
// the input and the outputs must not grow with the track (counted by the global allocation counter below).
#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "features/cqt.h"
#include "features/feature_extractor.h"
#include "features/feature_options.h"

// ---- Allocation counter: every operator new / delete of this test binary goes through it (replacement functions
// apply to the whole program). It tracks the bytes live and their peak; malloc_usable_size gives the size on
// delete. The engine's large buffers are all C++ allocations (std::vector, the CQT stream's aligned windows).
// GCC's -Wmismatched-new-delete cannot see that these replacements pair operator new with malloc / aligned_alloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};

void count_alloc(void* p) {
  if (!p) return;
  const auto size = static_cast<int64_t>(malloc_usable_size(p));
  const int64_t live = g_live_bytes.fetch_add(size, std::memory_order_relaxed) + size;
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}
void count_free(void* p) {
  if (p) g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}
void* counted_malloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  count_alloc(p);
  return p;
}
void* counted_aligned(std::size_t n, std::align_val_t al) {
  const auto a = static_cast<std::size_t>(al);
  void* p = std::aligned_alloc(a, ((n == 0 ? 1 : n) + a - 1) / a * a);
  count_alloc(p);
  return p;
}
void counted_free(void* p) {
  count_free(p);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new(std::size_t n, std::align_val_t al) {
  if (void* p = counted_aligned(n, al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t al) { return operator new(n, al); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept { return counted_aligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned(n, al);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }

namespace songlines::features {
namespace {

constexpr int kSr = 22050;
constexpr int64_t kUnchunked = int64_t{1} << 40;  // one chunk for any track

/// Seeded music-like test audio in sections that stress the per-track reductions: a first section tuned 30 cents
/// sharp (so the first chunks' tuning estimate differs from the track's and chroma_stft is recomputed), a quiet
/// passage (mel_db's and spectral_contrast's clips), digital silence (chroma's all-zero frames), in-tune harmonic
/// notes over noise (most of the track), and loud noise bursts (the CQT's float64 frames).
std::vector<float> sectioned_music(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::uniform_int_distribution<int> degree(0, 6);
  const int scale[7] = {0, 2, 4, 5, 7, 9, 11};
  std::vector<float> y(static_cast<size_t>(n));
  const int64_t note_len = kSr / 4;
  double freq = 220.0;
  for (int64_t i = 0; i < n; ++i) {
    const double pos = static_cast<double>(i) / static_cast<double>(std::max<int64_t>(n, 1));
    if (i % note_len == 0) freq = 220.0 * std::pow(2.0, scale[degree(rng)] / 12.0);
    const double cents = pos < 0.15 ? 30.0 : 0.0;
    const double f = freq * std::pow(2.0, cents / 1200.0);
    const double t = static_cast<double>(i) / kSr;
    double v = 0.0;
    for (int h = 1; h <= 5; ++h) v += std::sin(2.0 * std::numbers::pi * f * h * t) / h;
    v *= std::exp(-3.0 * static_cast<double>(i % note_len) / kSr);
    if (pos >= 0.2 && pos < 0.25) v *= 1e-4;           // quiet passage
    if (pos >= 0.3 && pos < 0.33) v = 0.0;             // silence
    else if (pos >= 0.9) v += 0.8 * noise(rng);        // loud noise
    else v += 0.01 * noise(rng);
    y[static_cast<size_t>(i)] = static_cast<float>(0.3 * v);
  }
  return y;
}

/// Bitwise equality of two feature sets; the message names the feature, the first differing element and values.
::testing::AssertionResult SameFeatures(const TrackFeatures& a, const TrackFeatures& b) {
  if (a.n_frames != b.n_frames)
    return ::testing::AssertionFailure() << "n_frames " << a.n_frames << " vs " << b.n_frames;
  auto same_double = [](double x, double y) { return (std::isnan(x) && std::isnan(y)) || x == y; };
  if (!same_double(a.tuning_chroma_stft, b.tuning_chroma_stft) || !same_double(a.tuning_cqt, b.tuning_cqt))
    return ::testing::AssertionFailure() << "tunings " << a.tuning_chroma_stft << ", " << a.tuning_cqt << " vs "
                                         << b.tuning_chroma_stft << ", " << b.tuning_cqt;
  if (a.frames.size() != b.frames.size())
    return ::testing::AssertionFailure() << a.frames.size() << " features vs " << b.frames.size();
  for (const auto& [name, m] : a.frames) {
    const auto it = b.frames.find(name);
    if (it == b.frames.end()) return ::testing::AssertionFailure() << name << " missing";
    const FeatureMatrix& r = it->second;
    if (m.frames != r.frames || m.dim != r.dim || m.data.size() != r.data.size())
      return ::testing::AssertionFailure() << name << " shape [" << m.frames << ", " << m.dim << "] vs [" << r.frames
                                           << ", " << r.dim << "]";
    if (std::memcmp(m.data.data(), r.data.data(), m.data.size() * sizeof(float)) != 0) {
      size_t i = 0;
      while (std::memcmp(&m.data[i], &r.data[i], sizeof(float)) == 0) ++i;
      return ::testing::AssertionFailure() << name << " differs first at row " << i / static_cast<size_t>(m.dim)
                                           << " col " << i % static_cast<size_t>(m.dim) << ": " << m.data[i] << " vs "
                                           << r.data[i];
    }
  }
  return ::testing::AssertionSuccess();
}

TrackFeatures compute(const FeatureOptions& opt, int64_t chunk_frames, const std::vector<float>& y) {
  const FeatureExtractor fx(opt, ChunkOptions{chunk_frames});
  return fx.compute(y.data(), static_cast<int64_t>(y.size()));
}

TEST(LongTrack, EveryChunkSizeGivesTheUnchunkedFeaturesBitForBit) {
  FeatureOptions opt;  // every feature, librosa's defaults
  const std::vector<float> y = sectioned_music(12 * kSr + 123, 1);
  const TrackFeatures ref = compute(opt, kUnchunked, y);
  ASSERT_EQ(ref.n_frames, 1 + static_cast<int64_t>(y.size()) / 512);
  for (const int64_t chunk : {1, 2, 3, 7, 64, 255, 256, 257, 516, 517, 518}) {
    SCOPED_TRACE("chunk_frames " + std::to_string(chunk));
    EXPECT_TRUE(SameFeatures(compute(opt, chunk, y), ref));
  }
}

TEST(LongTrack, ChromaStftUsesTheWholeTracksTuningWhenItsFirstChunksDisagree) {
  FeatureOptions opt;
  opt.features = {"chroma_stft", "tonnetz"};
  opt.tonnetz_chroma = TonnetzChroma::kStft;
  const std::vector<float> y = sectioned_music(20 * kSr, 2);
  const TrackFeatures ref = compute(opt, kUnchunked, y);
  // The test means something only if the first chunks' estimate (the sharp opening) is not the track's.
  const std::vector<float> opening(y.begin(), y.begin() + 2 * kSr);
  const TrackFeatures first = compute(opt, kUnchunked, opening);
  ASSERT_NE(first.tuning_chroma_stft, ref.tuning_chroma_stft) << "the opening's tuning must differ from the track's";
  for (const int64_t chunk : {16, 100, 500}) {
    SCOPED_TRACE("chunk_frames " + std::to_string(chunk));
    EXPECT_TRUE(SameFeatures(compute(opt, chunk, y), ref));
  }
}

TEST(LongTrack, LengthsAroundChunkEdgesAndShorterThanOneFft) {
  FeatureOptions opt;
  constexpr int64_t kChunk = 16;
  constexpr int64_t kHop = 512;
  // T = 1 + n / 512. Edge: T = k * kChunk exactly ((k kChunk - 1) * hop + 511 samples), and one sample past it
  // (T = k kChunk + 1: a last chunk of one frame). Under n_fft: 1 sample, 100, 2047.
  std::vector<int64_t> lengths = {1, 100, 511, 512, 2047, 2048, 2049};
  for (const int64_t k : {1, 2, 3}) {
    const int64_t edge = (k * kChunk - 1) * kHop + kHop - 1;
    lengths.insert(lengths.end(), {edge - 1, edge, edge + 1});
  }
  for (const int64_t n : lengths) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const std::vector<float> y = sectioned_music(n, 3 + static_cast<uint64_t>(n));
    const TrackFeatures ref = compute(opt, kUnchunked, y);
    for (const int64_t chunk : {int64_t{1}, kChunk}) EXPECT_TRUE(SameFeatures(compute(opt, chunk, y), ref));
  }
}

TEST(LongTrack, OtherOptionsChunkedEqualUnchunked) {
  const std::vector<float> y = sectioned_music(9 * kSr + 77, 4);
  std::vector<FeatureOptions> variants(4);
  variants[0].stft = {1024, 256, true};  // STFT frames and CQT rows on different grids
  variants[1].stft = {2048, 512, false};  // no centring: fewer STFT frames than CQT rows
  variants[2].chroma_stft.tuning = 0.25;  // fixed tunings: no estimate
  variants[2].cqt.tuning = -0.1;
  variants[3].cqt.n_bins = 24;  // two low octaves: the CQT early-downsamples by 2^count
  variants[3].cqt.bins_per_octave = 12;
  variants[3].db.top_db = 0.0;  // no clip
  for (size_t v = 0; v < variants.size(); ++v) {
    SCOPED_TRACE("variant " + std::to_string(v));
    const TrackFeatures ref = compute(variants[v], kUnchunked, y);
    for (const int64_t chunk : {1, 5, 130}) EXPECT_TRUE(SameFeatures(compute(variants[v], chunk, y), ref));
  }
}

TEST(CqtStream, AnyRowBlocksEqualOneBlock) {
  const std::vector<float> y = sectioned_music(7 * kSr + 5, 5);
  CqtOptions early;  // 2 octaves far below Nyquist: early downsampling by 2^count before the octave loop
  early.n_bins = 24;
  early.bins_per_octave = 12;
  for (const CqtOptions& opt : {CqtOptions{}, early}) {
    const FeatureMatrix ref = cqt_magnitude(y.data(), static_cast<int64_t>(y.size()), kSr, opt, 0.13);
    for (const int64_t block : {1, 3, 33, 200}) {
      SCOPED_TRACE("n_bins " + std::to_string(opt.n_bins) + ", block " + std::to_string(block));
      CqtStream stream(y.data(), static_cast<int64_t>(y.size()), kSr, opt, 0.13);
      ASSERT_EQ(stream.frames(), ref.frames);
      std::vector<float> rows;
      FeatureMatrix part;
      while (stream.next_row() < stream.frames()) {
        stream.next(std::min(block, stream.frames() - stream.next_row()), part);
        rows.insert(rows.end(), part.data.begin(), part.data.end());
      }
      ASSERT_EQ(rows.size(), ref.data.size());
      EXPECT_EQ(std::memcmp(rows.data(), ref.data.data(), rows.size() * sizeof(float)), 0);
    }
  }
}

TEST(CqtStream, AskingPastTheEndIsAnError) {
  const std::vector<float> y = sectioned_music(kSr, 6);
  CqtStream stream(y.data(), static_cast<int64_t>(y.size()), kSr, CqtOptions{}, 0.0);
  FeatureMatrix part;
  EXPECT_THROW(stream.next(0, part), UsageError);
  EXPECT_THROW(stream.next(stream.frames() + 1, part), UsageError);
}

TEST(LongTrack, ChunkFramesBelowOneIsRefused) {
  EXPECT_THROW(FeatureExtractor(FeatureOptions{}, ChunkOptions{0}), UsageError);
}

/// Peak bytes allocated during one compute() beyond those live before it and the outputs it returns.
struct Working {
  int64_t frames = 0;
  int64_t bytes = 0;
};
Working working_bytes(const FeatureExtractor& fx, const std::vector<float>& y) {
  const int64_t before = g_live_bytes.load();
  g_peak_bytes.store(before);
  const TrackFeatures out = fx.compute(y.data(), static_cast<int64_t>(y.size()));
  int64_t outputs = 0;
  for (const auto& [name, m] : out.frames) outputs += static_cast<int64_t>(m.data.capacity() * sizeof(float));
  return {out.n_frames, g_peak_bytes.load() - before - outputs};
}

/// Extra working bytes per extra frame between a 30 s and a 120 s track, after a warm-up on the 30 s one (scratch
/// that grows for the longer track counts: a fresh long track costs it too).
double working_bytes_per_frame(int64_t chunk_frames) {
  FeatureOptions opt;
  opt.features = default_shard_feature_names();
  const FeatureExtractor fx(opt, ChunkOptions{chunk_frames});
  const std::vector<float> short_track = sectioned_music(30 * kSr, 7), long_track = sectioned_music(120 * kSr, 8);
  (void)working_bytes(fx, short_track);  // warm-up: plans, filterbanks, the short track's thread_local scratch
  const Working a = working_bytes(fx, short_track), b = working_bytes(fx, long_track);
  std::printf("chunk_frames %lld: working memory %.1f MB (%lld frames), %.1f MB (%lld frames)\n",
              static_cast<long long>(chunk_frames), a.bytes / 1e6, static_cast<long long>(a.frames), b.bytes / 1e6,
              static_cast<long long>(b.frames));
  return static_cast<double>(b.bytes - a.bytes) / static_cast<double>(b.frames - a.frames);
}

TEST(LongTrackMemory, WorkingMemoryBesidesTheOutputsDoesNotGrowWithTheTrack) {
  // Beside the outputs, the chunked engine keeps per frame of the track only what its per-track reductions need
  // (the tuning candidates: 8 bytes per piptrack peak; spectral_contrast's peaks and valleys: 56 bytes), measured
  // at ~0.3 KB; one chunk of the whole track keeps its two STFT spectra, 8.2 KB per frame, and the CQT's octaves.
  constexpr double kMaxBytesPerFrame = 1024.0;
  constexpr double kSpectraBytesPerFrame = 2 * 1025 * 4;
  const double chunked = working_bytes_per_frame(256);
  const double unchunked = working_bytes_per_frame(kUnchunked);
  std::printf("working bytes per extra frame: chunked %.0f, unchunked %.0f\n", chunked, unchunked);
  EXPECT_LT(chunked, kMaxBytesPerFrame);
  // The counter sees the engine's buffers: the unchunked engine's spectra show up.
  EXPECT_GT(unchunked, kSpectraBytesPerFrame);
}

}  // namespace
}  // namespace songlines::features
