// The CQT family of the device engine (cqt_mag, chroma_cqt, tonnetz), written once for both backends: included by
// mel_chain.inl inside the backend's namespace, after the helpers it uses (raw, ensure_size, upload, download_rows,
// InfNormFunctor). Every step is a Thrust algorithm over a __host__ __device__ functor, plus the float64 FFT and
// the SGEMM of library_calls.h.
//
// References (librosa 0.11, core/constantq.py): cqt -> vqt(gamma=0): octaves top down; octave i frames its signal
// y_i (centred, rectangular window, zero padding; __cqt_response's stft), multiplies the complex64 spectra by the
// octave's sparse basis (__vqt_filter_fft), and y_{i+1} = resample(y_i, 2 -> 1, soxr_hq, scale=True); the octaves
// are stacked (__trim_stack: T = min_i T_i) and each bin divided by sqrt(its filter length); feature/spectral.py
// chroma_cqt (cq_to_chroma @ |C|, threshold, norm=inf) and tonnetz (phi @ L1-normalised chroma, float64).
// The reference is src/features/cqt.cpp / tonnetz.cpp, whose float32 / float64 steps are reproduced one for one.
// The decimated signals y_i come from the host (the reference's libsoxr decimator over the whole track, see
// CqtPiece), so a piece holds any run of a track's CQT frames: every step here is row-local.

/// Per-piece tables of one octave: the signal's length, the span [begin, end) held, where it starts in the buffer.
struct CqtSpanTable {
  const int64_t* length = nullptr;   // [P]
  const int64_t* begin = nullptr;    // [P]
  const int64_t* offset = nullptr;   // [P] first buffer element of the piece's span
};

/// frames[row, k] = y_i[t hop - n_fft/2 + k] (float64; zero outside [0, length)): stft(y_i, window="ones",
/// center=True, pad_mode="constant") at track frame t of the row.
struct CqtFrameFunctor {
  const int64_t* row_piece;
  const int64_t* frame_off;
  const int64_t* frame_begin;
  CqtSpanTable span;
  const float* signal;
  RowDivider row_of;  // by n_fft
  int64_t n_fft, hop;
  __host__ __device__ double operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t k = e - row * n_fft;
    const int64_t p = row_piece[row];
    const int64_t t = frame_begin[p] + (row - frame_off[p]);
    const int64_t s = t * hop - n_fft / 2 + k;
    if (s < 0 || s >= span.length[p]) return 0.0;
    return static_cast<double>(signal[span.offset[p] + (s - span.begin[p])]);
  }
};

/// band[row, j] = float32(spectra[row, 2 band_begin + j]): the complex128 spectra's bins [band_begin, band_end)
/// rounded to complex64 (librosa's stft returns complex64 computed in float64), the only bins the basis reads.
struct BandToFloatFunctor {
  const double* spectra;  // [rows, 2 n_keep]
  RowDivider row_of;      // by 2 band width
  int64_t width, n_keep, band_begin;
  __host__ __device__ float operator()(int64_t e) const {
    const int64_t row = row_of(e);
    return static_cast<float>(spectra[row * 2 * n_keep + 2 * band_begin + (e - row * width)]);
  }
};

/// cqt[row, first_bin + r] = |response_r / sqrt(length)|: complex64 scaled in float64 and stored complex64, then
/// the magnitude in float64 rounded to float32 (as np.abs of complex64), src/features/cqt.cpp output_row.
struct CqtMagnitudeFunctor {
  const float* response;        // [rows, 2 n_filters] (re, im)
  const int64_t* row_piece;
  const int64_t* piece_bank;    // [P] bank of each piece
  const double* inv_sqrt_length;  // [banks, n_bins]
  float* cqt;                   // [rows, n_bins]
  RowDivider row_of;            // by n_filters
  int64_t n_filters, first_bin, n_bins;
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t r = e - row * n_filters;
    const double g = inv_sqrt_length[piece_bank[row_piece[row]] * n_bins + first_bin + r];
    const float re = static_cast<float>(static_cast<double>(response[2 * e]) * g);
    const float im = static_cast<float>(static_cast<double>(response[2 * e + 1]) * g);
    cqt[row * n_bins + first_bin + r] =
        static_cast<float>(sqrt(static_cast<double>(re) * re + static_cast<double>(im) * im));
  }
};

