// FLAC decoding for load_audio's common case (flac_reader.h). Format: xiph.org/flac/format.html (RFC 9639).
#include "audio/flac_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <immintrin.h>
#include <type_traits>
#include <vector>

namespace songlines::audio {

namespace {

/// Zero bytes after the file's end in the read buffer: the bit reader loads 8 bytes at a time.
constexpr size_t kPadding = 16;

/// CRC-8 (polynomial x^8 + x^2 + x + 1, initial 0) of the frame header, and CRC-16 (x^16 + x^15 + x^2 + 1,
/// initial 0) of the whole frame, both MSB first. CRC-16 runs eight bytes per step with eight tables: table k
/// holds a byte's CRC followed by k zero bytes, so the eight lookups of a step sum (XOR) to the step's CRC.
struct CrcTables {
  std::array<uint8_t, 256> crc8{};
  std::array<std::array<uint16_t, 256>, 8> crc16{};
  CrcTables() {
    for (int b = 0; b < 256; ++b) {
      unsigned c = static_cast<unsigned>(b);
      for (int i = 0; i < 8; ++i) c = (c & 0x80) ? ((c << 1) ^ 0x07) : (c << 1);
      crc8[static_cast<size_t>(b)] = static_cast<uint8_t>(c);
      unsigned d = static_cast<unsigned>(b) << 8;
      for (int i = 0; i < 8; ++i) d = (d & 0x8000) ? ((d << 1) ^ 0x8005) : (d << 1);
      crc16[0][static_cast<size_t>(b)] = static_cast<uint16_t>(d);
    }
    for (size_t k = 1; k < 8; ++k)
      for (size_t b = 0; b < 256; ++b) {
        const uint16_t prev = crc16[k - 1][b];
        crc16[k][b] = static_cast<uint16_t>((prev << 8) ^ crc16[0][prev >> 8]);
      }
  }
};
const CrcTables& crc_tables() {
  static const CrcTables tables;
  return tables;
}

uint8_t crc8(const uint8_t* p, size_t n) {
  const auto& t = crc_tables().crc8;
  uint8_t c = 0;
  for (size_t i = 0; i < n; ++i) c = t[c ^ p[i]];
  return c;
}

uint16_t crc16(const uint8_t* p, size_t n) {
  const auto& t = crc_tables().crc16;
  unsigned c = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const unsigned b0 = p[i] ^ (c >> 8), b1 = p[i + 1] ^ (c & 0xFF);
    c = t[7][b0] ^ t[6][b1] ^ t[5][p[i + 2]] ^ t[4][p[i + 3]] ^ t[3][p[i + 4]] ^ t[2][p[i + 5]] ^ t[1][p[i + 6]] ^
        t[0][p[i + 7]];
  }
  for (; i < n; ++i) c = ((c << 8) ^ t[0][(c >> 8) ^ p[i]]) & 0xFFFF;
  return static_cast<uint16_t>(c);
}

uint64_t load_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap64(v);
}

/// MSB-first bit reader over a buffer with kPadding readable bytes past `end`. cache holds the next bits
/// left-aligned; its first `count` bits are accounted for (p is past them), the bits after them are the stream's
/// next bits too (a refill ORs the same values in again). Past `end` it yields zeros; overrun() tells when more
/// bits were consumed than the data holds.
class BitReader {
 public:
  BitReader(const uint8_t* begin, const uint8_t* end) : begin_(begin), p_(begin), end_(end) {}

  /// Bytes consumed so far (whole bytes when aligned()).
  size_t position_bits() const { return static_cast<size_t>(p_ - begin_) * 8 - static_cast<size_t>(count_); }
  bool aligned() const { return (count_ & 7) == 0; }
  /// True once more bits were consumed than the data holds.
  bool overrun() const { return position_bits() > static_cast<size_t>(end_ - begin_) * 8; }

