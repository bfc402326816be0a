#include "generate/spectrogram_image.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace songlines::generate {

std::array<uint8_t, 3> viridis(double t) {
  // Nine samples of matplotlib's viridis at t = 0, 1/8, ..., 1 (sRGB bytes).
  static constexpr std::array<std::array<uint8_t, 3>, 9> kAnchors = {{{68, 1, 84},
                                                                      {71, 44, 122},
                                                                      {59, 81, 139},
                                                                      {44, 113, 142},
                                                                      {33, 144, 141},
                                                                      {39, 173, 129},
                                                                      {92, 200, 99},
                                                                      {170, 220, 50},
                                                                      {253, 231, 37}}};
  if (!(t > 0)) t = 0;  // NaN to 0 as well
  if (t > 1) t = 1;
  const double x = t * (kAnchors.size() - 1);
  const size_t i = std::min(static_cast<size_t>(x), kAnchors.size() - 2);
  const double f = x - static_cast<double>(i);
  std::array<uint8_t, 3> rgb{};
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<uint8_t>(std::lround((1 - f) * kAnchors[i][c] + f * kAnchors[i + 1][c]));
  return rgb;
}

std::vector<uint8_t> spectrogram_rgb(const torch::Tensor& mel_db, const SpectrogramImageOptions& o, int64_t* width,
                                     int64_t* height) {
  if (mel_db.dim() != 2 || mel_db.size(0) < 1 || mel_db.size(1) < 1)
    throw InputError("spectrogram", "expected mel_db [frames, n_mels], got " + std::to_string(mel_db.dim()) + " dims");
  if (o.pixels_per_frame < 1 || o.pixels_per_band < 1 || !(o.dynamic_range_db > 0))
    throw UsageError("spectrogram image: pixels_per_frame/pixels_per_band must be >= 1 and dynamic_range_db > 0");
  auto m = mel_db.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (!torch::isfinite(m).all().item<bool>()) throw InputError("spectrogram", "non-finite mel_db values");
  const int64_t frames = m.size(0), bands = m.size(1);
  const double top = m.max().item<double>();
  const double floor_db = top - o.dynamic_range_db;
  const double* v = m.data_ptr<double>();
  const int64_t w = frames * o.pixels_per_frame, h = bands * o.pixels_per_band;
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  for (int64_t y = 0; y < h; ++y) {
    const int64_t band = bands - 1 - y / o.pixels_per_band;  // row 0 is the top: the highest band
    for (int64_t x = 0; x < w; ++x) {
      const int64_t frame = x / o.pixels_per_frame;
      const auto c = viridis((v[frame * bands + band] - floor_db) / o.dynamic_range_db);
      std::copy(c.begin(), c.end(), rgb.begin() + (y * w + x) * 3);
    }
  }
  *width = w;
  *height = h;
  return rgb;
}

void write_spectrogram_png(const std::filesystem::path& path, const torch::Tensor& mel_db,
                           const SpectrogramImageOptions& o) {
  int64_t w = 0, h = 0;
  const auto rgb = spectrogram_rgb(mel_db, o, &w, &h);
  // libpng's simplified API (1.6): no setjmp/longjmp across C++ frames; errors come back in image.message.
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = PNG_FORMAT_RGB;
  const auto tmp = temporary_path_for(path);
  if (!png_image_write_to_file(&image, tmp.c_str(), 0, rgb.data(), static_cast<png_int_32>(w * 3), nullptr)) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw IoError("cannot write " + path.string() + ": libpng: " + image.message);
  }
  png_image_free(&image);
  commit_atomic(tmp, path);
}

}  // namespace songlines::generate
