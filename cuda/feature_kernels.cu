// Kernels of the CUDA feature engine. Each mirrors one step of librosa 0.11 (cited per kernel; the exact
// definitions are in shared/golden/LIBROSA_DEFINITIONS.md). Where librosa's float32 arithmetic decides a
// discrete outcome (piptrack peaks and the tuning histogram), the kernels use the _rn intrinsics so nvcc cannot
// contract a*b+c into an FMA and change a rounding that numpy does not make.
#include <cfloat>
#include <cmath>

#include "cuda/cuda_check.h"
#include "cuda/feature_kernels.h"

namespace songlines::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);
}

// Float max with atomics on the ordered bit patterns (non-negative floats order as signed ints, negative floats
// in reverse as unsigned ints). The target must start at -inf.
__device__ void atomic_max(float* addr, float v) {
  if (v >= 0.0f)
    atomicMax(reinterpret_cast<int*>(addr), __float_as_int(v));
  else
    atomicMin(reinterpret_cast<unsigned int*>(addr), __float_as_uint(v));
}
__device__ void atomic_max(double* addr, double v) {
  if (v >= 0.0)
    atomicMax(reinterpret_cast<long long*>(addr), __double_as_longlong(v));
  else
    atomicMin(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(__double_as_longlong(v)));
}

template <typename T>
__device__ T lowest();
template <>
__device__ float lowest<float>() { return -INFINITY; }
template <>
__device__ double lowest<double>() { return -INFINITY; }

template <typename T>
__device__ T block_reduce_max(T v, T* shared) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int n_warps = (blockDim.x + 31) / 32;
  v = threadIdx.x < n_warps ? shared[threadIdx.x] : lowest<T>();
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  T r = shared[0];
  __syncthreads();
  return r;
}

template <typename T>
__device__ T block_reduce_sum(T v, T* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int n_warps = (blockDim.x + 31) / 32;
  v = threadIdx.x < n_warps ? shared[threadIdx.x] : T(0);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  T r = shared[0];
  __syncthreads();
  return r;
}

// ---- framing (librosa stft: center=True, pad_mode="constant", frames y_pad[t*hop : t*hop+n_fft]) ---------------
__global__ void frame_signal_kernel(const float* __restrict__ signal, RaggedBatch batch, int64_t f0, int64_t count,
                                    int n_fft, int hop, int pad, const float* __restrict__ window,
                                    float* __restrict__ out) {
  for (int64_t r = blockIdx.x; r < count; r += gridDim.x) {
    int64_t f = f0 + r;
    int track = batch.frame_track[f];
    int64_t local = f - batch.frame_offsets[track];
    int64_t begin = batch.sample_offsets[track];
    int64_t length = batch.sample_offsets[track + 1] - begin;
    int64_t start = local * hop - pad;
    float* row = out + r * n_fft;
    for (int n = threadIdx.x; n < n_fft; n += blockDim.x) {
      int64_t i = start + n;
      float v = (i >= 0 && i < length) ? signal[begin + i] : 0.0f;
      row[n] = window ? window[n] * v : v;
    }
  }
}

__global__ void spectra_kernel(const cufftComplex* __restrict__ X, int64_t n, float* __restrict__ power,
                               float* __restrict__ mag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float m = hypotf(X[i].x, X[i].y);
    if (mag) mag[i] = m;
    if (power) power[i] = __fmul_rn(m, m);
  }
}

__global__ void power_to_db_kernel(const float* __restrict__ x, int64_t n, float amin, float ref_db,
                                   float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __fsub_rn(__fmul_rn(10.0f, log10f(fmaxf(amin, x[i]))), ref_db);
}
__global__ void power_to_db_kernel(const double* __restrict__ x, int64_t n, double amin, double ref_db,
                                   double* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = 10.0 * log10(fmax(amin, x[i])) - ref_db;
}

template <typename T>
__global__ void fill_kernel(T* x, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = v;
}

