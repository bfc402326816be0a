// The STFT -> mel -> mel_db -> MFCC chain of the device engine, written once for both backends (docs/cuda.md,
// "Two backends"). Every step is a Thrust algorithm over a __host__ __device__ functor, plus the two library
// calls of library_calls.h; nothing here knows which backend it runs on.
//
// Included by exactly two translation units, each of which first defines SONGLINES_DEVICE_BACKEND_NS (the
// namespace the instantiation lives in) and the Thrust device system:
//   src/features/device_engine/host_backend.cpp   g++ -fopenmp, THRUST_DEVICE_SYSTEM_OMP (Thrust wrapped in its
//                                                   own namespace, so it never meets the CUDA build's Thrust)
//   cuda/device_engine_backend.cu                 nvcc, THRUST_DEVICE_SYSTEM_CUDA
//
// References (librosa 0.11): core/spectrum.py stft (centred frames, constant padding), _spectrogram (|X|, |X|^2);
// feature/spectral.py melspectrogram (S @ mel^T), mfcc (DCT-II ortho of mel_db), chroma_stft (S @ chroma^T at a
// given tuning, then util.normalize norm=inf per frame); core/spectrum.py power_to_db (global max of the whole
// track, top_db clip); core/pitch.py estimate_tuning -> piptrack -> pitch_tuning (the reference is
// src/features/tuning.cpp: per-row peaks here, the per-track median and histogram in estimate_tunings).
// Layout of every buffer: row-major [rows = batch frames, dim].
#ifndef SONGLINES_DEVICE_BACKEND_NS
#error "define SONGLINES_DEVICE_BACKEND_NS before including mel_chain.inl"
#endif

#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/binary_search.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/transform.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "features/device_engine/chain.h"
#include "features/device_engine/row_divider.h"
#include "features/device_engine/library_calls.h"
#include "features/device_engine/staging.h"

namespace songlines::features::device_engine::SONGLINES_DEVICE_BACKEND_NS {

namespace thr = THRUST_NS_QUALIFIER;

/// Device copies of the batch's piece table (see BatchPiece). Piece p holds batch rows [frame_off[p],
/// frame_off[p+1]), at least one; row_piece[row] = p (one vectorised upper_bound per batch, so that the
/// per-element functors need no search).
struct PieceTable {
  const int64_t* row_piece = nullptr;      // [rows]
  const int64_t* frame_off = nullptr;      // [P+1] first batch row of each piece
  const int64_t* sample_off = nullptr;     // [P]   where the piece's samples start in the batch's sample buffer
  const int64_t* sample_begin = nullptr;   // [P]   track index of that first sample
  const int64_t* track_samples = nullptr;  // [P]   length of the piece's track
  const int64_t* frame_begin = nullptr;    // [P]   track frame of the piece's first row
  int64_t n_pieces = 0;
};

/// frames[row, i] = window[i] * y[frame * hop - pad + i], zero outside the track (pad_mode "constant"), in the
/// FFT's precision T (float32: the window rounded to float32 first; float64: as the reference).
template <class T>
struct FrameFunctor {
  PieceTable table;
  const float* samples;
  const double* window;
  RowDivider row_of;  // by n_fft
  int64_t n_fft, hop, pad;
  __host__ __device__ T operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t i = e - row * n_fft;
    const int64_t p = table.row_piece[row];
    const int64_t frame = table.frame_begin[p] + (row - table.frame_off[p]);
    const int64_t s = frame * hop - pad + i;
    if (s < 0 || s >= table.track_samples[p]) return T(0);
    return static_cast<T>(window[i]) * static_cast<T>(samples[table.sample_off[p] + (s - table.sample_begin[p])]);
  }
};

/// magnitude = |X| (librosa stores the FFT as complex64, then np.abs: computed in float64 and rounded), power =
/// magnitude^2 in float32 (the reference's order, src/features/stft.cpp). Either output may be null.
template <class T>
struct SpectrumFunctor {
  const T* spectra;  // [rows, n_bins, 2]
  float* magnitude;  // [rows, n_bins] or null
  float* power;      // [rows, n_bins] or null
  __host__ __device__ void operator()(int64_t e) const {
    const double re = static_cast<float>(spectra[2 * e]), im = static_cast<float>(spectra[2 * e + 1]);
    const float mag = static_cast<float>(sqrt(re * re + im * im));
    if (magnitude) magnitude[e] = mag;
    if (power) power[e] = mag * mag;
  }
};

/// power_to_db before the clip: 10 log10(max(amin, S)) - ref_db, float32 as librosa (src/features/mel.cpp).
struct DbFunctor {
  float amin;
  double ref_db;
  __host__ __device__ float operator()(float s) const {
    const float v = 10.0f * log10f(s > amin ? s : amin);
    return static_cast<float>(static_cast<double>(v) - ref_db);
  }
};

/// Key of element e of a [rows, dim] buffer: its piece (segmented reductions over pieces).
struct RowPieceKey {
  const int64_t* row_piece;
  RowDivider row_of;  // by the row length
  __host__ __device__ int64_t operator()(int64_t e) const { return row_piece[row_of(e)]; }
};

/// floor of piece p: max_db[p] - top_db for whole tracks, -inf for chunks (clipped in finish_track /
/// finish_contrast). T: float for mel_db (rounded as the reference's float32 floor), double for the contrast.
template <class T>
struct ClipFloorFunctor {
  const T* max_db;
  const int8_t* whole;
  double top_db;
  __host__ __device__ T operator()(int64_t p) const {
    if (top_db <= 0.0 || !whole[p]) return -INFINITY;
    return static_cast<T>(static_cast<double>(max_db[p]) - top_db);
  }
};

/// db[row, k] = max(db[row, k], floor[piece of row]).
struct ClipFunctor {
  float* db;
  const float* floor;
  const int64_t* row_piece;
  RowDivider row_of;  // by the row length
  __host__ __device__ void operator()(int64_t e) const {
    const float f = floor[row_piece[row_of(e)]];
    if (db[e] < f) db[e] = f;
  }
};

/// |x| of element e (the key of a row-wise max for util.normalize's inf-norm).
struct AbsFunctor {
  __host__ __device__ float operator()(float x) const { return x < 0.0f ? -x : x; }
};

/// util.normalize(norm=inf) of each row: x / max|row|, rows whose max is below float32 tiny unchanged.
struct InfNormFunctor {
  float* x;
  const float* row_max;
  RowDivider row_of;  // by the row length
  __host__ __device__ void operator()(int64_t e) const {
    const float m = row_max[row_of(e)];
    if (!(m < 1.17549435e-38f)) x[e] = x[e] / m;  // FLT_MIN
  }
};

// ---- spectral_contrast (librosa 0.11 feature/spectral.py spectral_contrast, linear=False; reference:
// src/features/spectral_contrast.cpp) ----