  __attribute__((always_inline)) void refill() {
    if (p_ + 8 <= end_) {
      cache_ |= load_be64(p_) >> count_;
      p_ += (63 - count_) >> 3;
      count_ |= 56;
      return;
    }
    while (count_ <= 56) {  // the last bytes one at a time, then zeros
      uint64_t byte = 0;
      if (p_ < end_) byte = *p_;
      else past_end_ = true;
      ++p_;
      cache_ |= byte << (56 - count_);
      count_ += 8;
    }
  }

  /// n bits (0 <= n <= 32) as an unsigned number.
  uint32_t bits(int n) {
    if (count_ < n) refill();
    const uint32_t v = static_cast<uint32_t>((cache_ >> 1) >> (63 - n));  // the top n bits; 0 for n == 0
    cache_ <<= n;
    count_ -= n;
    return v;
  }
  /// n bits (0 <= n <= 32) as a two's complement number.
  int32_t signed_bits(int n) {
    if (n == 0) return 0;
    const uint32_t v = bits(n);
    const uint32_t sign = 1u << (n - 1);
    return static_cast<int32_t>((v ^ sign) - sign);
  }
  /// The count of 0 bits before the next 1 bit (which is consumed too); false when no 1 bit is left.
  bool unary(uint32_t& q) {
    q = 0;
    for (;;) {
      if (count_ == 0) refill();
      const uint64_t c = cache_;
      const int z = c == 0 ? 64 : __builtin_clzll(c);
      if (z < count_) {
        cache_ = (c << z) << 1;
        count_ -= z + 1;
        q += static_cast<uint32_t>(z);
        return true;
      }
      if (past_end_) return false;  // every byte is in the cache, and no 1 bit among them
      q += static_cast<uint32_t>(count_);
      cache_ = 0;
      count_ = 0;
    }
  }

  /// n Rice-coded residuals with parameter k (0 <= k <= 30), zigzag-decoded, into out. False when a quotient
  /// runs past the end of the data. The reader's state lives in locals here (out could alias a member for the
  /// compiler), and the common case takes one shift of the cache per residual.
  __attribute__((always_inline)) bool rice(int k, int32_t* out, int n) {
    uint64_t cache = cache_;
    int count = count_;
    for (int i = 0; i < n; ++i) {
      if (count < 40) {
        cache_ = cache;
        count_ = count;
        refill();
        cache = cache_;
        count = count_;
      }
      const int z = cache == 0 ? 64 : __builtin_clzll(cache);
      uint32_t u;
      if (z + 1 + k <= count) {  // the common case: quotient and remainder are in the cache (z + 1 + k < 64)
        const uint64_t rest = cache << (z + 1);
        u = (static_cast<uint32_t>(z) << k) | static_cast<uint32_t>((rest >> 1) >> (63 - k));
        cache <<= z + 1 + k;
        count -= z + 1 + k;
      } else {
        cache_ = cache;
        count_ = count;
        uint32_t q;
        if (!unary(q)) return false;
        u = (q << k) | bits(k);
        cache = cache_;
        count = count_;
      }
      out[i] = static_cast<int32_t>((u >> 1) ^ (0u - (u & 1)));
    }
    cache_ = cache;
    count_ = count;
    return true;
  }

  /// Skips to the next byte boundary.
  void align() {
    const int drop = count_ & 7;
    cache_ <<= drop;
    count_ -= drop;
  }

 private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  uint64_t cache_ = 0;
  int count_ = 0;
  bool past_end_ = false;  // a refill reached the end of the data (zeros after it)
};

/// Fixed predictors of order 0..4: s[i] = residual[i] + prediction, in place over s[order..n).
void restore_fixed(int32_t* s, int n, int order) {
  // Modular (uint32) arithmetic: on a valid stream every sum fits, as in libFLAC; on a damaged one the CRC fails.
  auto* u = reinterpret_cast<uint32_t*>(s);
  switch (order) {
    case 0: break;
    case 1:
      for (int i = 1; i < n; ++i) u[i] += u[i - 1];
      break;
    case 2:
      for (int i = 2; i < n; ++i) u[i] += 2 * u[i - 1] - u[i - 2];
      break;
    case 3:
      for (int i = 3; i < n; ++i) u[i] += 3 * u[i - 1] - 3 * u[i - 2] + u[i - 3];
      break;
    case 4:
      for (int i = 4; i < n; ++i) u[i] += 4 * u[i - 1] - 6 * u[i - 2] + 4 * u[i - 3] - u[i - 4];
      break;
  }
}

