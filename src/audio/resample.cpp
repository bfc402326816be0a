// librosa.resample(res_type="soxr_hq") (librosa 0.11, librosa/core/audio.py: resample) on libsoxr.
//
// librosa calls python-soxr's soxr.resample(y, orig_sr, target_sr, quality="soxr_hq"), which is libsoxr's
// soxr_oneshot with soxr_quality_spec(SOXR_HQ, 0), float32 in and out, the default runtime spec, and an output
// buffer of ceil(n * out / in) samples; librosa then fixes the length to ceil(n * (target / orig)) and, with
// scale=True, divides by sqrt(target / orig). We make the same calls, so the samples are the ones librosa gets
// from the same libsoxr (Debian's 0.1.3 and the fork bundled in pip soxr agree bit for bit, see
// shared/golden/LIBROSA_DEFINITIONS.md).
#include "audio/resample.h"

#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "core/error.h"

namespace songlines::audio {

namespace {

void check_rates(double orig_rate, double target_rate) {
  if (!(orig_rate > 0.0) || !(target_rate > 0.0) || !std::isfinite(orig_rate) || !std::isfinite(target_rate))
    throw Error("resample: sample rates must be positive and finite, got orig_rate=" + std::to_string(orig_rate) +
                " target_rate=" + std::to_string(target_rate));
}

}  // namespace

int64_t resampled_length(int64_t n, double orig_rate, double target_rate) {
  check_rates(orig_rate, target_rate);
  // librosa: ratio = float(target_sr) / orig_sr; n_samples = int(np.ceil(y.shape[-1] * ratio)). The ratio is
  // rounded first, exactly as there, so integer boundaries fall the same way.
  const double ratio = target_rate / orig_rate;
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) * ratio));
}

std::vector<float> resample(const float* x, int64_t n, double orig_rate, double target_rate, ResampleScale scale) {
  check_rates(orig_rate, target_rate);
  if (n < 0) throw Error("resample: negative input length " + std::to_string(n));
  // librosa returns y untouched (no length fix, no scaling) when the rates are equal.
  if (orig_rate == target_rate) return std::vector<float>(x, x + n);

  const int64_t n_out = resampled_length(n, orig_rate, target_rate);
  std::vector<float> y(static_cast<size_t>(n_out), 0.0f);  // zeros: fix_length pads at the end
  if (n > 0) {
    // python-soxr cysoxr_oneshot: olen = np.ceil(ilen * out_rate / in_rate) (no ratio rounded first).
    const auto olen = static_cast<size_t>(std::ceil(static_cast<double>(n) * target_rate / orig_rate));
    std::vector<float> soxr_out(olen, 0.0f);
    const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality_spec = soxr_quality_spec(SOXR_HQ, 0);
    size_t odone = 0;
    const soxr_error_t err = soxr_oneshot(orig_rate, target_rate, 1, x, static_cast<size_t>(n), nullptr,
                                          soxr_out.data(), olen, &odone, &io_spec, &quality_spec, nullptr);
    if (err) throw Error(std::string("resample: libsoxr failed: ") + err);
    // fix_length: keep the first min(odone, n_out) samples, zeros after.
    const size_t keep = std::min(odone, y.size());
    std::copy(soxr_out.begin(), soxr_out.begin() + static_cast<std::ptrdiff_t>(keep), y.begin());
  }
  if (scale == ResampleScale::kEnergy) {
    // librosa: y_hat /= np.sqrt(ratio) on a float32 array; NumPy 1.24 casts the float64 scalar to float32.
    const auto divisor = static_cast<float>(std::sqrt(target_rate / orig_rate));
    for (float& v : y) v /= divisor;
  }
  return y;
}

void StreamingResampler::SoxrDeleter::operator()(soxr* s) const { soxr_delete(s); }

StreamingResampler::StreamingResampler(double orig_rate, double target_rate)
    : orig_rate_(orig_rate), target_rate_(target_rate) {
  check_rates(orig_rate, target_rate);
  if (orig_rate == target_rate) return;
  // The settings of resample()'s soxr_oneshot: float32 in and out, SOXR_HQ, the default runtime spec.
  const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality_spec = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t err = nullptr;
  soxr_.reset(soxr_create(orig_rate, target_rate, 1, &err, &io_spec, &quality_spec, nullptr));
  if (err || !soxr_) throw Error(std::string("resample: libsoxr failed: ") + (err ? err : "no resampler"));
}

StreamingResampler::~StreamingResampler() = default;

/// One soxr_process call per output block; idone = nullptr hands libsoxr all n inputs at once. x == nullptr
/// with n == 0 flushes (the end of the input).
void StreamingResampler::drain(const float* x, size_t n, std::vector<float>& out) {
  const auto expected = static_cast<size_t>(std::ceil(static_cast<double>(n) * target_rate_ / orig_rate_));
  constexpr size_t kMinBlock = 4096;
  if (block_.size() < std::max(expected + 64, kMinBlock)) block_.resize(std::max(expected + 64, kMinBlock));
  size_t odone = 0;
  const float* in = x;
  size_t ilen = n;
  do {
    const soxr_error_t err = soxr_process(soxr_.get(), in, ilen, nullptr, block_.data(), block_.size(), &odone);
    if (err) throw Error(std::string("resample: libsoxr failed: ") + err);
    out.insert(out.end(), block_.begin(), block_.begin() + static_cast<std::ptrdiff_t>(odone));
    if (in != nullptr) ilen = 0;  // consumed; further calls only collect pending output
  } while (odone == block_.size() || (x == nullptr && odone > 0));
}

void StreamingResampler::push(const float* x, int64_t n, std::vector<float>& out) {
  if (n < 0) throw Error("resample: negative input length " + std::to_string(n));
  if (n == 0) return;
  n_in_ += n;
  if (!soxr_) {
    out.insert(out.end(), x, x + n);
    return;
  }
  drain(x, static_cast<size_t>(n), out);
}

void StreamingResampler::finish(std::vector<float>& out) {
  if (!soxr_) return;  // equal rates: resample() returns the input untouched
  if (n_in_ > 0) drain(nullptr, 0, out);
  // resample(): soxr_oneshot's output buffer holds olen = ceil(n * out / in) samples (python-soxr, no ratio
  // rounded first), then librosa's fix_length to n_out = ceil(n * (target / orig)): trim, or zeros at the end.
  const auto olen = static_cast<size_t>(std::ceil(static_cast<double>(n_in_) * target_rate_ / orig_rate_));
  const auto n_out = static_cast<size_t>(resampled_length(n_in_, orig_rate_, target_rate_));
  out.resize(std::min(out.size(), olen));
  out.resize(n_out, 0.0f);
}

}  // namespace songlines::audio