/// chroma[row, c] = sum of the CQT bins cq_to_chroma maps to c (float64, ascending bins), rounded to float32,
/// zeroed below the threshold (chroma_cqt_from_cqt before its norm).
struct ChromaCqtFunctor {
  const float* cqt;       // [rows, n_bins]
  const float* map;       // [n_chroma, n_bins] 0/1
  float* chroma;          // [rows, n_chroma]
  RowDivider row_of;      // by n_chroma
  int64_t n_chroma, n_bins;
  float threshold;
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t row = row_of(e);
    const int64_t c = e - row * n_chroma;
    const float* x = cqt + row * n_bins;
    const float* w = map + c * n_bins;
    double acc = 0.0;
    for (int64_t b = 0; b < n_bins; ++b)
      if (w[b] != 0.0f) acc += static_cast<double>(x[b]);
    float v = static_cast<float>(acc);
    if (v < threshold) v = 0.0f;
    chroma[e] = v;
  }
};

/// row_max[row] = max(0, max_c |x[row, c]|) (util.normalize's inf-norm).
struct RowAbsMaxFunctor {
  const float* x;
  float* row_max;
  int64_t dim;
  __host__ __device__ void operator()(int64_t row) const {
    float peak = 0.0f;
    for (int64_t c = 0; c < dim; ++c) {
      const float v = x[row * dim + c] < 0.0f ? -x[row * dim + c] : x[row * dim + c];
      peak = v > peak ? v : peak;
    }
    row_max[row] = peak;
  }
};

/// tonnetz[row, p] = sum_c phi[p, c] (chroma[row, c] / L1(row)) in float64, the L1 norm in float32 in ascending c
/// (rows whose norm is below float32 tiny unscaled): src/features/tonnetz.cpp tonnetz_from_chroma.
struct TonnetzFunctor {
  const float* chroma;  // [rows, n_chroma]
  const double* phi;    // [6, n_chroma]
  float* tonnetz;       // [rows, 6]
  int64_t n_chroma;
  __host__ __device__ void operator()(int64_t e) const {
    const int64_t row = e / 6, p = e - row * 6;
    const float* c = chroma + row * n_chroma;
    float l1 = 0.0f;
    for (int64_t k = 0; k < n_chroma; ++k) l1 += c[k] < 0.0f ? -c[k] : c[k];
    const float length = l1 < 1.17549435e-38f ? 1.0f : l1;  // FLT_MIN
    double acc = 0.0;
    for (int64_t k = 0; k < n_chroma; ++k) acc += phi[p * n_chroma + k] * static_cast<double>(c[k] / length);
    tonnetz[e] = static_cast<float>(acc);
  }
};

/// The CQT family's batches (Chain::run_cqt_batch) on one backend.
class CqtStage {
 public:
  CqtStage(const ChainConstants& c, RealFftFactory make_fft, RowMajorGemm* gemm, StagedDownloads* downloads)
      : c_(c), make_fft_(std::move(make_fft)), gemm_(gemm), downloads_(downloads) {
    upload(c_.cq_to_chroma, cq_to_chroma_);
    upload(c_.tonnetz_phi, phi_);
  }

