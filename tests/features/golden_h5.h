// Reads the librosa golden fixtures (tests/data/golden/*.h5, see README there) with the HDF5 C API:
// datasets as float64 vectors with their shape, scalar root attributes as double. Throws std::runtime_error.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/test_support.h"

namespace songlines::testing {

struct GoldenArray {
  std::vector<int64_t> shape;  ///< as stored (librosa layout: [dim, frames])
  std::vector<double> data;    ///< row-major
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

class GoldenFile {
 public:
  explicit GoldenFile(const std::string& name) : path_(data_path("golden/" + name + ".h5").string()) {
    file_ = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file_ < 0) throw std::runtime_error("cannot open golden file " + path_);
  }
  ~GoldenFile() {
    if (file_ >= 0) H5Fclose(file_);
  }
  GoldenFile(const GoldenFile&) = delete;
  GoldenFile& operator=(const GoldenFile&) = delete;

  GoldenArray dataset(const std::string& name) const {
    hid_t d = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
    if (d < 0) throw std::runtime_error(path_ + ": no dataset " + name);
    hid_t s = H5Dget_space(d);
    const int nd = H5Sget_simple_extent_ndims(s);
    std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
    H5Sget_simple_extent_dims(s, dims.data(), nullptr);
    GoldenArray a;
    size_t total = 1;
    for (hsize_t x : dims) {
      a.shape.push_back(static_cast<int64_t>(x));
      total *= static_cast<size_t>(x);
    }
    a.data.resize(total);
    const herr_t st = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data());
    H5Sclose(s);
    H5Dclose(d);
    if (st < 0) throw std::runtime_error(path_ + ": cannot read " + name);
    return a;
  }

  double attribute(const std::string& name) const {
    hid_t a = H5Aopen(file_, name.c_str(), H5P_DEFAULT);
    if (a < 0) throw std::runtime_error(path_ + ": no attribute " + name);
    double v = 0.0;
    const herr_t st = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    if (st < 0) throw std::runtime_error(path_ + ": cannot read attribute " + name);
    return v;
  }

  std::vector<float> signal() const {
    GoldenArray y = dataset("y");
    return std::vector<float>(y.data.begin(), y.data.end());
  }

 private:
  std::string path_;
  hid_t file_ = -1;
};

/// The seven golden signals.
inline const std::vector<std::string>& golden_signal_names() {
  static const std::vector<std::string> names = {"sine440_3s",   "amajor_chord_3s", "white_noise_seed0_3s",
                                                 "chirp_50_8000_4s", "synth_song_6s", "silence_2s", "short_0p05s"};
  return names;
}

/// Golden [dim, frames] -> our layout [frames, dim], first `frames` frames.
inline std::vector<double> golden_transposed(const GoldenArray& g, int64_t frames) {
  const int64_t dim = g.rows(), cols = g.cols();
  std::vector<double> out(static_cast<size_t>(frames * dim));
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t k = 0; k < dim; ++k) out[static_cast<size_t>(t * dim + k)] = g.data[static_cast<size_t>(k * cols + t)];
  return out;
}

}  // namespace songlines::testing