// Each thread scans a contiguous run of elements, keeping a running max for the current track and flushing it
// with one atomic when the track changes: atomics ~ elements / kRun, not one per element.
constexpr int kRun = 64;
template <typename T>
__global__ void segmented_max_kernel(const T* __restrict__ x, RaggedBatch batch, int dim, T* track_max) {
  int64_t n = batch.frames * dim;
  int64_t runs = (n + kRun - 1) / kRun;
  for (int64_t run = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; run < runs;
       run += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = run * kRun, end = min(n, i + kRun);
    int track = batch.frame_track[i / dim];
    T m = lowest<T>();
    for (; i < end; ++i) {
      int t = batch.frame_track[i / dim];
      if (t != track) {
        atomic_max(&track_max[track], m);
        track = t;
        m = lowest<T>();
      }
      m = max(m, x[i]);
    }
    atomic_max(&track_max[track], m);
  }
}

template <typename T>
__global__ void clip_below_max_kernel(T* x, RaggedBatch batch, int dim, const T* __restrict__ track_max, T top_db) {
  int64_t n = batch.frames * dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T floor_value = track_max[batch.frame_track[i / dim]] - top_db;
    x[i] = max(x[i], floor_value);
  }
}

// ---- piptrack (librosa core/pitch.py: piptrack, _parabolic_interpolation) -----------------------------------
// One block per frame. S is float32 as in librosa; the float ops follow numpy's order without contraction.
__global__ void piptrack_kernel(const float* __restrict__ S, RaggedBatch batch, int bins, int k_lo, int k_hi,
                                float threshold_rel, float* __restrict__ mag_key, float* __restrict__ shift_out,
                                int* peak_count) {
  __shared__ float shared[32];
  __shared__ int block_peaks;
  const int R = k_hi - k_lo;
  for (int64_t f = blockIdx.x; f < batch.frames; f += gridDim.x) {
    const float* s = S + f * bins;
    float m = -INFINITY;
    for (int k = threadIdx.x; k < bins; k += blockDim.x) m = fmaxf(m, s[k]);
    m = block_reduce_max(m, shared);
    float ref = __fmul_rn(threshold_rel, m);  // threshold * np.max(S, axis=-2)
    if (threadIdx.x == 0) block_peaks = 0;
    __syncthreads();
    int local_peaks = 0;
    for (int r = threadIdx.x; r < R; r += blockDim.x) {
      int k = k_lo + r;
      // localmax of x = S * (S > ref): x[k] > x[k-1] and x[k] >= x[k+1]; x[0] is never a peak, x[last] compares left.
      auto x = [&](int j) { return s[j] > ref ? s[j] : 0.0f; };
      bool peak = k > 0 && x(k) > x(k - 1) && (k + 1 >= bins || x(k) >= x(k + 1));
      float shift = 0.0f, avg;
      if (k == 0) {
        avg = __fsub_rn(s[1], s[0]);
      } else if (k == bins - 1) {
        avg = __fsub_rn(s[k], s[k - 1]);
      } else {
        avg = __fdiv_rn(__fsub_rn(s[k + 1], s[k - 1]), 2.0f);  // np.gradient, central difference
        float a = __fsub_rn(__fadd_rn(s[k + 1], s[k - 1]), __fmul_rn(2.0f, s[k]));
        float b = __fdiv_rn(__fsub_rn(s[k + 1], s[k - 1]), 2.0f);
        shift = fabsf(b) >= fabsf(a) ? 0.0f : __fdiv_rn(-b, a);
      }
      float dskew = __fmul_rn(__fmul_rn(0.5f, avg), shift);
      mag_key[f * R + r] = peak ? __fadd_rn(s[k], dskew) : INFINITY;
      shift_out[f * R + r] = shift;
      local_peaks += peak ? 1 : 0;
    }
    if (local_peaks) atomicAdd(&block_peaks, local_peaks);
    __syncthreads();
    if (threadIdx.x == 0 && block_peaks) atomicAdd(&peak_count[batch.frame_track[f]], block_peaks);
    __syncthreads();
  }
}

