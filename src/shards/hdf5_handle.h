// RAII for HDF5 identifiers (files, groups, datasets, dataspaces, datatypes, attributes, property lists) and
// small typed helpers used by the shard reader and writer. Every HDF5 call that can fail goes through check(),
// which throws IoError naming what was being done, so no identifier leaks and no error goes unnoticed.
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace songlines::shards::h5 {

/// Owns one hid_t and closes it with the matching H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: lets handles go straight into H5 calls
  bool valid() const { return id_ >= 0; }
  /// Closes now; returns the status of the close call (0 when nothing was open). The handle is empty
  /// afterwards either way: HDF5 1.10 crashes when a close that failed is tried again, so a writer makes sure
  /// its closes cannot fail instead (discard_further_writes()).
  herr_t reset() {
    herr_t status = 0;
    if (id_ >= 0 && closer_) status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// Turns HDF5's own stderr error printing off for this thread (the error stack is per thread in threadsafe
/// builds); songlines reports errors through exceptions instead.
inline void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

/// The reason of the HDF5 call that just failed, from this thread's error stack: the system's message where
/// HDF5 recorded one ("No space left on device"), else the innermost description; "" when the stack is empty.
std::string last_error_reason();

/// what, with ": <last_error_reason()>" when there is one.
std::string with_reason(const std::string& what);

/// Throws IoError("<what>: <reason>") when id is negative; otherwise wraps it.
inline Handle check(hid_t id, Handle::Closer closer, const std::string& what) {
  if (id < 0) throw IoError(with_reason(what));
  return Handle(id, closer);
}
inline void check_status(herr_t status, const std::string& what) {
  if (status < 0) throw IoError(with_reason(what));
}

/// Points a file's descriptor (sec2 driver) at an anonymous in-memory file, so that closing it and its objects,
/// which may flush cached chunks and metadata, cannot fail for lack of disk space. Used on a writer's error path
/// (the file is thrown away) and after a successful H5Fflush (the file on disk is complete). A failed H5Fclose
/// leaves the file id open and half torn down: HDF5 1.10 then crashes closing it again, at the latest at exit
/// in H5F__close_cb. Returns false when the descriptor could not be redirected.
bool discard_further_writes(hid_t file) noexcept;

inline Handle file(hid_t id, const std::string& what) { return check(id, H5Fclose, what); }
inline Handle group(hid_t id, const std::string& what) { return check(id, H5Gclose, what); }
inline Handle dataset(hid_t id, const std::string& what) { return check(id, H5Dclose, what); }
inline Handle dataspace(hid_t id, const std::string& what) { return check(id, H5Sclose, what); }
inline Handle datatype(hid_t id, const std::string& what) { return check(id, H5Tclose, what); }
inline Handle attribute(hid_t id, const std::string& what) { return check(id, H5Aclose, what); }
inline Handle plist(hid_t id, const std::string& what) { return check(id, H5Pclose, what); }

/// True when a link (dataset or group) of that name exists under loc; intermediate groups must exist.
inline bool exists(hid_t loc, const std::string& name) { return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0; }

/// Variable-length UTF-8 string type (h5py reads it as str via .asstr(), or bytes by default).
Handle utf8_string_type();

/// Scalar attributes.
void write_attribute(hid_t loc, const std::string& name, long long value);
void write_attribute(hid_t loc, const std::string& name, const std::string& value);
/// Throws InputError(file, ...) when absent or of the wrong class.
long long read_int_attribute(hid_t loc, const std::string& name, const std::string& file);
std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& file);

/// 1-D datasets of variable-length UTF-8 strings.
void write_string_dataset(hid_t loc, const std::string& name, const std::vector<std::string>& values);
/// Reads variable- or fixed-length strings.
std::vector<std::string> read_string_dataset(hid_t loc, const std::string& name, const std::string& file);

/// The dims of a dataset (rank = size of the result).
std::vector<hsize_t> dataset_dims(hid_t dset);

}  // namespace songlines::shards::h5