/// An LPC subframe whose residual is read and whose prediction is still to be added (restore_lpc).
struct PendingLpc {
  int32_t* s = nullptr;  ///< warm-up samples, then residuals
  int order = 0;
  int shift = 0;
  bool wide = false;     ///< sample bits + coefficient precision + log2(order) > 32: sums in 64 bits
  int wasted = 0;        ///< bits to shift every sample left by afterwards
  int32_t coef[32] = {};
};

/// s[i] = residual[i] + (sum_j coef[j] * s[i-1-j]) >> shift over s[order..n), for kLanes subframes of the same order
/// at once (the two channels of a stereo frame): each sample waits for the one before it, so one subframe alone
/// leaves the multiplier idle between samples. As libFLAC: the sum in 32 bits (modular; it cannot overflow) unless
/// the subframe is `wide`, then in 64 bits, so the value is exact either way. The newest sample is added last,
/// which keeps the chain from one sample to the next at one multiply, one add and the shift.
template <int kOrder, bool kWide, int kLanes>
void restore_lpc_order(PendingLpc* const* subs, int n) {
  using Acc = std::conditional_t<kWide, int64_t, uint32_t>;
  Acc c[kLanes][kOrder];
  int32_t* s[kLanes];
  int shift[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    for (int j = 0; j < kOrder; ++j) c[l][j] = static_cast<Acc>(subs[l]->coef[j]);
    s[l] = subs[l]->s;
    shift[l] = subs[l]->shift;
  }
  for (int i = kOrder; i < n; ++i) {
#pragma GCC unroll 2
    for (int l = 0; l < kLanes; ++l) {
      Acc sum = 0;
#pragma GCC unroll 32
      for (int j = kOrder - 1; j >= 0; --j) sum += c[l][j] * static_cast<Acc>(s[l][i - 1 - j]);
      int32_t prediction;
      if constexpr (kWide) prediction = static_cast<int32_t>(sum >> shift[l]);
      else prediction = static_cast<int32_t>(sum) >> shift[l];
      s[l][i] = static_cast<int32_t>(static_cast<uint32_t>(s[l][i]) + static_cast<uint32_t>(prediction));
    }
  }
}
void restore_lpc_any_order(const PendingLpc& p, int n) {
  for (int i = p.order; i < n; ++i) {
    int64_t sum = 0;
    for (int j = p.order - 1; j >= 0; --j) sum += static_cast<int64_t>(p.coef[j]) * p.s[i - 1 - j];
    p.s[i] = static_cast<int32_t>(static_cast<uint32_t>(p.s[i]) + static_cast<uint32_t>(sum >> p.shift));
  }
}
/// The 32-bit (narrow) restore of restore_lpc_order for processors with SSE4.1, four samples at a time: the part
/// of the four predictions that depends only on samples before the block is one 4-lane multiply-add per
/// coefficient (P_k = sum_{j >= k} c_j s[i+k-1-j], as lanes k = 0..3 of sum_t s[i-1-t] * (c_t, ..., c_{t+3})),
/// and the rest (c_0 s[i], ...: six products) is added sample by sample. Modular 32-bit sums as the scalar narrow
/// path: the same values, whatever the order of the additions.
template <int kOrder, int kLanes>
__attribute__((target("sse4.1"))) void restore_lpc_narrow_sse41(PendingLpc* const* subs, int n) {
  __m128i C[kLanes][kOrder];
  uint32_t c[kLanes][kOrder + 3];
  int32_t* s[kLanes];
  int shift[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    for (int j = 0; j < kOrder + 3; ++j) c[l][j] = j < kOrder ? static_cast<uint32_t>(subs[l]->coef[j]) : 0u;
    for (int t = 0; t < kOrder; ++t)
      C[l][t] = _mm_setr_epi32(static_cast<int>(c[l][t]), static_cast<int>(c[l][t + 1]), static_cast<int>(c[l][t + 2]),
                               static_cast<int>(c[l][t + 3]));
    s[l] = subs[l]->s;
    shift[l] = subs[l]->shift;
  }
  int i = kOrder;
  for (; i + 4 <= n; i += 4) {
#pragma GCC unroll 2
    for (int l = 0; l < kLanes; ++l) {
      int32_t* x = s[l] + i;
      __m128i acc = _mm_mullo_epi32(_mm_set1_epi32(x[-1]), C[l][0]);
#pragma GCC unroll 32
      for (int t = 1; t < kOrder; ++t) acc = _mm_add_epi32(acc, _mm_mullo_epi32(_mm_set1_epi32(x[-1 - t]), C[l][t]));
      alignas(16) uint32_t P[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(P), acc);
      const uint32_t* cl = c[l];
      const int sh = shift[l];
      const uint32_t s0 = static_cast<uint32_t>(x[0]) + static_cast<uint32_t>(static_cast<int32_t>(P[0]) >> sh);
      const uint32_t s1 =
          static_cast<uint32_t>(x[1]) + static_cast<uint32_t>(static_cast<int32_t>(P[1] + cl[0] * s0) >> sh);
      const uint32_t s2 = static_cast<uint32_t>(x[2]) +
                          static_cast<uint32_t>(static_cast<int32_t>(P[2] + cl[1] * s0 + cl[0] * s1) >> sh);
      const uint32_t s3 = static_cast<uint32_t>(x[3]) +
                          static_cast<uint32_t>(static_cast<int32_t>(P[3] + cl[2] * s0 + cl[1] * s1 + cl[0] * s2) >> sh);
      x[0] = static_cast<int32_t>(s0);
      x[1] = static_cast<int32_t>(s1);
      x[2] = static_cast<int32_t>(s2);
      x[3] = static_cast<int32_t>(s3);
    }
  }
  for (; i < n; ++i)  // the last 0..3 samples
    for (int l = 0; l < kLanes; ++l) {
      uint32_t sum = 0;
      for (int j = kOrder - 1; j >= 0; --j) sum += c[l][j] * static_cast<uint32_t>(s[l][i - 1 - j]);
      s[l][i] = static_cast<int32_t>(static_cast<uint32_t>(s[l][i]) + static_cast<uint32_t>(static_cast<int32_t>(sum) >> shift[l]));
    }
}