// np.median: middle element, or the float32 mean of the two middle elements.
__global__ void track_median_kernel(const float* __restrict__ sorted, RaggedBatch batch, int R,
                                    const int* __restrict__ peak_count, float* threshold) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= batch.n_tracks) return;
  int n = peak_count[t];
  const float* seg = sorted + batch.frame_offsets[t] * R;
  if (n == 0)
    threshold[t] = 0.0f;
  else if (n % 2 == 1)
    threshold[t] = seg[n / 2];
  else
    threshold[t] = __fdiv_rn(__fadd_rn(seg[n / 2 - 1], seg[n / 2]), 2.0f);
}

// np.histogram with explicit edges e_i = i*0.01 + (-0.5) (np.linspace), e_100 = 0.5: bin i holds e_i <= x < e_{i+1},
// the last bin also x == 0.5.
__device__ int tuning_bin(double x) {
  if (x < -0.5 || x > 0.5) return -1;
  int lo = 0, hi = kTuningBins;  // find the last edge index i with e_i <= x
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    double e = __dadd_rn(__dmul_rn(static_cast<double>(mid), 0.01), -0.5);
    if (e <= x) lo = mid; else hi = mid;
  }
  return lo;
}

__global__ void tuning_histogram_kernel(const float* __restrict__ mag_key, const float* __restrict__ shift,
                                        RaggedBatch batch, int R, int k_lo, double sample_rate, int n_fft,
                                        int bins_per_octave, const float* __restrict__ threshold, int* hist) {
  int64_t n = batch.frames * R;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float m = mag_key[i];
    if (isinf(m)) continue;  // not a peak
    int t = batch.frame_track[i / R];
    if (!(m >= threshold[t])) continue;
    int k = k_lo + static_cast<int>(i % R);
    // pitch = (k + shift) * sr / n_fft in float64 (int64 + float32 promotes to float64 in numpy)
    double pitch = __ddiv_rn(__dmul_rn(__dadd_rn(static_cast<double>(k), static_cast<double>(shift[i])), sample_rate),
                             static_cast<double>(n_fft));
    if (!(pitch > 0.0)) continue;
    double octs = log2(__ddiv_rn(pitch, 27.5));  // hz_to_octs: log2(f / (440/16))
    double v = __dmul_rn(static_cast<double>(bins_per_octave), octs);
    double residual = fmod(v, 1.0);
    if (residual < 0.0) residual += 1.0;  // np.mod takes the divisor's sign
    if (residual >= 0.5) residual -= 1.0;
    int b = tuning_bin(residual);
    if (b >= 0) atomicAdd(&hist[t * kTuningBins + b], 1);
  }
}

// ---- projections --------------------------------------------------------------------------------------------
// One block per frame, one warp per output row at a time.
__global__ void project_norm_inf_kernel(const float* __restrict__ S, RaggedBatch batch, int bins,
                                        const float* __restrict__ W, const int32_t* __restrict__ matrix_of_track,
                                        int n_out, float* __restrict__ out) {
  extern __shared__ float values[];  // [n_out]
  __shared__ float shared[32];
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = blockDim.x / 32;
  for (int64_t f = blockIdx.x; f < batch.frames; f += gridDim.x) {
    int m = matrix_of_track ? matrix_of_track[batch.frame_track[f]] : 0;
    const float* w = W + static_cast<int64_t>(m) * n_out * bins;
    const float* s = S + f * bins;
    for (int c = warp; c < n_out; c += n_warps) {
      float acc = 0.0f;
      for (int k = lane; k < bins; k += 32) acc += w[c * bins + k] * s[k];
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (lane == 0) values[c] = fmaxf(acc, 0.0f);
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < n_out; c += blockDim.x) mx = fmaxf(mx, fabsf(values[c]));
    mx = block_reduce_max(mx, shared);
    float norm = mx < FLT_MIN ? 1.0f : mx;  // util.normalize: threshold = tiny(float32), fill=None -> unchanged
    for (int c = threadIdx.x; c < n_out; c += blockDim.x) out[f * n_out + c] = values[c] / norm;
    __syncthreads();
  }
}

