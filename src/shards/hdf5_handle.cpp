#include "shards/hdf5_handle.h"

#include <cstdlib>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

namespace songlines::shards::h5 {

namespace {
herr_t innermost_error(unsigned n, const H5E_error2_t* e, void* out) {
  if (n == 0 && e && e->desc) *static_cast<std::string*>(out) = e->desc;
  return 0;
}
}  // namespace

std::string last_error_reason() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &desc);
  // sec2's write and truncate errors read "..., errno = 28, error message = 'No space left on device', ...".
  const std::string key = "error message = '";
  const size_t at = desc.find(key);
  if (at != std::string::npos) {
    const size_t end = desc.find('\'', at + key.size());
    if (end != std::string::npos) return desc.substr(at + key.size(), end - at - key.size());
  }
  return desc;
}

std::string with_reason(const std::string& what) {
  const std::string reason = last_error_reason();
  return reason.empty() ? what : what + ": " + reason;
}

bool discard_further_writes(hid_t file) noexcept {
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == nullptr) return false;
  const int fd = *static_cast<int*>(handle);
  const int memory = ::memfd_create("songlines-discarded-shard", MFD_CLOEXEC);
  if (memory < 0) return false;
  const bool ok = ::dup2(memory, fd) >= 0;
  ::close(memory);
  return ok;
}

Handle utf8_string_type() {
  Handle t = datatype(H5Tcopy(H5T_C_S1), "H5Tcopy(H5T_C_S1)");
  check_status(H5Tset_size(t, H5T_VARIABLE), "H5Tset_size(variable)");
  check_status(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset(UTF-8)");
  return t;
}

void write_attribute(hid_t loc, const std::string& name, long long value) {
  Handle space = dataspace(H5Screate(H5S_SCALAR), "H5Screate(scalar)");
  Handle attr = attribute(H5Acreate2(loc, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
                          "cannot create attribute " + name);
  check_status(H5Awrite(attr, H5T_NATIVE_LLONG, &value), "cannot write attribute " + name);
}

void write_attribute(hid_t loc, const std::string& name, const std::string& value) {
  Handle type = utf8_string_type();
  Handle space = dataspace(H5Screate(H5S_SCALAR), "H5Screate(scalar)");
  Handle attr =
      attribute(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "cannot create attribute " + name);
  const char* p = value.c_str();
  check_status(H5Awrite(attr, type, &p), "cannot write attribute " + name);
}

long long read_int_attribute(hid_t loc, const std::string& name, const std::string& file) {
  if (H5Aexists(loc, name.c_str()) <= 0) throw InputError(file, "missing attribute \"" + name + "\"");
  Handle attr = attribute(H5Aopen(loc, name.c_str(), H5P_DEFAULT), file + ": cannot open attribute " + name);
  Handle type = datatype(H5Aget_type(attr), file + ": attribute type of " + name);
  if (H5Tget_class(type) != H5T_INTEGER) throw InputError(file, "attribute \"" + name + "\" is not an integer");
  long long value = 0;
  if (H5Aread(attr, H5T_NATIVE_LLONG, &value) < 0) throw InputError(file, "cannot read attribute \"" + name + "\"");
  return value;
}

std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& file) {
  if (H5Aexists(loc, name.c_str()) <= 0) throw InputError(file, "missing attribute \"" + name + "\"");
  Handle attr = attribute(H5Aopen(loc, name.c_str(), H5P_DEFAULT), file + ": cannot open attribute " + name);
  Handle type = datatype(H5Aget_type(attr), file + ": attribute type of " + name);
  if (H5Tget_class(type) != H5T_STRING) throw InputError(file, "attribute \"" + name + "\" is not a string");
  if (H5Tis_variable_str(type) > 0) {
    Handle mem = utf8_string_type();
    char* p = nullptr;
    if (H5Aread(attr, mem, &p) < 0) throw InputError(file, "cannot read attribute \"" + name + "\"");
    std::string out = p ? p : "";
    std::free(p);  // HDF5 allocates vlen attribute strings with malloc
    return out;
  }
  size_t n = H5Tget_size(type);
  std::string buf(n, '\0');
  Handle mem = datatype(H5Tcopy(H5T_C_S1), "H5Tcopy");
  H5Tset_size(mem, n);
  H5Tset_strpad(mem, H5T_STR_NULLPAD);
  if (H5Aread(attr, mem, buf.data()) < 0) throw InputError(file, "cannot read attribute \"" + name + "\"");
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

void write_string_dataset(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  Handle type = utf8_string_type();
  hsize_t n = values.size();
  Handle space = dataspace(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  Handle dset = dataset(H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        "cannot create dataset " + name);
  std::vector<const char*> ptrs(values.size());
  for (size_t i = 0; i < values.size(); ++i) ptrs[i] = values[i].c_str();
  if (n > 0) check_status(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "cannot write " + name);
}

std::vector<std::string> read_string_dataset(hid_t loc, const std::string& name, const std::string& file) {
  if (!exists(loc, name)) throw InputError(file, "missing dataset " + name);
  Handle dset = dataset(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), file + ": cannot open " + name);
  Handle type = datatype(H5Dget_type(dset), file + ": type of " + name);
  if (H5Tget_class(type) != H5T_STRING) throw InputError(file, name + " is not a string dataset");
  auto dims = dataset_dims(dset);
  if (dims.size() != 1) throw InputError(file, name + " must be 1-D, has rank " + std::to_string(dims.size()));
  size_t n = dims[0];
  std::vector<std::string> out(n);
  if (n == 0) return out;
  Handle space = dataspace(H5Dget_space(dset), file + ": space of " + name);
  if (H5Tis_variable_str(type) > 0) {
    Handle mem = utf8_string_type();
    std::vector<char*> ptrs(n, nullptr);
    if (H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      throw InputError(file, "cannot read " + name);
    for (size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem, space, H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
#endif
  } else {
    size_t width = H5Tget_size(type);
    Handle mem = datatype(H5Tcopy(H5T_C_S1), "H5Tcopy");
    H5Tset_size(mem, width);
    H5Tset_strpad(mem, H5T_STR_NULLPAD);
    std::vector<char> buf(n * width);
    if (H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      throw InputError(file, "cannot read " + name);
    for (size_t i = 0; i < n; ++i) out[i] = std::string(buf.data() + i * width, strnlen(buf.data() + i * width, width));
  }
  return out;
}

std::vector<hsize_t> dataset_dims(hid_t dset) {
  Handle space = dataspace(H5Dget_space(dset), "H5Dget_space");
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) throw IoError("H5Sget_simple_extent_ndims");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

}  // namespace songlines::shards::h5