template <bool kWide, int kLanes>
void restore_lpc_dispatch(PendingLpc* const* subs, int n) {
  static const bool sse41 = __builtin_cpu_supports("sse4.1");
  switch (subs[0]->order) {
#define SONGLINES_LPC_CASE(k)                                                     \
  case k:                                                                         \
    if constexpr (!kWide) {                                                       \
      if (sse41) return restore_lpc_narrow_sse41<k, kLanes>(subs, n);             \
    }                                                                             \
    return restore_lpc_order<k, kWide, kLanes>(subs, n);
    SONGLINES_LPC_CASE(1) SONGLINES_LPC_CASE(2) SONGLINES_LPC_CASE(3) SONGLINES_LPC_CASE(4)
    SONGLINES_LPC_CASE(5) SONGLINES_LPC_CASE(6) SONGLINES_LPC_CASE(7) SONGLINES_LPC_CASE(8)
    SONGLINES_LPC_CASE(9) SONGLINES_LPC_CASE(10) SONGLINES_LPC_CASE(11) SONGLINES_LPC_CASE(12)
#undef SONGLINES_LPC_CASE
    default:
      for (int l = 0; l < kLanes; ++l) restore_lpc_any_order(*subs[l], n);
  }
}
/// Restores the pending LPC subframes of one frame (each of n samples), two at a time where their width agrees,
/// then shifts in their wasted bits. Two orders p < q (both <= 12) pair as order q: the order-p subframe's samples
/// [p, q) first on its own, then its coefficients padded with zeros (adding 0 * s leaves the sums unchanged).
void restore_lpc(PendingLpc* pending, int count, int n) {
  auto alone = [n](PendingLpc* p) {
    if (p->wide) restore_lpc_dispatch<true, 1>(&p, n);
    else restore_lpc_dispatch<false, 1>(&p, n);
  };
  int i = 0;
  for (; i + 1 < count; i += 2) {
    PendingLpc* pair[2] = {&pending[i], &pending[i + 1]};
    const int q = std::max(pair[0]->order, pair[1]->order);
    if (pair[0]->wide != pair[1]->wide || q > 12 || q > n) {
      alone(pair[0]);
      alone(pair[1]);
      continue;
    }
    for (PendingLpc* p : pair)
      if (p->order < q) {
        restore_lpc_any_order(*p, q);
        std::fill(p->coef + p->order, p->coef + q, 0);
        p->order = q;
      }
    if (pair[0]->wide) restore_lpc_dispatch<true, 2>(pair, n);
    else restore_lpc_dispatch<false, 2>(pair, n);
  }
  for (; i < count; ++i) alone(&pending[i]);
  for (int k = 0; k < count; ++k)
    if (pending[k].wasted > 0)
      for (int j = 0; j < n; ++j)
        pending[k].s[j] = static_cast<int32_t>(static_cast<uint32_t>(pending[k].s[j]) << pending[k].wasted);
}