// ---- spectral contrast (librosa feature/spectral.py: spectral_contrast) ----------------------------------------
// One block per (frame, band): bitonic sort of the band in shared memory (padded with +inf to a power of two).
__global__ void contrast_bands_kernel(const float* __restrict__ S, int64_t frames, int bins,
                                      const int* __restrict__ band_begin, const int* __restrict__ band_end,
                                      const int* __restrict__ band_q, int n_band, int padded, double* peak,
                                      double* valley) {
  extern __shared__ float sorted[];  // [padded]
  __shared__ double shared[32];
  int band = blockIdx.y;
  int begin = band_begin[band], count = band_end[band] - begin, q = band_q[band];
  for (int64_t f = blockIdx.x; f < frames; f += gridDim.x) {
    const float* s = S + f * bins + begin;
    for (int i = threadIdx.x; i < padded; i += blockDim.x) sorted[i] = i < count ? s[i] : INFINITY;
    __syncthreads();
    for (int k = 2; k <= padded; k <<= 1) {
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int i = threadIdx.x; i < padded; i += blockDim.x) {
          int ixj = i ^ j;
          if (ixj > i) {
            float a = sorted[i], b = sorted[ixj];
            bool ascending = (i & k) == 0;
            if ((a > b) == ascending) {
              sorted[i] = b;
              sorted[ixj] = a;
            }
          }
        }
        __syncthreads();
      }
    }
    double lo = 0.0, hi = 0.0;
    for (int i = threadIdx.x; i < q; i += blockDim.x) {
      lo += sorted[i];
      hi += sorted[count - q + i];
    }
    lo = block_reduce_sum(lo, shared);
    hi = block_reduce_sum(hi, shared);
    if (threadIdx.x == 0) {
      valley[f * n_band + band] = lo / q;
      peak[f * n_band + band] = hi / q;
    }
    __syncthreads();
  }
}

__global__ void difference_kernel(const double* a, const double* b, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = static_cast<float>(a[i] - b[i]);
}

// ---- CQT (librosa core/constantq.py: __cqt_response = fft_basis.dot(stft(y, window="ones"))) ----------------
// One block per frame: the frame's spectrum is staged in shared memory, one warp per filter.
__global__ void cqt_project_kernel(const cufftComplex* __restrict__ D, RaggedBatch batch, int64_t f0, int64_t count,
                                   int bins, const cufftComplex* __restrict__ B, const int32_t* __restrict__ basis_of_track,
                                   int n_filters, const int64_t* __restrict__ frames_limit, float* __restrict__ out,
                                   int out_dim, int col0) {
  extern __shared__ cufftComplex spectrum[];  // [bins]
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = blockDim.x / 32;
  for (int64_t r = blockIdx.x; r < count; r += gridDim.x) {
    int64_t f = f0 + r;
    int track = batch.frame_track[f];
    if (f - batch.frame_offsets[track] >= frames_limit[track]) continue;  // uniform per block: no barrier skew
    for (int k = threadIdx.x; k < bins; k += blockDim.x) spectrum[k] = D[r * bins + k];
    __syncthreads();
    const cufftComplex* b = B + static_cast<int64_t>(basis_of_track[track]) * n_filters * bins;
    for (int j = warp; j < n_filters; j += n_warps) {
      float re = 0.0f, im = 0.0f;
      for (int k = lane; k < bins; k += 32) {
        cufftComplex w = b[j * bins + k], x = spectrum[k];
        re += w.x * x.x - w.y * x.y;
        im += w.x * x.y + w.y * x.x;
      }
      for (int o = 16; o > 0; o >>= 1) {
        re += __shfl_xor_sync(0xffffffffu, re, o);
        im += __shfl_xor_sync(0xffffffffu, im, o);
      }
      if (lane == 0) out[f * out_dim + col0 + j] = hypotf(re, im);
    }
    __syncthreads();
  }
}