/// Peak and valley of element (row, band k) of a [rows, n_bands + 1] grid: the means of the q[k] largest and the
/// q[k] smallest magnitudes of the band's bins [begin[k], end[k]), each summed in ascending order in float32 and
/// divided in float32 (numpy's mean over sortedr[-q:] / sortedr[:q]), then power_to_db in float64 before the
/// clip: 10 log10(max(amin, v)) - ref_db. The q smallest (largest) are kept sorted by insertion in the element's
/// scratch slots [2 q[k]]: the same multiset as a full sort, hence the same ascending sums, bit for bit.
struct ContrastFunctor {
  const float* magnitude;     // [rows, n_bins]
  const int64_t* begin;       // [n_contrast]
  const int64_t* end;         // [n_contrast]
  const int64_t* q;           // [n_contrast]
  const int64_t* scratch_off; // [n_contrast] offset of band k's 2 q[k] slots in a row's scratch
  float* scratch;             // [rows, scratch_stride]
  double* peak_db;            // [rows, n_contrast]
  double* valley_db;          // [rows, n_contrast]
  RowDivider row_of;          // by n_contrast
  int64_t n_bins, n_contrast, scratch_stride;
  double amin, ref_db;
  __host__ __device__ double to_db(float mean) const {
    const double v = static_cast<double>(mean);
    return 10.0 * log10(v > amin ? v : amin) - ref_db;
  }
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t row = row_of(e), k = e - row * n_contrast;
    const float* s = magnitude + row * n_bins + begin[k];
    const int64_t n = end[k] - begin[k], m = q[k];  // 1 <= m <= n, or n = 0 (an empty band: 0 / 0, as numpy)
    float* low = scratch + row * scratch_stride + scratch_off[k];  // ascending: the m smallest so far
    float* high = low + m;                                         // ascending: the m largest so far
    for (int64_t i = 0; i < n; ++i) {
      const float v = s[i];
      if (i < m || v < low[m - 1]) {
        int64_t j = i < m ? i : m - 1;
        for (; j > 0 && low[j - 1] > v; --j) low[j] = low[j - 1];
        low[j] = v;
      }
      if (i < m) {
        int64_t j = i;
        for (; j > 0 && high[j - 1] > v; --j) high[j] = high[j - 1];
        high[j] = v;
      } else if (v > high[0]) {
        int64_t j = 0;
        for (; j + 1 < m && high[j + 1] < v; ++j) high[j] = high[j + 1];
        high[j] = v;
      }
    }
    float valley = 0.0f, peak = 0.0f;
    for (int64_t j = 0; j < m; ++j) valley += low[j];
    for (int64_t j = 0; j < m; ++j) peak += high[j];
    valley_db[e] = to_db(valley / static_cast<float>(m));
    peak_db[e] = to_db(peak / static_cast<float>(m));
  }
};

/// contrast[row, k] = max(peak_db, peak floor of the row's piece) - max(valley_db, valley floor), in float64,
/// rounded to float32 (the reference's power_to_db clip of each array against its own per-track max, then the
/// difference).
struct ContrastClipFunctor {
  const double* peak_db;
  const double* valley_db;
  const double* peak_floor;    // [P]
  const double* valley_floor;  // [P]
  const int64_t* row_piece;
  RowDivider row_of;  // by n_contrast
  float* contrast;
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t p = row_piece[row_of(e)];
    const double pk = peak_db[e] < peak_floor[p] ? peak_floor[p] : peak_db[e];
    const double vl = valley_db[e] < valley_floor[p] ? valley_floor[p] : valley_db[e];
    contrast[e] = static_cast<float>(pk - vl);
  }
};

// ---- estimate_tuning (librosa 0.11 core/pitch.py; reference: src/features/tuning.cpp, whose float32/float64
// steps are reproduced one for one: the result is the argmax of a 0.01-wide histogram) ----

/// piptrack at element (row, k) of a [rows, width] grid over the band [kb, kb + width), kb = max(k_lo, 1):
/// x = S * (S > threshold * max(S[row])); a peak where x[k] > x[k-1] and x[k] >= x[k+1] (util.localmax; the
/// top bin of the spectrum only against its left neighbour); _parabolic_interpolation's shift, np.gradient's
/// dskew; pitch = (k + shift) sr / n_fft. Writes, for a peak with pitch > 0, mag = S[k] + dskew and the
/// pitch_tuning histogram bin of its residual (n_hist: outside the edges); bin = -1 for every other element.
struct PiptrackFunctor {
  const float* power;    // [rows, n_bins]
  const float* row_max;  // [rows] max over all n_bins of the row
  const double* edges;   // [n_hist + 1]
  float* mag;            // [rows, width]
  int32_t* bin;          // [rows, width]
  RowDivider row_of;     // by width
  int64_t n_bins, kb, width, n_hist;
  double sample_rate, n_fft;
  float bins_per_octave, threshold;
  /// a * b rounded to float32 before any later add: nvcc would otherwise contract S + (0.5 avg) * shift into one
  /// FMA, which numpy does not do (and which could change the magnitude's last bit, hence the median).
  __host__ __device__ static float mul_rounded(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
  }
  __host__ __device__ static float above(const float* s, int64_t i, float ref) {
    return s[i] * static_cast<float>(s[i] > ref);
  }
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t k = kb + (e - row * width);
    const int64_t K = n_bins;
    const float* s = power + row * n_bins;
    const float ref = threshold * row_max[row];
    const float xk = above(s, k, ref);
    const bool peak = (k + 1 < K) ? (xk > above(s, k - 1, ref) && xk >= above(s, k + 1, ref)) : (xk > above(s, k - 1, ref));
    if (!peak) {
      bin[e] = -1;
      return;
    }
    float shift = 0.0f;  // a = x[1] + x[-1] - 2 x[0], b = (x[1] - x[-1]) / 2 in float64; 0 where |b| >= |a|
    if (k < K - 1) {
      const double a = static_cast<double>(s[k + 1] + s[k - 1]) - 2.0 * static_cast<double>(s[k]);
      const double b = static_cast<double>(s[k + 1] - s[k - 1]) / 2.0;
      shift = fabs(b) >= fabs(a) ? 0.0f : static_cast<float>(-b / a);
    }
    const float avg = (k == K - 1) ? s[K - 1] - s[K - 2] : (s[k + 1] - s[k - 1]) / 2.0f;  // np.gradient, float32
    const float dskew = mul_rounded(0.5f * avg, shift);
    const float pitch = static_cast<float>((static_cast<double>(k) + shift) * sample_rate / n_fft);
    if (!(pitch > 0.0f)) {
      bin[e] = -1;
      return;
    }
    mag[e] = s[k] + dskew;
    // pitch_tuning: residual = mod(bins_per_octave * log2(f / (440 / 16)), 1) in float32, >= 0.5 -> -1.
    const float octs = log2f(pitch / static_cast<float>(440.0 / 16.0));
    float r = fmodf(bins_per_octave * octs, 1.0f);
    if (r < 0.0f) r += 1.0f;
    if (r >= 0.5f) r -= 1.0f;
    const double rd = r;
    int32_t b = static_cast<int32_t>(n_hist);
    if (!(rd < edges[0] || rd > edges[n_hist])) {
      int64_t lo = 0, hi = n_hist + 1;  // upper_bound: the first edge > rd; bin i holds [edges[i], edges[i+1])
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (edges[mid] > rd) hi = mid;
        else lo = mid + 1;
      }
      b = static_cast<int32_t>(lo - 1 < n_hist - 1 ? lo - 1 : n_hist - 1);  // the last bin includes 0.5
    }
    bin[e] = b;
  }
};

