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
// track, top_db clip). Layout of every buffer: row-major [rows = batch frames, dim].
#ifndef SONGLINES_DEVICE_BACKEND_NS
#error "define SONGLINES_DEVICE_BACKEND_NS before including mel_chain.inl"
#endif

#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/binary_search.h>
#include <thrust/reduce.h>
#include <thrust/transform.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "features/device_engine/chain.h"
#include "features/device_engine/row_divider.h"
#include "features/device_engine/library_calls.h"

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

/// frames[row, i] = window[i] * y[frame * hop - pad + i], zero outside the track (pad_mode "constant").
struct FrameFunctor {
  PieceTable table;
  const float* samples;
  const float* window;
  RowDivider row_of;  // by n_fft
  int64_t n_fft, hop, pad;
  __host__ __device__ float operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t i = e - row * n_fft;
    const int64_t p = table.row_piece[row];
    const int64_t frame = table.frame_begin[p] + (row - table.frame_off[p]);
    const int64_t s = frame * hop - pad + i;
    if (s < 0 || s >= table.track_samples[p]) return 0.0f;
    return window[i] * samples[table.sample_off[p] + (s - table.sample_begin[p])];
  }
};

/// magnitude = |X| (as np.abs of complex64, computed in float64 and rounded), power = magnitude^2 in float32
/// (the reference's order, src/features/stft.cpp). Either output may be null.
struct SpectrumFunctor {
  const float* spectra;  // [rows, n_bins, 2]
  float* magnitude;      // [rows, n_bins] or null
  float* power;          // [rows, n_bins] or null
  __host__ __device__ void operator()(int64_t e) const {
    const double re = spectra[2 * e], im = spectra[2 * e + 1];
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

/// floor of piece p: max_db[p] - top_db for whole tracks, -inf for chunks (clipped in finish_track).
struct ClipFloorFunctor {
  const float* max_db;
  const int8_t* whole;
  double top_db;
  __host__ __device__ float operator()(int64_t p) const {
    if (top_db <= 0.0 || !whole[p]) return -INFINITY;
    return static_cast<float>(static_cast<double>(max_db[p]) - top_db);
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
inline void download_rows(const thr::device_vector<float>& dev, int64_t row0, int64_t rows, int64_t dim, float* host) {
  thr::copy(dev.begin() + row0 * dim, dev.begin() + (row0 + rows) * dim, host);
}

class MelChain final : public Chain {
 public:
  MelChain(const ChainConstants& c, std::unique_ptr<BatchedRealFft> fft, std::unique_ptr<RowMajorGemm> gemm)
      : c_(c), fft_(std::move(fft)), gemm_(std::move(gemm)) {
    upload(c_.window, window_);
    upload(c_.mel, mel_w_);
    upload(c_.dct, dct_);
    upload(c_.chroma, chroma_w_);
  }

  std::vector<float> run_batch(const BatchRequest& request) override {
    const auto& pieces = request.pieces;
    const int64_t P = static_cast<int64_t>(pieces.size());
    std::vector<float> max_out(static_cast<size_t>(P), std::numeric_limits<float>::quiet_NaN());
    if (P == 0) return max_out;
    bool want_mag = false, want_mel = false, want_db = false, want_mfcc = false, want_chroma = false;
    for (const BatchPiece& p : pieces) {
      want_mag |= p.magnitude != nullptr;
      want_chroma |= p.chroma != nullptr;
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
    for (int64_t p = 0; p < P; ++p) {
      const BatchPiece& b = pieces[static_cast<size_t>(p)];
      thr::copy(b.samples, b.samples + b.n_samples, samples_.begin() + sample_off[p]);
    }
    thr::counting_iterator<int64_t> first(0);
    ensure_size(row_piece_, rows);
    thr::upper_bound(thr::device, frame_off_.begin() + 1, frame_off_.begin() + 1 + P, first, first + rows,
                     row_piece_.begin());
    const PieceTable table{raw(row_piece_), raw(frame_off_), raw(sample_off_), raw(sample_begin_),
                           raw(track_samples_), raw(frame_begin_), P};

    // ---- STFT: frames [rows, n_fft] -> spectra [rows, n_bins] complex -> |X| and/or |X|^2 ----
    const int64_t n_fft = c_.n_fft, n_bins = c_.n_bins(), n_mels = c_.n_mels, n_mfcc = c_.n_mfcc;
    ensure_size(frames_, rows * n_fft);
    ensure_size(spectra_, rows * n_bins * 2);
    thr::transform(thr::device, first, first + rows * n_fft, frames_.begin(),
                   FrameFunctor{table, raw(samples_), raw(window_), RowDivider(n_fft), n_fft, c_.hop_length, c_.pad});
    fft_->forward(raw(frames_), raw(spectra_), rows);
    if (want_mag) ensure_size(magnitude_, rows * n_bins);
    const bool want_power = want_mel || want_chroma;
    if (want_power) ensure_size(power_, rows * n_bins);
    if (request.poison && want_mag) poison_prefix(magnitude_, rows * n_bins);
    thr::for_each(thr::device, first, first + rows * n_bins,
                  SpectrumFunctor{raw(spectra_), want_mag ? raw(magnitude_) : nullptr,
                                  want_power ? raw(power_) : nullptr});

    // ---- chroma [rows, n_chroma] = power @ C^T, then each row / max |row| ----
    const int64_t n_chroma = c_.n_chroma;
    if (want_chroma) {
      ensure_size(chroma_, rows * n_chroma);
      ensure_size(chroma_max_, rows);
      ensure_size(chroma_keys_, rows);
      if (request.poison) {
        poison_prefix(chroma_, rows * n_chroma);
        poison_prefix(chroma_max_, rows);
      }
      gemm_->abt(rows, n_chroma, n_bins, raw(power_), raw(chroma_w_), raw(chroma_));
      auto row_keys = thr::make_transform_iterator(first, RowDivider(n_chroma));
      auto abs_values = thr::make_transform_iterator(chroma_.begin(), AbsFunctor{});
      thr::reduce_by_key(thr::device, row_keys, row_keys + rows * n_chroma, abs_values, chroma_keys_.begin(),
                         chroma_max_.begin(), thr::equal_to<int64_t>(), thr::maximum<float>());
      thr::for_each(thr::device, first, first + rows * n_chroma,
                    InfNormFunctor{raw(chroma_), raw(chroma_max_), RowDivider(n_chroma)});
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
      thr::transform(thr::device, first, first + P, floor_.begin(), ClipFloorFunctor{raw(max_), raw(whole_), c_.top_db});
      thr::for_each(thr::device, first, first + rows * n_mels,
                    ClipFunctor{raw(db_), raw(floor_), raw(row_piece_), RowDivider(n_mels)});
      thr::copy(max_.begin(), max_.begin() + P, max_out.begin());
    }
    if (want_mfcc) {
      ensure_size(mfcc_, rows * n_mfcc);
      if (request.poison) poison_prefix(mfcc_, rows * n_mfcc);
      gemm_->abt(rows, n_mfcc, n_mels, raw(db_), raw(dct_), raw(mfcc_));
    }

    // ---- results to the tracks' host rows ----
    for (int64_t p = 0; p < P; ++p) {
      const BatchPiece& b = pieces[static_cast<size_t>(p)];
      if (b.magnitude) download_rows(magnitude_, frame_off[p], b.n_frames, n_bins, b.magnitude);
      if (b.melspectrogram) download_rows(mel_, frame_off[p], b.n_frames, n_mels, b.melspectrogram);
      if (b.mel_db) download_rows(db_, frame_off[p], b.n_frames, n_mels, b.mel_db);
      if (b.mfcc && b.kind == PieceKind::kWholeTrack) download_rows(mfcc_, frame_off[p], b.n_frames, n_mfcc, b.mfcc);
      if (b.chroma) download_rows(chroma_, frame_off[p], b.n_frames, n_chroma, b.chroma);
    }
    return max_out;
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

 private:
  ChainConstants c_;
  std::unique_ptr<BatchedRealFft> fft_;
  std::unique_ptr<RowMajorGemm> gemm_;
  // Constants (uploaded once) and per-batch buffers (grown, never shrunk, so batches reuse them).
  thr::device_vector<float> window_, mel_w_, dct_, chroma_w_;
  thr::device_vector<float> chroma_, chroma_max_;
  thr::device_vector<int64_t> chroma_keys_;
  thr::device_vector<int64_t> row_piece_, frame_off_, sample_off_, sample_begin_, track_samples_, frame_begin_, max_keys_;
  thr::device_vector<int8_t> whole_;
  thr::device_vector<float> samples_, frames_, spectra_, magnitude_, power_, mel_, db_, max_, floor_, mfcc_;
};

}  // namespace songlines::features::device_engine::SONGLINES_DEVICE_BACKEND_NS