// ---- tonnetz (librosa feature/spectral.py: tonnetz) -----------------------------------------------------------
__global__ void tonnetz_kernel(const float* __restrict__ chroma, int64_t frames, float* __restrict__ out) {
  constexpr double kPi = 3.14159265358979323846;
  const double r[6] = {7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3};
  const double scale[6] = {1, 1, 1, 1, 0.5, 0.5};
  for (int64_t f = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; f < frames; f += int64_t(gridDim.x) * blockDim.x) {
    const float* c = chroma + f * 12;
    float l1 = 0.0f;
    for (int i = 0; i < 12; ++i) l1 += fabsf(c[i]);
    float norm = l1 < FLT_MIN ? 1.0f : l1;
    for (int d = 0; d < 6; ++d) {
      double acc = 0.0;
      for (int i = 0; i < 12; ++i) {
        double v = r[d] * i - ((d % 2 == 0) ? 0.5 : 0.0);  // V[::2] -= 0.5: sin rows as shifted cosines
        acc += scale[d] * cos(kPi * v) * static_cast<double>(c[i] / norm);
      }
      out[f * 6 + d] = static_cast<float>(acc);
    }
  }
}

int grid_for_rows(int64_t rows) { return static_cast<int>(rows < 1 << 20 ? (rows > 0 ? rows : 1) : 1 << 20); }

}  // namespace

void launch_frame_signal(const float* signal, RaggedBatch batch, int64_t f0, int64_t count, int n_fft, int hop,
                         int pad, const float* window, float* out, cudaStream_t stream) {
  frame_signal_kernel<<<grid_for_rows(count), kThreads, 0, stream>>>(signal, batch, f0, count, n_fft, hop, pad,
                                                                        window, out);
  CUDA_CHECK_LAUNCH("frame_signal");
}

void launch_spectra(const cufftComplex* X, int64_t count, int bins, float* power, float* mag, cudaStream_t stream) {
  int64_t n = count * bins;
  spectra_kernel<<<blocks_for(n), kThreads, 0, stream>>>(X, n, power, mag);
  CUDA_CHECK_LAUNCH("spectra");
}

void launch_power_to_db(const float* x, int64_t n, float amin, float ref_db, float* out, cudaStream_t stream) {
  power_to_db_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, amin, ref_db, out);
  CUDA_CHECK_LAUNCH("power_to_db");
}
void launch_power_to_db(const double* x, int64_t n, double amin, double ref_db, double* out, cudaStream_t stream) {
  power_to_db_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, amin, ref_db, out);
  CUDA_CHECK_LAUNCH("power_to_db");
}

template <typename T>
static void segmented_max(const T* x, RaggedBatch batch, int dim, T* track_max, cudaStream_t stream) {
  fill_kernel<<<blocks_for(batch.n_tracks), kThreads, 0, stream>>>(track_max, int64_t(batch.n_tracks),
                                                                     static_cast<T>(-INFINITY));
  CUDA_CHECK_LAUNCH("fill");
  int64_t runs = (batch.frames * dim + kRun - 1) / kRun;
  segmented_max_kernel<<<blocks_for(runs), kThreads, 0, stream>>>(x, batch, dim, track_max);
  CUDA_CHECK_LAUNCH("segmented_max");
}
void launch_segmented_max(const float* x, RaggedBatch batch, int dim, float* track_max, cudaStream_t stream) {
  segmented_max(x, batch, dim, track_max, stream);
}
void launch_segmented_max(const double* x, RaggedBatch batch, int dim, double* track_max, cudaStream_t stream) {
  segmented_max(x, batch, dim, track_max, stream);
}

void launch_clip_below_max(float* x, RaggedBatch batch, int dim, const float* track_max, float top_db,
                           cudaStream_t stream) {
  clip_below_max_kernel<<<blocks_for(batch.frames * dim), kThreads, 0, stream>>>(x, batch, dim, track_max, top_db);
  CUDA_CHECK_LAUNCH("clip_below_max");
}
void launch_clip_below_max(double* x, RaggedBatch batch, int dim, const double* track_max, double top_db,
                           cudaStream_t stream) {
  clip_below_max_kernel<<<blocks_for(batch.frames * dim), kThreads, 0, stream>>>(x, batch, dim, track_max, top_db);
  CUDA_CHECK_LAUNCH("clip_below_max");
}