/// Residual of a subframe into s[order..n); "" or why not. Compiled twice: for processors with LZCNT (the count
/// of leading zeros of a Rice code's quotient, on the critical path of every residual, in one cycle instead of
/// BSR's three or four) and without.
template <int kVariant>
inline __attribute__((always_inline)) const char* read_residual_body(BitReader& br, int32_t* s, int n, int order) {
  const uint32_t method = br.bits(2);
  if (method > 1) return "reserved residual coding method";
  const int param_bits = method == 0 ? 4 : 5;
  const uint32_t escape = method == 0 ? 15u : 31u;
  const int partition_order = static_cast<int>(br.bits(4));
  const int partitions = 1 << partition_order;
  if (n % partitions != 0 || (n >> partition_order) < order) return "bad partition order";
  int at = order;
  for (int p = 0; p < partitions; ++p) {
    const int count = (n >> partition_order) - (p == 0 ? order : 0);
    const uint32_t param = br.bits(param_bits);
    if (param == escape) {
      const int raw = static_cast<int>(br.bits(5));
      for (int i = 0; i < count; ++i) s[at + i] = br.signed_bits(raw);
    } else if (!br.rice(static_cast<int>(param), s + at, count)) {
      return "stream ends inside a frame";
    }
    at += count;
  }
  return br.overrun() ? "stream ends inside a frame" : "";
}
__attribute__((target("lzcnt"))) const char* read_residual_lzcnt(BitReader& br, int32_t* s, int n, int order) {
  return read_residual_body<1>(br, s, n, order);
}
const char* read_residual_plain(BitReader& br, int32_t* s, int n, int order) {
  return read_residual_body<0>(br, s, n, order);
}
const char* read_residual(BitReader& br, int32_t* s, int n, int order) {
  static const bool lzcnt = __builtin_cpu_supports("lzcnt");
  return lzcnt ? read_residual_lzcnt(br, s, n, order) : read_residual_plain(br, s, n, order);
}

