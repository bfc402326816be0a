// Spectrogram pictures of generated audio: a log-mel (dB) image with a perceptual colour map, written as PNG
// with libpng (complete-or-absent: a temporary name, then rename). Run directories put one beside each
// samples/<name>.wav so a report can show what a sample contains without playing it.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace songlines::generate {

struct SpectrogramImageOptions {
  double dynamic_range_db = 80.0;  ///< values below max - range are drawn with the colour map's first colour
  int pixels_per_frame = 1;        ///< horizontal scale (>= 1)
  int pixels_per_band = 2;         ///< vertical scale (>= 1)
};

/// RGB of the colour map at t in [0, 1] (clamped): linear interpolation between matplotlib viridis anchors.
std::array<uint8_t, 3> viridis(double t);

/// RGB image of mel_db [frames, n_mels]: width = frames * pixels_per_frame, height = n_mels * pixels_per_band,
/// low bands at the bottom. Returns row-major [height, width, 3] bytes. Throws InputError on a bad shape or
/// non-finite values.
std::vector<uint8_t> spectrogram_rgb(const torch::Tensor& mel_db, const SpectrogramImageOptions& o, int64_t* width,
                                     int64_t* height);

/// Writes spectrogram_rgb as an 8-bit RGB PNG atomically; throws IoError naming the path.
void write_spectrogram_png(const std::filesystem::path& path, const torch::Tensor& mel_db,
                           const SpectrogramImageOptions& o = {});

}  // namespace songlines::generate