void launch_piptrack(const float* S, RaggedBatch batch, int bins, int k_lo, int k_hi, float threshold_rel,
                     float* mag_key, float* shift, int* peak_count, cudaStream_t stream) {
  CUDA_CHECK_THROW(cudaMemsetAsync(peak_count, 0, sizeof(int) * batch.n_tracks, stream));
  piptrack_kernel<<<grid_for_rows(batch.frames), kThreads, 0, stream>>>(S, batch, bins, k_lo, k_hi, threshold_rel,
                                                                          mag_key, shift, peak_count);
  CUDA_CHECK_LAUNCH("piptrack");
}

void launch_track_median(const float* sorted, RaggedBatch batch, int R, const int* peak_count, float* threshold,
                         cudaStream_t stream) {
  track_median_kernel<<<blocks_for(batch.n_tracks), kThreads, 0, stream>>>(sorted, batch, R, peak_count, threshold);
  CUDA_CHECK_LAUNCH("track_median");
}

void launch_tuning_histogram(const float* mag_key, const float* shift, RaggedBatch batch, int R, int k_lo,
                             double sample_rate, int n_fft, int bins_per_octave, const float* threshold, int* hist,
                             cudaStream_t stream) {
  CUDA_CHECK_THROW(cudaMemsetAsync(hist, 0, sizeof(int) * kTuningBins * batch.n_tracks, stream));
  tuning_histogram_kernel<<<blocks_for(batch.frames * R), kThreads, 0, stream>>>(
      mag_key, shift, batch, R, k_lo, sample_rate, n_fft, bins_per_octave, threshold, hist);
  CUDA_CHECK_LAUNCH("tuning_histogram");
}

void launch_project_norm_inf(const float* S, RaggedBatch batch, int bins, const float* W,
                             const int32_t* matrix_of_track, int n_out, float* out, cudaStream_t stream) {
  project_norm_inf_kernel<<<grid_for_rows(batch.frames), kThreads, sizeof(float) * n_out, stream>>>(
      S, batch, bins, W, matrix_of_track, n_out, out);
  CUDA_CHECK_LAUNCH("project_norm_inf");
}

void launch_contrast_bands(const float* S, int64_t frames, int bins, const int* band_begin, const int* band_end,
                           const int* band_q, int n_band, int max_band, double* peak, double* valley,
                           cudaStream_t stream) {
  int padded = 1;
  while (padded < max_band) padded <<= 1;
  dim3 grid(static_cast<unsigned>(grid_for_rows(frames) > 65535 * 4 ? 65535 * 4 : grid_for_rows(frames)),
            static_cast<unsigned>(n_band));
  contrast_bands_kernel<<<grid, kThreads, sizeof(float) * padded, stream>>>(S, frames, bins, band_begin, band_end,
                                                                            band_q, n_band, padded, peak, valley);
  CUDA_CHECK_LAUNCH("contrast_bands");
}

void launch_difference(const double* a, const double* b, int64_t n, float* out, cudaStream_t stream) {
  difference_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, n, out);
  CUDA_CHECK_LAUNCH("difference");
}

void launch_cqt_project(const cufftComplex* D, RaggedBatch batch, int64_t f0, int64_t count, int bins,
                        const cufftComplex* B, const int32_t* basis_of_track, int n_filters,
                        const int64_t* frames_limit, float* out, int out_dim, int col0, cudaStream_t stream) {
  cqt_project_kernel<<<grid_for_rows(count), kThreads, sizeof(cufftComplex) * bins, stream>>>(
      D, batch, f0, count, bins, B, basis_of_track, n_filters, frames_limit, out, out_dim, col0);
  CUDA_CHECK_LAUNCH("cqt_project");
}

void launch_tonnetz(const float* chroma, int64_t frames, float* out, cudaStream_t stream) {
  tonnetz_kernel<<<blocks_for(frames), kThreads, 0, stream>>>(chroma, frames, out);
  CUDA_CHECK_LAUNCH("tonnetz");
}

}  // namespace songlines::cuda