/// One subframe of n samples at bps bits into s; "" or why not. An LPC subframe is left in `lpc` with its
/// residual (restore_lpc adds the prediction); every other kind is complete on return.
const char* read_subframe(BitReader& br, int32_t* s, int n, int bps, PendingLpc* lpc, int& n_lpc) {
  if (br.bits(1) != 0) return "subframe padding bit set";
  const uint32_t type = br.bits(6);
  int wasted = 0;
  if (br.bits(1)) {
    uint32_t k;
    if (!br.unary(k)) return "stream ends inside a frame";
    wasted = static_cast<int>(k) + 1;
    if (wasted >= bps) return "wasted bits not below the sample size";
  }
  const int b = bps - wasted;
  if (type == 0) {  // CONSTANT
    const int32_t v = br.signed_bits(b);
    std::fill(s, s + n, v);
  } else if (type == 1) {  // VERBATIM
    for (int i = 0; i < n; ++i) s[i] = br.signed_bits(b);
  } else if (type >= 8 && type <= 12) {  // FIXED, order 0..4
    const int order = static_cast<int>(type) - 8;
    if (order > n) return "predictor order above the block size";
    for (int i = 0; i < order; ++i) s[i] = br.signed_bits(b);
    if (const char* why = read_residual(br, s, n, order); *why) return why;
    restore_fixed(s, n, order);
  } else if (type >= 32) {  // LPC, order 1..32
    PendingLpc& p = lpc[n_lpc];
    p.s = s;
    p.order = static_cast<int>(type) - 31;
    if (p.order > n) return "predictor order above the block size";
    for (int i = 0; i < p.order; ++i) s[i] = br.signed_bits(b);
    const int precision = static_cast<int>(br.bits(4)) + 1;
    if (precision == 16) return "invalid LPC coefficient precision";
    p.shift = br.signed_bits(5);
    if (p.shift < 0) return "negative LPC shift";
    for (int j = 0; j < p.order; ++j) p.coef[j] = br.signed_bits(precision);
    int log2_order = 0;
    while ((1 << log2_order) < p.order) ++log2_order;
    p.wide = b + precision + log2_order > 32;
    p.wasted = wasted;
    if (const char* why = read_residual(br, s, n, p.order); *why) return why;
    ++n_lpc;
    return "";
  } else {
    return "reserved subframe type";
  }
  if (wasted > 0)
    for (int i = 0; i < n; ++i) s[i] = static_cast<int32_t>(static_cast<uint32_t>(s[i]) << wasted);
  return br.overrun() ? "stream ends inside a frame" : "";
}

/// True when every s[0..n) fits in `bits` bits as a two's complement number (a valid stream's samples do; libFLAC
/// is left to report a stream whose do not): s + 2^(bits-1) is then below 2^bits as an unsigned number. Four
/// lanes at a time (GCC -O2 leaves the plain loop scalar).
bool within_bits(const int32_t* s, int n, int bits) {
  if (bits >= 32) return true;
  typedef uint32_t Lanes __attribute__((vector_size(16)));
  const uint32_t half = uint32_t{1} << (bits - 1);
  const Lanes h = {half, half, half, half};
  Lanes acc = {0, 0, 0, 0};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    Lanes v;
    std::memcpy(&v, s + i, sizeof v);
    acc |= (v + h) >> bits;
  }
  uint32_t rest = acc[0] | acc[1] | acc[2] | acc[3];
  for (; i < n; ++i) rest |= (static_cast<uint32_t>(s[i]) + half) >> bits;
  return rest == 0;
}

/// Reads the whole file into buf (with kPadding zero bytes after it); "" or why not.
std::string read_file(const std::string& path, std::vector<uint8_t>& buf, size_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open the file";
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return "cannot size the file";
  }
  size = static_cast<size_t>(st.st_size);
  if (buf.size() < size + kPadding) buf.resize(size + kPadding);
  size_t got = 0;
  while (got < size) {
    const ssize_t r = ::read(fd, buf.data() + got, size - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got != size) return "short read";
  std::fill(buf.begin() + static_cast<std::ptrdiff_t>(size), buf.begin() + static_cast<std::ptrdiff_t>(size + kPadding), 0);
  return "";
}

}  // namespace