struct IsCandidate {
  __host__ __device__ bool operator()(int32_t b) const { return b >= 0; }
};
struct CandidateCount {
  __host__ __device__ int64_t operator()(int32_t b) const { return b >= 0 ? 1 : 0; }
};

/// Order-preserving map of a float32 to uint32 (negative values reversed below the positive ones), and back.
__host__ __device__ inline uint32_t ordered_key(float v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__host__ __device__ inline float from_ordered_key(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/// Radix selection of the two middle magnitudes of every track (np.median): three passes of 11, 11 and 10 bits
/// over the ordered keys; each pass histograms, per query, the next digit of the keys that share the query's
/// prefix so far. Query q = 2 s + j asks for rank (m-1)/2 (j = 0) or m/2 (j = 1) of segment s (m candidates).
constexpr int64_t kRadixBins = 2048;
constexpr int kRadixShift[3] = {21, 10, 0};
constexpr int kRadixBits[3] = {11, 11, 10};
constexpr int64_t kNoKey = std::numeric_limits<int64_t>::max();  // sorts after every histogram key

/// Key of element i = 2 e + j of a pass: q * kRadixBins + digit, or kNoKey when e's key leaves q's prefix.
struct RadixDigitKey {
  const float* mag;
  const int64_t* seg;     // [n] segment of each element (group-local)
  const int64_t* prefix;  // [Q] the bits chosen by earlier passes
  int shift, bits, prev_shift;
  bool first;
  __host__ __device__ int64_t operator()(int64_t i) const {
    const int64_t e = i >> 1;
    const int64_t q = 2 * seg[e] + (i & 1);
    const uint32_t k = ordered_key(mag[e]);
    if (!first && static_cast<int64_t>(k >> prev_shift) != prefix[q]) return kNoKey;
    return q * kRadixBins + static_cast<int64_t>((k >> shift) & ((1u << bits) - 1u));
  }
};

/// hist[key[u]] += count[u] for the distinct keys of a run-length-encoded sorted key array (no two threads share
/// a key, so no atomics); kNoKey is skipped.
struct AccumulateHistogram {
  const int64_t* key;
  const int64_t* count;
  int64_t* hist;
  __host__ __device__ void operator()(int64_t u) const {
    if (key[u] != kNoKey) hist[key[u]] += count[u];
  }
};

/// After a pass: the digit of query q is the first whose cumulative count exceeds the rank still wanted.
struct RadixSelectStep {
  const int64_t* hist;   // [Q, kRadixBins]
  const int64_t* count;  // [S]
  int64_t* prefix;       // [Q]
  int64_t* rank;         // [Q]
  int bits;
  __host__ __device__ void operator()(int64_t q) const {
    if (count[q >> 1] == 0) return;
    const int64_t* h = hist + q * kRadixBins;
    const int64_t r = rank[q];
    int64_t acc = 0, d = 0;
    for (; d < (int64_t{1} << bits) - 1; ++d) {
      if (acc + h[d] > r) break;
      acc += h[d];
    }
    rank[q] = r - acc;
    prefix[q] = (prefix[q] << bits) | d;
  }
};

/// estimate_tuning's threshold: np.median of the track's magnitudes (float32 mean of the two middle values).
struct MedianFunctor {
  const int64_t* prefix;  // [2 S] full keys of ranks (m-1)/2 and m/2
  const int64_t* count;   // [S]
  float* median;          // [S]
  __host__ __device__ void operator()(int64_t s) const {
    const int64_t m = count[s];
    if (m == 0) {
      median[s] = 0.0f;
      return;
    }
    const float lo = from_ordered_key(static_cast<uint32_t>(prefix[2 * s]));
    const float hi = from_ordered_key(static_cast<uint32_t>(prefix[2 * s + 1]));
    median[s] = (m % 2 == 1) ? hi : (lo + hi) / 2.0f;
  }
};

/// Histogram key of element e: s * (n_hist + 1) + bin for magnitudes at or above the track's median.
struct TuningBinKey {
  const float* mag;
  const int32_t* bin;
  const int64_t* seg;
  const float* median;
  int64_t n_slots;  // n_hist + 1 (the last slot: residual outside the edges)
  __host__ __device__ int64_t operator()(int64_t e) const {
    const int64_t s = seg[e];
    return mag[e] >= median[s] ? s * n_slots + bin[e] : kNoKey;
  }
};

/// pitch_tuning's result: the left edge of the first maximal bin; 0.0 when no candidate passed (librosa warns).
struct TuningArgmax {
  const int64_t* hist;  // [S, n_hist + 1]
  const double* edges;
  int64_t n_hist;
  double* tuning;  // [S]
  __host__ __device__ void operator()(int64_t s) const {
    const int64_t* h = hist + s * (n_hist + 1);
    int64_t total = 0, best = 0;
    for (int64_t i = 0; i <= n_hist; ++i) total += h[i];
    for (int64_t i = 1; i < n_hist; ++i)
      if (h[i] > h[best]) best = i;
    tuning[s] = total == 0 ? 0.0 : edges[best];
  }
};

/// seg[i] = run_seg[seg[i]] (run index -> segment).
struct GatherSegment {
  const int64_t* run_seg;
  int64_t* seg;
  __host__ __device__ void operator()(int64_t i) const { seg[i] = run_seg[seg[i]]; }
};

template <class T>
T* raw(thr::device_vector<T>& v) { return thr::raw_pointer_cast(v.data()); }
template <class T>
const T* raw(const thr::device_vector<T>& v) { return thr::raw_pointer_cast(v.data()); }

template <class T>
void ensure_size(thr::device_vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) {
    v.clear();
    v.shrink_to_fit();
    v.resize(static_cast<size_t>(n));
  }
}

template <class T>
void poison_prefix(thr::device_vector<T>& v, int64_t n) {
  thr::fill_n(thr::device, v.begin(), n, std::numeric_limits<T>::quiet_NaN());
}

template <class T>
void upload(const std::vector<T>& host, thr::device_vector<T>& dev) {
  dev.assign(host.begin(), host.end());
}

/// Copies rows [row0, row0 + rows) of a [*, dim] device buffer to a host pointer.
template <class T>
void download_rows(const thr::device_vector<T>& dev, int64_t row0, int64_t rows, int64_t dim, T* host) {
  thr::copy(dev.begin() + row0 * dim, dev.begin() + (row0 + rows) * dim, host);
}

/// Stages rows [row0, row0 + rows) of a [*, dim] device buffer for `host` (StagedDownloads::add); with
/// downloads == nullptr only counts their bytes into *bytes.
template <class T>
void stage_rows(StagedDownloads* downloads, size_t* bytes, const thr::device_vector<T>& dev, int64_t row0,
                int64_t rows, int64_t dim, T* host) {
  const size_t n = static_cast<size_t>(rows * dim) * sizeof(T);
  if (downloads == nullptr) *bytes += n;
  else downloads->add(raw(dev) + row0 * dim, host, n);
}

/// A batch's results through the staging: `for_each_output(downloads, bytes)` names every output once; it is
/// called to count the bytes, then to stage them.
template <class F>
void stage_batch(StagedDownloads& downloads, F&& for_each_output) {
  size_t bytes = 0;
  for_each_output(static_cast<StagedDownloads*>(nullptr), &bytes);
  downloads.begin(bytes);
  for_each_output(&downloads, &bytes);
  downloads.end();
}

#include "features/device_engine/cqt_stage.inl"

class MelChain final : public Chain {
 public:
  /// make_fft: the backend's FFT of one size, for the STFT (n_fft) and the CQT's octaves.
  /// copies: the backend's CopyQueue for the result staging (staging.h).
  MelChain(const ChainConstants& c, const RealFftFactory& make_fft, std::unique_ptr<RowMajorGemm> gemm,
           std::unique_ptr<CopyQueue> copies)
      : c_(c),
        fft_(make_fft(c.n_fft)),
        gemm_(std::move(gemm)),
        copies_(std::move(copies)),
        downloads_(*copies_),
        uploads_(*copies_),
        cqt_(c, make_fft, gemm_.get(), &downloads_) {
    upload(c_.window, window_);
    upload(c_.mel, mel_w_);
    upload(c_.dct, dct_);
    upload(c_.tuning_edges, tuning_edges_);
    upload(c_.contrast_begin, contrast_begin_);
    upload(c_.contrast_end, contrast_end_);
    upload(c_.contrast_q, contrast_q_);
    std::vector<int64_t> scratch_off;
    for (int64_t q : c_.contrast_q) {
      scratch_off.push_back(contrast_scratch_stride_);
      contrast_scratch_stride_ += 2 * q;
    }
    upload(scratch_off, contrast_scratch_off_);
    upload(c_.tonnetz_phi, phi_);
  }

  PieceMaxima run_batch(const BatchRequest& request) override {
    const auto& pieces = request.pieces;
    const int64_t P = static_cast<int64_t>(pieces.size());
    PieceMaxima maxima;
    maxima.mel_db.assign(static_cast<size_t>(P), std::numeric_limits<float>::quiet_NaN());
    maxima.contrast_peak.assign(static_cast<size_t>(P), std::numeric_limits<double>::quiet_NaN());
    maxima.contrast_valley = maxima.contrast_peak;
    if (P == 0) return maxima;
    bool want_mag = false, want_mel = false, want_db = false, want_mfcc = false, want_chroma = false,
         want_tuning = false, want_contrast = false, want_cqt_tuning = false, want_tonnetz = false;
    for (const BatchPiece& p : pieces) {
      want_mag |= p.magnitude != nullptr || p.cqt_tuning != nullptr;
      want_cqt_tuning |= p.cqt_tuning != nullptr;
      want_contrast |= p.contrast != nullptr || p.contrast_peak_db != nullptr;
      if (p.contrast_peak_db != nullptr && (p.contrast_valley_db == nullptr || p.kind != PieceKind::kChunk))
        throw std::invalid_argument("device engine: contrast dB rows are for chunks, peak and valley together");
      want_chroma |= p.chroma != nullptr || p.tonnetz != nullptr;
      want_tonnetz |= p.tonnetz != nullptr;
      want_tuning |= p.tuning != nullptr;
      if ((p.chroma != nullptr || p.tonnetz != nullptr) && p.chroma_bank == nullptr)
        throw std::invalid_argument("device engine: a piece wants chroma_stft without a chroma filterbank");
      want_mel |= p.melspectrogram != nullptr || p.mel_db != nullptr || (p.mfcc != nullptr && p.kind == PieceKind::kWholeTrack);
      want_db |= p.mel_db != nullptr || (p.mfcc != nullptr && p.kind == PieceKind::kWholeTrack);
      want_mfcc |= p.mfcc != nullptr && p.kind == PieceKind::kWholeTrack;
    }

    // ---- piece table and samples ----
    std::vector<int64_t> frame_off(static_cast<size_t>(P + 1)), sample_off(P), sample_begin(P), track_samples(P),
        frame_begin(P);
    std::vector<int8_t> whole(P);
    int64_t rows = 0, samples = 0;
    for (int64_t p = 0; p < P; ++p) {
      const BatchPiece& b = pieces[static_cast<size_t>(p)];
      frame_off[p] = rows;
      sample_off[p] = samples;
      sample_begin[p] = b.sample_begin;
      track_samples[p] = b.track_samples;
      frame_begin[p] = b.frame_begin;
      whole[p] = b.kind == PieceKind::kWholeTrack ? 1 : 0;
      rows += b.n_frames;
      samples += b.n_samples;
    }
    frame_off[P] = rows;
    upload(frame_off, frame_off_);
    upload(sample_off, sample_off_);
    upload(sample_begin, sample_begin_);
    upload(track_samples, track_samples_);
    upload(frame_begin, frame_begin_);
    upload(whole, whole_);
    ensure_size(samples_, std::max<int64_t>(samples, 1));
    // the pieces' samples through the upload staging (pinned on CUDA): packed in piece order, one copy
    uploads_.begin(static_cast<size_t>(samples) * sizeof(float));
    for (int64_t p = 0; p < P; ++p) {
      const BatchPiece& b = pieces[static_cast<size_t>(p)];
      uploads_.add(b.samples, static_cast<size_t>(b.n_samples) * sizeof(float));
    }
    uploads_.end(raw(samples_));
    thr::counting_iterator<int64_t> first(0);
    ensure_size(row_piece_, rows);
    thr::upper_bound(thr::device, frame_off_.begin() + 1, frame_off_.begin() + 1 + P, first, first + rows,
                     row_piece_.begin());
    const PieceTable table{raw(row_piece_), raw(frame_off_), raw(sample_off_), raw(sample_begin_),
                           raw(track_samples_), raw(frame_begin_), P};

    // ---- STFT: frames [rows, n_fft] -> spectra [rows, n_bins] complex -> |X| and/or |X|^2 ----
    const int64_t n_bins = c_.n_bins(), n_mels = c_.n_mels, n_mfcc = c_.n_mfcc;
    const bool need_mag = want_mag || want_contrast;
    if (need_mag) ensure_size(magnitude_, rows * n_bins);
    const bool want_power = want_mel || want_chroma || want_tuning;
    if (want_power) ensure_size(power_, rows * n_bins);
    if (request.poison && need_mag) poison_prefix(magnitude_, rows * n_bins);
    float* magnitude = need_mag ? raw(magnitude_) : nullptr;
    float* power = want_power ? raw(power_) : nullptr;
    if (c_.fft_float64) stft(frames64_, spectra64_, table, rows, magnitude, power);
    else stft(frames_, spectra_, table, rows, magnitude, power);
    if (want_contrast) spectral_contrast(request, rows, first, maxima);

    // ---- piptrack peaks of each row (estimate_tuning's candidates), compacted in row order, to each piece's track ----
    if (want_tuning) find_tuning_candidates(request, rows, first, raw(power_), c_.bins_per_octave, &BatchPiece::tuning);
    // the CQT's estimate_tuning: the same piptrack on the MAGNITUDE, at the CQT's bins per octave
    if (want_cqt_tuning)
      find_tuning_candidates(request, rows, first, raw(magnitude_), c_.cqt_bins_per_octave, &BatchPiece::cqt_tuning);

    // ---- chroma [rows, n_chroma] = power @ C^T (C at each piece's tuning), then each row / max |row| ----
    const int64_t n_chroma = c_.n_chroma;
    if (want_chroma) {
      ensure_size(chroma_, rows * n_chroma);
      ensure_size(chroma_max_, rows);
      ensure_size(chroma_keys_, rows);
      if (request.poison) {
        poison_prefix(chroma_, rows * n_chroma);
        poison_prefix(chroma_max_, rows);
      }
      // The distinct filterbanks of the batch, uploaded once each; one GEMM per run of pieces sharing one.
      std::vector<const float*> banks;
      std::vector<int64_t> bank_of(static_cast<size_t>(P), -1);
      for (int64_t p = 0; p < P; ++p) {
        const float* bank = pieces[static_cast<size_t>(p)].chroma_bank;
        if (bank == nullptr) continue;
        auto it = std::find(banks.begin(), banks.end(), bank);
        bank_of[p] = it - banks.begin();
        if (it == banks.end()) banks.push_back(bank);
      }
      const int64_t bank_size = n_chroma * n_bins;
      ensure_size(chroma_w_, static_cast<int64_t>(banks.size()) * bank_size);
      for (size_t b = 0; b < banks.size(); ++b)
        thr::copy(banks[b], banks[b] + bank_size, chroma_w_.begin() + static_cast<int64_t>(b) * bank_size);
      for (int64_t p0 = 0; p0 < P;) {
        int64_t p1 = p0 + 1;
        while (p1 < P && bank_of[p1] == bank_of[p0]) ++p1;
        if (bank_of[p0] >= 0)
          gemm_->abt(frame_off[p1] - frame_off[p0], n_chroma, n_bins, raw(power_) + frame_off[p0] * n_bins,
                     raw(chroma_w_) + bank_of[p0] * bank_size, raw(chroma_) + frame_off[p0] * n_chroma);
        p0 = p1;
      }
      auto row_keys = thr::make_transform_iterator(first, RowDivider(n_chroma));
      auto abs_values = thr::make_transform_iterator(chroma_.begin(), AbsFunctor{});
      thr::reduce_by_key(thr::device, row_keys, row_keys + rows * n_chroma, abs_values, chroma_keys_.begin(),
                         chroma_max_.begin(), thr::equal_to<int64_t>(), thr::maximum<float>());
      thr::for_each(thr::device, first, first + rows * n_chroma,
                    InfNormFunctor{raw(chroma_), raw(chroma_max_), RowDivider(n_chroma)});
    }
    if (want_tonnetz) {  // tonnetz of chroma_stft (tonnetz_chroma = stft)
      if (static_cast<int64_t>(c_.tonnetz_phi.size()) != 6 * n_chroma)
        throw std::invalid_argument("device engine: tonnetz of chroma_stft without its constants");
      ensure_size(tonnetz_, rows * 6);
      if (request.poison) poison_prefix(tonnetz_, rows * 6);
      thr::for_each(thr::device, first, first + rows * 6, TonnetzFunctor{raw(chroma_), raw(phi_), raw(tonnetz_), n_chroma});
    }

    // ---- mel [rows, n_mels] = power [rows, n_bins] @ W^T; dB; per-piece max; clip; mfcc = dB @ D^T ----
    if (want_mel) {
      ensure_size(mel_, rows * n_mels);
      if (request.poison) poison_prefix(mel_, rows * n_mels);
      gemm_->abt(rows, n_mels, n_bins, raw(power_), raw(mel_w_), raw(mel_));
    }
    if (want_db) {
      ensure_size(db_, rows * n_mels);
      ensure_size(max_, P);
      ensure_size(max_keys_, P);
      ensure_size(floor_, P);
      if (request.poison) {
        poison_prefix(db_, rows * n_mels);
        poison_prefix(max_, P);
      }
      thr::transform(thr::device, mel_.begin(), mel_.begin() + rows * n_mels, db_.begin(),
                     DbFunctor{c_.amin, c_.ref_db});
      auto keys = thr::make_transform_iterator(first, RowPieceKey{raw(row_piece_), RowDivider(n_mels)});
      thr::reduce_by_key(thr::device, keys, keys + rows * n_mels, db_.begin(), max_keys_.begin(), max_.begin(),
                         thr::equal_to<int64_t>(), thr::maximum<float>());
      thr::transform(thr::device, first, first + P, floor_.begin(), ClipFloorFunctor<float>{raw(max_), raw(whole_), c_.top_db});
      thr::for_each(thr::device, first, first + rows * n_mels,
                    ClipFunctor{raw(db_), raw(floor_), raw(row_piece_), RowDivider(n_mels)});
      thr::copy(max_.begin(), max_.begin() + P, maxima.mel_db.begin());
    }
    if (want_mfcc) {
      ensure_size(mfcc_, rows * n_mfcc);
      if (request.poison) poison_prefix(mfcc_, rows * n_mfcc);
      gemm_->abt(rows, n_mfcc, n_mels, raw(db_), raw(dct_), raw(mfcc_));
    }

    // ---- results to the tracks' host rows, through the staging (delivered by the next batch or drain()) ----
    stage_batch(downloads_, [&](StagedDownloads* d, size_t* bytes) {
      for (int64_t p = 0; p < P; ++p) {
        const BatchPiece& b = pieces[static_cast<size_t>(p)];
        const int64_t r0 = frame_off[p], n = b.n_frames;
        if (b.magnitude) stage_rows(d, bytes, magnitude_, r0, n, n_bins, b.magnitude);
        if (b.melspectrogram) stage_rows(d, bytes, mel_, r0, n, n_mels, b.melspectrogram);
        if (b.mel_db) stage_rows(d, bytes, db_, r0, n, n_mels, b.mel_db);
        if (b.mfcc && b.kind == PieceKind::kWholeTrack) stage_rows(d, bytes, mfcc_, r0, n, n_mfcc, b.mfcc);
        if (b.chroma) stage_rows(d, bytes, chroma_, r0, n, n_chroma, b.chroma);
        if (b.contrast && b.kind == PieceKind::kWholeTrack)
          stage_rows(d, bytes, contrast_, r0, n, c_.n_contrast(), b.contrast);
        if (b.contrast_peak_db) {
          stage_rows(d, bytes, contrast_peak_, r0, n, c_.n_contrast(), b.contrast_peak_db);
          stage_rows(d, bytes, contrast_valley_, r0, n, c_.n_contrast(), b.contrast_valley_db);
        }
        if (b.tonnetz) stage_rows(d, bytes, tonnetz_, r0, n, 6, b.tonnetz);
      }
    });
    return maxima;
  }

  void finish_track(float* mel_db, float* mfcc, int64_t rows, float track_max_db, int64_t max_rows,
                    bool poison) override {
    const int64_t n_mels = c_.n_mels, n_mfcc = c_.n_mfcc;
    const float floor = c_.top_db > 0.0 ? static_cast<float>(static_cast<double>(track_max_db) - c_.top_db)
                                        : -std::numeric_limits<float>::infinity();
    upload(std::vector<float>{floor}, floor_);
    thr::counting_iterator<int64_t> first(0);
    for (int64_t r0 = 0; r0 < rows; r0 += max_rows) {
      const int64_t n = std::min(max_rows, rows - r0);
      ensure_size(row_piece_, n);
      thr::fill_n(thr::device, row_piece_.begin(), n, int64_t{0});  // one piece: the track
      ensure_size(db_, n * n_mels);
      thr::copy(mel_db + r0 * n_mels, mel_db + (r0 + n) * n_mels, db_.begin());
      thr::for_each(thr::device, first, first + n * n_mels, ClipFunctor{raw(db_), raw(floor_), raw(row_piece_), RowDivider(n_mels)});
      download_rows(db_, 0, n, n_mels, mel_db + r0 * n_mels);
      if (mfcc) {
        ensure_size(mfcc_, n * n_mfcc);
        if (poison) poison_prefix(mfcc_, n * n_mfcc);
        gemm_->abt(n, n_mfcc, n_mels, raw(db_), raw(dct_), raw(mfcc_));
        download_rows(mfcc_, 0, n, n_mfcc, mfcc + r0 * n_mfcc);
      }
    }
  }

  void finish_contrast(const double* peak_db, const double* valley_db, float* contrast, int64_t rows,
                       double peak_max, double valley_max, int64_t max_rows, bool poison) override {
    const int64_t nc = c_.n_contrast();
    const auto floor_of = [&](double max_db) {
      return c_.contrast_top_db > 0.0 ? max_db - c_.contrast_top_db : -std::numeric_limits<double>::infinity();
    };
    upload(std::vector<double>{floor_of(peak_max)}, contrast_peak_floor_);
    upload(std::vector<double>{floor_of(valley_max)}, contrast_valley_floor_);
    thr::counting_iterator<int64_t> first(0);
    for (int64_t r0 = 0; r0 < rows; r0 += max_rows) {
      const int64_t n = std::min(max_rows, rows - r0);
      ensure_size(row_piece_, n);
      thr::fill_n(thr::device, row_piece_.begin(), n, int64_t{0});  // one piece: the track
      ensure_size(contrast_peak_, n * nc);
      ensure_size(contrast_valley_, n * nc);
      ensure_size(contrast_, n * nc);
      if (poison) poison_prefix(contrast_, n * nc);
      thr::copy(peak_db + r0 * nc, peak_db + (r0 + n) * nc, contrast_peak_.begin());
      thr::copy(valley_db + r0 * nc, valley_db + (r0 + n) * nc, contrast_valley_.begin());
      thr::for_each(thr::device, first, first + n * nc,
                    ContrastClipFunctor{raw(contrast_peak_), raw(contrast_valley_), raw(contrast_peak_floor_),
                                        raw(contrast_valley_floor_), raw(row_piece_), RowDivider(nc), raw(contrast_)});
      download_rows(contrast_, 0, n, nc, contrast + r0 * nc);
    }
  }

  void run_cqt_batch(const CqtBatchRequest& request) override { cqt_.run(request); }

  std::vector<double> estimate_tunings(const std::vector<const TuningCandidates*>& tracks,
                                       int64_t max_elements) override {
    const int64_t T = static_cast<int64_t>(tracks.size());
    std::vector<double> out(static_cast<size_t>(T), 0.0);
    const int64_t n_hist = static_cast<int64_t>(c_.tuning_edges.size()) - 1;
    if (n_hist < 1) throw std::invalid_argument("device engine: estimate_tunings without tuning edges");
    max_elements = std::max<int64_t>(max_elements, 1);
    thr::counting_iterator<int64_t> first(0);
    for (int64_t g0 = 0; g0 < T; g0 += kTuningGroupTracks) {
      const int64_t S = std::min(kTuningGroupTracks, T - g0), Q = 2 * S;
      std::vector<int64_t> count(static_cast<size_t>(S)), rank(static_cast<size_t>(Q));
      for (int64_t s = 0; s < S; ++s) {
        const TuningCandidates& t = *tracks[static_cast<size_t>(g0 + s)];
        if (t.mag.size() != t.bin.size()) throw std::invalid_argument("device engine: tuning candidates mismatch");
        const int64_t m = static_cast<int64_t>(t.mag.size());
        count[s] = m;
        rank[2 * s] = m > 0 ? (m - 1) / 2 : 0;
        rank[2 * s + 1] = m / 2;
      }
      upload(count, tune_count_);
      upload(rank, tune_rank_);
      upload(std::vector<int64_t>(static_cast<size_t>(Q), 0), tune_prefix_);
      // Streams the group's candidates through the device, at most max_elements at a time: mag, bin and the
      // group-local segment of each element, then calls step(n).
      ensure_size(tune_mag_, max_elements);
      ensure_size(tune_bin_, max_elements);
      auto stream = [&](auto&& step) {
        int64_t s = 0, off = 0;
        while (true) {
          std::vector<int64_t> run_off{0}, run_seg;
          int64_t n = 0;
          while (s < S && n < max_elements) {
            const TuningCandidates& t = *tracks[static_cast<size_t>(g0 + s)];
            const int64_t take = std::min(max_elements - n, count[s] - off);
            if (take > 0) {
              thr::copy(t.mag.data() + off, t.mag.data() + off + take, tune_mag_.begin() + n);
              thr::copy(t.bin.data() + off, t.bin.data() + off + take, tune_bin_.begin() + n);
              n += take;
              off += take;
              run_off.push_back(n);
              run_seg.push_back(s);
            }
            if (off == count[s]) {
              ++s;
              off = 0;
            }
          }
          if (n == 0) return;
          upload(run_off, tune_run_off_);
          upload(run_seg, tune_run_seg_);
          ensure_size(tune_seg_, n);
          thr::upper_bound(thr::device, tune_run_off_.begin() + 1, tune_run_off_.end(), first, first + n,
                           tune_seg_.begin());
          thr::for_each(thr::device, first, first + n, GatherSegment{raw(tune_run_seg_), raw(tune_seg_)});
          step(n);
        }
      };
      // Histogram of keys_[0, n_keys) added to tune_hist_: sort, count each distinct key, add the counts (int64).
      auto accumulate = [&](int64_t n_keys) {
        thr::sort(thr::device, tune_keys_.begin(), tune_keys_.begin() + n_keys);
        ensure_size(tune_unique_, n_keys);
        ensure_size(tune_key_count_, n_keys);
        const auto ends = thr::reduce_by_key(thr::device, tune_keys_.begin(), tune_keys_.begin() + n_keys,
                                             thr::make_constant_iterator(int64_t{1}), tune_unique_.begin(),
                                             tune_key_count_.begin());
        const int64_t n_unique = ends.first - tune_unique_.begin();
        thr::for_each(thr::device, first, first + n_unique,
                      AccumulateHistogram{raw(tune_unique_), raw(tune_key_count_), raw(tune_hist_)});
      };
      for (int pass = 0; pass < 3; ++pass) {
        ensure_size(tune_hist_, Q * kRadixBins);
        thr::fill_n(thr::device, tune_hist_.begin(), Q * kRadixBins, int64_t{0});
        stream([&](int64_t n) {
          ensure_size(tune_keys_, 2 * n);
          thr::transform(thr::device, first, first + 2 * n, tune_keys_.begin(),
                         RadixDigitKey{raw(tune_mag_), raw(tune_seg_), raw(tune_prefix_), kRadixShift[pass],
                                       kRadixBits[pass], pass > 0 ? kRadixShift[pass - 1] : 0, pass == 0});
          accumulate(2 * n);
        });
        thr::for_each(thr::device, first, first + Q,
                      RadixSelectStep{raw(tune_hist_), raw(tune_count_), raw(tune_prefix_), raw(tune_rank_),
                                      kRadixBits[pass]});
      }
      ensure_size(tune_median_, S);
      thr::for_each(thr::device, first, first + S, MedianFunctor{raw(tune_prefix_), raw(tune_count_), raw(tune_median_)});
      const int64_t n_slots = S * (n_hist + 1);
      ensure_size(tune_hist_, n_slots);
      thr::fill_n(thr::device, tune_hist_.begin(), n_slots, int64_t{0});
      stream([&](int64_t n) {
        ensure_size(tune_keys_, n);
        thr::transform(thr::device, first, first + n, tune_keys_.begin(),
                       TuningBinKey{raw(tune_mag_), raw(tune_bin_), raw(tune_seg_), raw(tune_median_), n_hist + 1});
        accumulate(n);
      });
      ensure_size(tune_result_, S);
      thr::for_each(thr::device, first, first + S,
                    TuningArgmax{raw(tune_hist_), raw(tuning_edges_), n_hist, raw(tune_result_)});
      thr::copy(tune_result_.begin(), tune_result_.begin() + S, out.begin() + g0);
    }
    return out;
  }

 private:
  /// Tracks per estimate_tunings group: bounds its histograms (2 x 2048 int64 counts per track and pass).
  static constexpr int64_t kTuningGroupTracks = 256;

  /// Frames (precision T) -> FFT -> |X| and/or |X|^2 (float32) of every batch row.
  template <class T>
  void stft(thr::device_vector<T>& frames, thr::device_vector<T>& spectra, const PieceTable& table, int64_t rows,
            float* magnitude, float* power) {
    const int64_t n_fft = c_.n_fft, n_bins = c_.n_bins();
    thr::counting_iterator<int64_t> first(0);
    ensure_size(frames, rows * n_fft);
    ensure_size(spectra, rows * n_bins * 2);
    thr::transform(thr::device, first, first + rows * n_fft, frames.begin(),
                   FrameFunctor<T>{table, raw(samples_), raw(window_), RowDivider(n_fft), n_fft, c_.hop_length, c_.pad});
    fft_->forward(raw(frames), raw(spectra), rows);
    thr::for_each(thr::device, first, first + rows * n_bins, SpectrumFunctor<T>{raw(spectra), magnitude, power});
  }

  /// spectral_contrast of the batch's magnitude rows: peak and valley dB per (row, band), their per-piece maxima
  /// (into maxima), and for whole tracks the clipped difference; chunks keep the unclipped dB (finish_contrast).
  void spectral_contrast(const BatchRequest& request, int64_t rows, thr::counting_iterator<int64_t> first,
                         PieceMaxima& maxima) {
    const int64_t P = static_cast<int64_t>(request.pieces.size()), nc = c_.n_contrast(), n = rows * nc;
    if (nc == 0) throw std::invalid_argument("device engine: spectral_contrast without contrast bands");
    ensure_size(contrast_scratch_, rows * contrast_scratch_stride_);
    ensure_size(contrast_peak_, n);
    ensure_size(contrast_valley_, n);
    ensure_size(contrast_, n);
    ensure_size(contrast_peak_max_, P);
    ensure_size(contrast_valley_max_, P);
    ensure_size(contrast_peak_floor_, P);
    ensure_size(contrast_valley_floor_, P);
    ensure_size(max_keys_, P);
    if (request.poison) {
      poison_prefix(contrast_peak_, n);
      poison_prefix(contrast_valley_, n);
      poison_prefix(contrast_, n);
      poison_prefix(contrast_peak_max_, P);
      poison_prefix(contrast_valley_max_, P);
    }
    thr::for_each(thr::device, first, first + n,
                  ContrastFunctor{raw(magnitude_), raw(contrast_begin_), raw(contrast_end_), raw(contrast_q_),
                                  raw(contrast_scratch_off_), raw(contrast_scratch_), raw(contrast_peak_),
                                  raw(contrast_valley_), RowDivider(nc), c_.n_bins(), nc, contrast_scratch_stride_,
                                  c_.contrast_amin, c_.contrast_ref_db});
    auto keys = thr::make_transform_iterator(first, RowPieceKey{raw(row_piece_), RowDivider(nc)});
    thr::reduce_by_key(thr::device, keys, keys + n, contrast_peak_.begin(), max_keys_.begin(),
                       contrast_peak_max_.begin(), thr::equal_to<int64_t>(), thr::maximum<double>());
    thr::reduce_by_key(thr::device, keys, keys + n, contrast_valley_.begin(), max_keys_.begin(),
                       contrast_valley_max_.begin(), thr::equal_to<int64_t>(), thr::maximum<double>());
    thr::transform(thr::device, first, first + P, contrast_peak_floor_.begin(),
                   ClipFloorFunctor<double>{raw(contrast_peak_max_), raw(whole_), c_.contrast_top_db});
    thr::transform(thr::device, first, first + P, contrast_valley_floor_.begin(),
                   ClipFloorFunctor<double>{raw(contrast_valley_max_), raw(whole_), c_.contrast_top_db});
    thr::for_each(thr::device, first, first + n,
                  ContrastClipFunctor{raw(contrast_peak_), raw(contrast_valley_), raw(contrast_peak_floor_),
                                      raw(contrast_valley_floor_), raw(row_piece_), RowDivider(nc), raw(contrast_)});
    thr::copy(contrast_peak_max_.begin(), contrast_peak_max_.begin() + P, maxima.contrast_peak.begin());
    thr::copy(contrast_valley_max_.begin(), contrast_valley_max_.begin() + P, maxima.contrast_valley.begin());
  }

  /// Piptrack over the batch's spectrum rows (power or magnitude, [rows, n_bins]) at bins_per_octave; each piece's
  /// peaks are appended to its TuningCandidates (the piece's member `dest`).
  void find_tuning_candidates(const BatchRequest& request, int64_t rows, thr::counting_iterator<int64_t> first,
                              const float* spectrum, int64_t bins_per_octave, TuningCandidates* BatchPiece::*dest) {
    const auto& pieces = request.pieces;
    const int64_t P = static_cast<int64_t>(pieces.size()), n_bins = c_.n_bins();
    const int64_t kb = std::max<int64_t>(c_.tuning_k_lo, 1), width = c_.tuning_k_hi - kb;
    if (width <= 0) return;  // no bin in piptrack's band: no pitch, tuning 0
    ensure_size(row_max_, rows);
    ensure_size(chroma_keys_, rows);
    auto row_keys = thr::make_transform_iterator(first, RowDivider(n_bins));
    thr::reduce_by_key(thr::device, row_keys, row_keys + rows * n_bins, thr::device_pointer_cast(spectrum),
                       chroma_keys_.begin(), row_max_.begin(), thr::equal_to<int64_t>(), thr::maximum<float>());
    const int64_t n = rows * width;
    ensure_size(peak_mag_, n);
    ensure_size(peak_bin_, n);
    thr::for_each(thr::device, first, first + n,
                  PiptrackFunctor{spectrum, raw(row_max_), raw(tuning_edges_), raw(peak_mag_), raw(peak_bin_),
                                  RowDivider(width), n_bins, kb, width,
                                  static_cast<int64_t>(c_.tuning_edges.size()) - 1,
                                  static_cast<double>(c_.sample_rate), static_cast<double>(c_.n_fft),
                                  static_cast<float>(bins_per_octave), c_.tuning_threshold});
    // Peaks per piece (every piece has >= 1 row, so every piece has a key), then the peaks in row order.
    ensure_size(peak_count_, P);
    ensure_size(max_keys_, P);
    auto piece_keys = thr::make_transform_iterator(first, RowPieceKey{raw(row_piece_), RowDivider(width)});
    auto is_peak = thr::make_transform_iterator(peak_bin_.begin(), CandidateCount{});
    thr::reduce_by_key(thr::device, piece_keys, piece_keys + n, is_peak, max_keys_.begin(), peak_count_.begin());
    ensure_size(peak_mag_out_, n);
    ensure_size(peak_bin_out_, n);
    thr::copy_if(thr::device, peak_mag_.begin(), peak_mag_.begin() + n, peak_bin_.begin(), peak_mag_out_.begin(),
                 IsCandidate{});
    thr::copy_if(thr::device, peak_bin_.begin(), peak_bin_.begin() + n, peak_bin_.begin(), peak_bin_out_.begin(),
                 IsCandidate{});
    std::vector<int64_t> count(static_cast<size_t>(P));
    thr::copy(peak_count_.begin(), peak_count_.begin() + P, count.begin());
    int64_t off = 0;
    for (int64_t p = 0; p < P; ++p) {
      TuningCandidates* t = pieces[static_cast<size_t>(p)].*dest;
      if (t != nullptr && count[p] > 0) {
        const size_t old = t->mag.size();
        t->mag.resize(old + static_cast<size_t>(count[p]));
        t->bin.resize(old + static_cast<size_t>(count[p]));
        thr::copy(peak_mag_out_.begin() + off, peak_mag_out_.begin() + off + count[p], t->mag.begin() + old);
        thr::copy(peak_bin_out_.begin() + off, peak_bin_out_.begin() + off + count[p], t->bin.begin() + old);
      }
      off += count[p];
    }
  }

  void drain() override { downloads_.drain(); }
  void discard() noexcept override { downloads_.discard(); }

  CopyBandwidth measure_copy_bandwidth(int64_t bytes) override {
    const int64_t n = std::max<int64_t>(1, bytes / static_cast<int64_t>(sizeof(float)));
    std::vector<float> host(static_cast<size_t>(n), 1.0f);
    thr::device_vector<float> a(host.begin(), host.end()), b(static_cast<size_t>(n), 0.0f);
    const double size = static_cast<double>(n) * static_cast<double>(sizeof(float));
    auto best_seconds = [](auto&& copy) {  // the first run pays the page faults; then the best of three
      copy();
      double best = std::numeric_limits<double>::infinity();
      for (int r = 0; r < 3; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        copy();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return std::max(best, 1e-9);
    };
    CopyBandwidth bw;
    bw.host_to_device = size / best_seconds([&] { thr::copy(host.begin(), host.end(), a.begin()); });
    bw.device_to_device = 2.0 * size / best_seconds([&] { thr::copy(a.begin(), a.end(), b.begin()); });
    bw.device_to_host = size / best_seconds([&] { thr::copy(b.begin(), b.end(), host.begin()); });
    return bw;
  }

  ChainConstants c_;
  std::unique_ptr<BatchedRealFft> fft_;
  std::unique_ptr<RowMajorGemm> gemm_;
  std::unique_ptr<CopyQueue> copies_;
  StagedDownloads downloads_;  // results of run_batch and run_cqt_batch on their way to the host
  StagedUploads uploads_;      // run_batch's samples on their way to the device
  CqtStage cqt_;
  // Constants (uploaded once) and per-batch buffers (grown, never shrunk, so batches reuse them).
  thr::device_vector<double> window_, frames64_, spectra64_;
  thr::device_vector<float> mel_w_, dct_, chroma_w_;
  thr::device_vector<double> tuning_edges_, tune_result_;
  thr::device_vector<float> row_max_, peak_mag_, peak_mag_out_, tune_mag_, tune_median_;
  thr::device_vector<int32_t> peak_bin_, peak_bin_out_, tune_bin_;
  thr::device_vector<int64_t> peak_count_, tune_count_, tune_rank_, tune_prefix_, tune_run_off_, tune_run_seg_,
      tune_seg_, tune_keys_, tune_unique_, tune_key_count_, tune_hist_;
  thr::device_vector<float> chroma_, chroma_max_, tonnetz_;
  thr::device_vector<double> phi_;
  thr::device_vector<int64_t> chroma_keys_;
  thr::device_vector<int64_t> row_piece_, frame_off_, sample_off_, sample_begin_, track_samples_, frame_begin_, max_keys_;
  thr::device_vector<int8_t> whole_;
  thr::device_vector<int64_t> contrast_begin_, contrast_end_, contrast_q_, contrast_scratch_off_;
  int64_t contrast_scratch_stride_ = 0;  // floats of scratch per row: 2 q[k] per band
  thr::device_vector<float> contrast_scratch_, contrast_;
  thr::device_vector<double> contrast_peak_, contrast_valley_, contrast_peak_max_, contrast_valley_max_,
      contrast_peak_floor_, contrast_valley_floor_;
  thr::device_vector<float> samples_, frames_, spectra_, magnitude_, power_, mel_, db_, max_, floor_, mfcc_;
};

}  // namespace songlines::features::device_engine::SONGLINES_DEVICE_BACKEND_NS
