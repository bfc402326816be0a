// Sample-rate conversion with libsoxr at SOXR_HQ, as librosa.resample(res_type="soxr_hq") does
// (librosa/core/audio.py: resample): output length fixed to ceil(n * target / orig) (zero-pad or trim at the
// end), optional scale by 1/sqrt(target/orig). Thread-safe (one soxr instance per call).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

struct soxr;  // libsoxr's resampler (soxr.h: typedef struct soxr * soxr_t)

namespace songlines::audio {

enum class ResampleScale { kNone, kEnergy };  ///< kEnergy: y /= sqrt(target/orig), librosa's scale=True

/// Resamples mono float32 x from orig_rate to target_rate (any positive rates, ratios need not be integer).
std::vector<float> resample(const float* x, int64_t n, double orig_rate, double target_rate,
                            ResampleScale scale = ResampleScale::kNone);
inline std::vector<float> resample(const std::vector<float>& x, double orig_rate, double target_rate,
                                   ResampleScale scale = ResampleScale::kNone) {
  return resample(x.data(), static_cast<int64_t>(x.size()), orig_rate, target_rate, scale);
}

/// librosa's output length: ceil(n * target / orig).
int64_t resampled_length(int64_t n, double orig_rate, double target_rate);

/// resample() (scale kNone) for a signal that arrives in blocks, as a decoder delivers it: the same samples,
/// bit for bit (libsoxr's output does not depend on how the input is cut), while holding one block instead of
/// the whole input (soxr_oneshot copies all of it into libsoxr's FIFO, which grows by realloc).
/// Use: push() every block in order onto one output vector, empty before the first push (reserve
/// resampled_length(n) in it when n is known: then it is written once, without growing); then finish() on it.
class StreamingResampler {
 public:
  /// Throws Error for rates that are not positive and finite.
  StreamingResampler(double orig_rate, double target_rate);
  ~StreamingResampler();
  StreamingResampler(const StreamingResampler&) = delete;
  StreamingResampler& operator=(const StreamingResampler&) = delete;

  /// Resamples the next n input samples; appends what libsoxr releases to out.
  void push(const float* x, int64_t n, std::vector<float>& out);
  /// Ends the input: flushes libsoxr into out, then fixes out's length to resampled_length(input_length()),
  /// as resample() does (trimmed, or zero-padded at the end).
  void finish(std::vector<float>& out);
  /// Input samples pushed so far.
  int64_t input_length() const { return n_in_; }

 private:
  struct SoxrDeleter {
    void operator()(soxr* s) const;
  };
  void drain(const float* x, size_t n, std::vector<float>& out);
  double orig_rate_;
  double target_rate_;
  std::unique_ptr<soxr, SoxrDeleter> soxr_;  ///< null when the rates are equal (samples pass through)
  std::vector<float> block_;                 ///< libsoxr's output for one call, appended to out from cache
  int64_t n_in_ = 0;
};

}  // namespace songlines::audio
