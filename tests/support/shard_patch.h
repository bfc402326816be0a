// Overwrites one element of a 2-D float dataset of an existing HDF5 file in place (raw HDF5 C API), to make
// real shards with a NaN or an infinity in them: the songlines writer itself refuses non-finite values, other
// producers (h5py, a bit flip) need not. For the test executables that link HDF5 (through songlines_shards).
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace songlines::testing {

inline void set_h5_element(const std::filesystem::path& file, const std::string& dataset, hsize_t row, hsize_t col,
                           double value) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) throw std::runtime_error("cannot open " + file.string());
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const hid_t space = d < 0 ? -1 : H5Dget_space(d);
  hsize_t start[2] = {row, col}, count[2] = {1, 1};
  const hid_t mem = H5Screate_simple(2, count, nullptr);
  const bool ok = d >= 0 && space >= 0 &&
                  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr) >= 0 &&
                  H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, &value) >= 0;
  H5Sclose(mem);
  if (space >= 0) H5Sclose(space);
  if (d >= 0) H5Dclose(d);
  H5Fclose(f);
  if (!ok) throw std::runtime_error("cannot write " + dataset + " in " + file.string());
}

}  // namespace songlines::testing