std::string decode_flac_frames(const std::string& path, const FlacFrameSink& sink, FlacStreamInfo* info_out) {
  // The file's bytes, kept per thread between files (a track's worth: no fresh pages for every file).
  thread_local std::vector<uint8_t> buf;
  size_t size = 0;
  if (std::string why = read_file(path, buf, size); !why.empty()) return why;
  struct Release {  // an unusually large file's buffer is not kept
    ~Release() {
      if (buf.capacity() > (size_t{64} << 20)) std::vector<uint8_t>().swap(buf);
    }
  } release;
  const uint8_t* data = buf.data();
  if (size < 4 + 4 + 34 || std::memcmp(data, "fLaC", 4) != 0) return "no fLaC marker at the start";

  // Metadata blocks: STREAMINFO first, the rest skipped.
  FlacStreamInfo info;
  size_t pos = 4;
  bool last = false, have_info = false;
  while (!last) {
    if (pos + 4 > size) return "metadata runs past the end";
    last = (data[pos] & 0x80) != 0;
    const int type = data[pos] & 0x7F;
    const size_t len = (size_t{data[pos + 1]} << 16) | (size_t{data[pos + 2]} << 8) | data[pos + 3];
    pos += 4;
    if (pos + len > size) return "metadata runs past the end";
    if (type == 127) return "invalid metadata block type";
    if (!have_info) {
      if (type != 0 || len != 34) return "STREAMINFO is not the first block";
      BitReader br(data + pos, data + pos + len);
      br.bits(16);  // minimum block size
      info.max_blocksize = static_cast<int>(br.bits(16));
      br.bits(24);
      br.bits(24);  // frame sizes
      info.sample_rate = static_cast<int>(br.bits(20));
      info.channels = static_cast<int>(br.bits(3)) + 1;
      info.bits_per_sample = static_cast<int>(br.bits(5)) + 1;
      info.total_samples = static_cast<int64_t>(br.bits(4)) << 32;
      info.total_samples |= br.bits(32);
      have_info = true;
    }
    pos += len;
  }
  if (info_out) *info_out = info;
  if (info.bits_per_sample < 4 || info.bits_per_sample > 24) return "sample size outside 4..24 bits";
  if (info.sample_rate == 0) return "no sample rate in STREAMINFO";

  static constexpr int kRates[12] = {0, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000};
  static constexpr int kSizes[8] = {0, 8, 12, -1, 16, 20, 24, 32};
  thread_local std::vector<int32_t> samples;  // [channels][block]
  std::vector<const int32_t*> channels(static_cast<size_t>(info.channels));
  PendingLpc lpc[8];  // at most 8 channels
  int channel_bits[8] = {};
  const uint8_t* end = data + size;
  while (pos < size) {
    const uint8_t* frame = data + pos;
    if (size - pos < 2) return "stray bytes after the last frame";
    if (frame[0] != 0xFF || (frame[1] & 0xFE) != 0xF8) return "lost sync";
    BitReader br(frame + 2, end);
    const uint32_t bs_code = br.bits(4), sr_code = br.bits(4), assignment = br.bits(4), ss_code = br.bits(3);
    if (br.bits(1) != 0) return "reserved header bit set";
    // The frame or sample number, UTF-8 coded: only its length matters here.
    const uint32_t first = br.bits(8);
    int extra = 0;
    if (first >= 0x80) {
      if ((first & 0xE0) == 0xC0) extra = 1;
      else if ((first & 0xF0) == 0xE0) extra = 2;
      else if ((first & 0xF8) == 0xF0) extra = 3;
      else if ((first & 0xFC) == 0xF8) extra = 4;
      else if ((first & 0xFE) == 0xFC) extra = 5;
      else if (first == 0xFE) extra = 6;
      else return "bad frame number";
    }
    for (int i = 0; i < extra; ++i)
      if ((br.bits(8) & 0xC0) != 0x80) return "bad frame number";
    int blocksize;
    if (bs_code == 0) return "reserved block size";
    else if (bs_code == 1) blocksize = 192;
    else if (bs_code <= 5) blocksize = 576 << (bs_code - 2);
    else if (bs_code == 6) blocksize = static_cast<int>(br.bits(8)) + 1;
    else if (bs_code == 7) blocksize = static_cast<int>(br.bits(16)) + 1;
    else blocksize = 256 << (bs_code - 8);
    int rate;
    if (sr_code == 0) rate = info.sample_rate;
    else if (sr_code <= 11) rate = kRates[sr_code];
    else if (sr_code == 12) rate = static_cast<int>(br.bits(8)) * 1000;
    else if (sr_code == 13) rate = static_cast<int>(br.bits(16));
    else if (sr_code == 14) rate = static_cast<int>(br.bits(16)) * 10;
    else return "invalid sample rate code";
    if (rate != info.sample_rate) return "a frame's sample rate differs from the stream's";
    const int bps = ss_code == 0 ? info.bits_per_sample : kSizes[ss_code];
    if (bps != info.bits_per_sample) return "a frame's sample size differs from the stream's";
    const int n_channels = assignment <= 7 ? static_cast<int>(assignment) + 1 : 2;
    if (assignment > 10) return "reserved channel assignment";
    if (n_channels != info.channels) return "a frame's channel count differs from the stream's";
    const size_t header_bytes = 2 + br.position_bits() / 8;
    if (br.bits(8) != crc8(frame, header_bytes)) return "frame header CRC mismatch";

    if (samples.size() < static_cast<size_t>(n_channels) * static_cast<size_t>(blocksize))
      samples.resize(static_cast<size_t>(n_channels) * static_cast<size_t>(blocksize));
    int n_lpc = 0;
    for (int c = 0; c < n_channels; ++c) {
      // The side channel of a stereo decorrelation has one bit more.
      const bool side = (assignment == 8 && c == 1) || (assignment == 9 && c == 0) || (assignment == 10 && c == 1);
      int32_t* s = samples.data() + static_cast<size_t>(c) * static_cast<size_t>(blocksize);
      channel_bits[c] = bps + (side ? 1 : 0);
      if (const char* why = read_subframe(br, s, blocksize, channel_bits[c], lpc, n_lpc); *why) return why;
      channels[static_cast<size_t>(c)] = s;
    }
    br.align();
    const size_t body_bytes = 2 + br.position_bits() / 8;
    if (br.overrun() || pos + body_bytes + 2 > size) return "stream ends inside a frame";
    if (br.bits(16) != crc16(frame, body_bytes)) return "frame CRC mismatch";
    pos += body_bytes + 2;
    restore_lpc(lpc, n_lpc, blocksize);
    for (int c = 0; c < n_channels; ++c)
      if (!within_bits(channels[static_cast<size_t>(c)], blocksize, channel_bits[c]))
        return "a decoded sample exceeds the sample size";

    if (assignment >= 8) {  // stereo decorrelation, modular as the format defines it
      auto* a = reinterpret_cast<uint32_t*>(samples.data());
      auto* b = a + blocksize;
      if (assignment == 8) {  // left, side: right = left - side
        for (int i = 0; i < blocksize; ++i) b[i] = a[i] - b[i];
      } else if (assignment == 9) {  // side, right: left = side + right
        for (int i = 0; i < blocksize; ++i) a[i] += b[i];
      } else {  // mid, side
        for (int i = 0; i < blocksize; ++i) {
          const uint32_t side = b[i];
          const uint32_t mid = (a[i] << 1) | (side & 1);
          a[i] = static_cast<uint32_t>(static_cast<int32_t>(mid + side) >> 1);
          b[i] = static_cast<uint32_t>(static_cast<int32_t>(mid - side) >> 1);
        }
      }
    }
    if (!sink(channels.data(), blocksize)) return "";
  }
  return "";
}

}  // namespace songlines::audio