  void run(const CqtBatchRequest& request) {
    const auto& pieces = request.pieces;
    const int64_t P = static_cast<int64_t>(pieces.size());
    if (P == 0) return;
    if (c_.cqt_n_bins <= 0) throw std::invalid_argument("device engine: a CQT batch without CQT constants");
    const std::vector<CqtOctaveGeometry>& octaves = pieces[0].bank->octaves;
    const int64_t n_oct = static_cast<int64_t>(octaves.size());
    bool want_chroma = false, want_tonnetz = false;
    for (const CqtPiece& p : pieces) {
      if (p.bank == nullptr || p.bank->octaves != octaves || static_cast<int64_t>(p.spans.size()) != n_oct ||
          static_cast<int64_t>(p.signals.size()) != n_oct)
        throw std::invalid_argument("device engine: CQT pieces of one batch need one octave geometry");
      want_chroma |= p.chroma != nullptr || p.tonnetz != nullptr;
      want_tonnetz |= p.tonnetz != nullptr;
    }
    if (want_chroma && c_.cqt_n_chroma <= 0) throw std::invalid_argument("device engine: chroma_cqt without constants");
    if (want_tonnetz && c_.tonnetz_phi.empty()) throw std::invalid_argument("device engine: tonnetz without constants");

    // ---- piece table: rows, banks ----
    std::vector<int64_t> frame_off(static_cast<size_t>(P + 1)), frame_begin(static_cast<size_t>(P)),
        piece_bank(static_cast<size_t>(P));
    std::vector<const CqtBank*> banks;
    int64_t rows = 0;
    for (int64_t p = 0; p < P; ++p) {
      const CqtPiece& b = pieces[static_cast<size_t>(p)];
      frame_off[p] = rows;
      frame_begin[p] = b.frame_begin;
      rows += b.n_frames;
      auto it = std::find(banks.begin(), banks.end(), b.bank);
      piece_bank[p] = it - banks.begin();
      if (it == banks.end()) banks.push_back(b.bank);
    }
    frame_off[P] = rows;
    const int64_t n_bins = c_.cqt_n_bins, n_banks = static_cast<int64_t>(banks.size());
    upload(frame_off, frame_off_);
    upload(frame_begin, frame_begin_);
    upload(piece_bank, piece_bank_);
    std::vector<double> inv_sqrt(static_cast<size_t>(n_banks * n_bins));
    for (int64_t k = 0; k < n_banks; ++k) {
      if (static_cast<int64_t>(banks[k]->inv_sqrt_length.size()) != n_bins)
        throw std::invalid_argument("device engine: CQT bank of the wrong size");
      std::copy(banks[k]->inv_sqrt_length.begin(), banks[k]->inv_sqrt_length.end(), inv_sqrt.begin() + k * n_bins);
    }
    upload(inv_sqrt, inv_sqrt_length_);
    thr::counting_iterator<int64_t> first(0);
    ensure_size(row_piece_, rows);
    thr::upper_bound(thr::device, frame_off_.begin() + 1, frame_off_.begin() + 1 + P, first, first + rows,
                     row_piece_.begin());
    ensure_size(cqt_, rows * n_bins);
    if (request.poison) poison_prefix(cqt_, rows * n_bins);

    for (int64_t i = 0; i < n_oct; ++i) {
      const CqtOctaveGeometry& g = octaves[static_cast<size_t>(i)];
      const int64_t n_fft = g.n_fft, n_keep = n_fft / 2 + 1, F = g.n_filters;
      // ---- each piece's span of y_i ----
      std::vector<int64_t> length(static_cast<size_t>(P)), begin(static_cast<size_t>(P)), offset(static_cast<size_t>(P));
      int64_t total = 0;
      for (int64_t p = 0; p < P; ++p) {
        const CqtOctaveSpan& sp = pieces[static_cast<size_t>(p)].spans[static_cast<size_t>(i)];
        length[p] = sp.length;
        begin[p] = sp.begin;
        offset[p] = total;
        total += sp.end - sp.begin;
      }
      upload(length, span_length_);
      upload(begin, span_begin_);
      upload(offset, span_offset_);
      ensure_size(signal_, std::max<int64_t>(total, 1));
      for (int64_t p = 0; p < P; ++p) {
        const CqtPiece& b = pieces[static_cast<size_t>(p)];
        const CqtOctaveSpan& sp = b.spans[static_cast<size_t>(i)];
        const float* y = b.signals[static_cast<size_t>(i)];
        thr::copy(y, y + (sp.end - sp.begin), signal_.begin() + offset[p]);
      }
      // ---- frames (float64) -> FFT -> complex64 spectra ----
      ensure_size(frames_, rows * n_fft);
      ensure_size(spectra64_, rows * n_keep * 2);
      const CqtSpanTable span{raw(span_length_), raw(span_begin_), raw(span_offset_)};
      thr::transform(thr::device, first, first + rows * n_fft, frames_.begin(),
                     CqtFrameFunctor{raw(row_piece_), raw(frame_off_), raw(frame_begin_), span, raw(signal_),
                                     RowDivider(n_fft), n_fft, g.hop});
      fft(n_fft).forward(raw(frames_), raw(spectra64_), rows);
      // the bins any of the batch's bases reads: [lo, hi), at least one bin
      int64_t lo = n_keep - 1, hi = 1;
      for (const CqtBank* bank : banks) {
        lo = std::min(lo, bank->band_begin[static_cast<size_t>(i)]);
        hi = std::max(hi, bank->band_end[static_cast<size_t>(i)]);
      }
      lo = std::min(lo, hi - 1);
      const int64_t width = 2 * (hi - lo);
      ensure_size(spectra_, rows * width);
      thr::transform(thr::device, first, first + rows * width, spectra_.begin(),
                     BandToFloatFunctor{raw(spectra64_), RowDivider(width), width, n_keep, lo});
      // ---- response [rows, 2F] = band @ basis[:, band]^T, one GEMM per run of pieces sharing a bank ----
      const int64_t basis_size = 2 * F * width;
      ensure_size(basis_, n_banks * basis_size);
      std::vector<float> cut(static_cast<size_t>(basis_size));
      for (int64_t k = 0; k < n_banks; ++k) {
        const std::vector<float>& w = banks[k]->basis[static_cast<size_t>(i)];
        if (static_cast<int64_t>(w.size()) != 2 * F * 2 * n_keep) throw std::invalid_argument("device engine: CQT basis size");
        for (int64_t r = 0; r < 2 * F; ++r)
          std::copy(w.begin() + r * 2 * n_keep + 2 * lo, w.begin() + r * 2 * n_keep + 2 * hi, cut.begin() + r * width);
        thr::copy(cut.begin(), cut.end(), basis_.begin() + k * basis_size);
      }
      ensure_size(response_, rows * 2 * F);
      if (request.poison) poison_prefix(response_, rows * 2 * F);
      for (int64_t p0 = 0; p0 < P;) {
        int64_t p1 = p0 + 1;
        while (p1 < P && piece_bank[p1] == piece_bank[p0]) ++p1;
        gemm_->abt(frame_off[p1] - frame_off[p0], 2 * F, width, raw(spectra_) + frame_off[p0] * width,
                   raw(basis_) + piece_bank[p0] * basis_size, raw(response_) + frame_off[p0] * 2 * F);
        p0 = p1;
      }
      thr::for_each(thr::device, first, first + rows * F,
                    CqtMagnitudeFunctor{raw(response_), raw(row_piece_), raw(piece_bank_), raw(inv_sqrt_length_),
                                        raw(cqt_), RowDivider(F), F, g.first_bin, n_bins});
    }

    // ---- chroma_cqt [rows, n_chroma] and tonnetz [rows, 6] ----
    const int64_t n_chroma = c_.cqt_n_chroma;
    if (want_chroma) {
      ensure_size(chroma_, rows * n_chroma);
      ensure_size(chroma_max_, rows);
      if (request.poison) {
        poison_prefix(chroma_, rows * n_chroma);
        poison_prefix(chroma_max_, rows);
      }
      thr::for_each(thr::device, first, first + rows * n_chroma,
                    ChromaCqtFunctor{raw(cqt_), raw(cq_to_chroma_), raw(chroma_), RowDivider(n_chroma), n_chroma,
                                     n_bins, c_.chroma_cqt_threshold});
      thr::for_each(thr::device, first, first + rows, RowAbsMaxFunctor{raw(chroma_), raw(chroma_max_), n_chroma});
      thr::for_each(thr::device, first, first + rows * n_chroma,
                    InfNormFunctor{raw(chroma_), raw(chroma_max_), RowDivider(n_chroma)});
    }
    if (want_tonnetz) {
      ensure_size(tonnetz_, rows * 6);
      if (request.poison) poison_prefix(tonnetz_, rows * 6);
      thr::for_each(thr::device, first, first + rows * 6, TonnetzFunctor{raw(chroma_), raw(phi_), raw(tonnetz_), n_chroma});
    }

    // ---- results to the tracks' host rows, through the chain's staging ----
    stage_batch(*downloads_, [&](StagedDownloads* d, size_t* bytes) {
      for (int64_t p = 0; p < P; ++p) {
        const CqtPiece& b = pieces[static_cast<size_t>(p)];
        if (b.cqt_mag) stage_rows(d, bytes, cqt_, frame_off[p], b.n_frames, n_bins, b.cqt_mag);
        if (b.chroma) stage_rows(d, bytes, chroma_, frame_off[p], b.n_frames, n_chroma, b.chroma);
        if (b.tonnetz) stage_rows(d, bytes, tonnetz_, frame_off[p], b.n_frames, 6, b.tonnetz);
      }
    });
  }

 private:
  /// The FFT of one octave's size (octaves may differ in n_fft), made on first use.
  BatchedRealFft& fft(int64_t n_fft) {
    auto it = fft_.find(n_fft);
    if (it == fft_.end()) it = fft_.emplace(n_fft, make_fft_(n_fft)).first;
    return *it->second;
  }

  ChainConstants c_;
  RealFftFactory make_fft_;
  RowMajorGemm* gemm_;
  StagedDownloads* downloads_;
  std::map<int64_t, std::unique_ptr<BatchedRealFft>> fft_;  // by n_fft
  thr::device_vector<double> phi_, inv_sqrt_length_, frames_, spectra64_;
  thr::device_vector<float> cq_to_chroma_, signal_, spectra_, basis_, response_, cqt_, chroma_, chroma_max_, tonnetz_;
  thr::device_vector<int64_t> frame_off_, frame_begin_, piece_bank_, row_piece_, span_length_, span_begin_,
      span_offset_;
};
