// Typed exceptions of the songlines library. Library code throws; only main() turns an exception into a
// message and an exit status (see ExitStatus), so a sweep runner survives one bad run.
#pragma once

#include <stdexcept>
#include <string>

namespace songlines {

/// Exit statuses of the CLI (README.md): 0 success, 1 the job failed, 2 bad usage or bad config, 3 partly done
/// (some inputs or trials failed, the others are complete: `extract`, `predict`, `collect`, `sweep`).
enum class ExitStatus : int { kOk = 0, kFailed = 1, kUsage = 2, kPartial = 3 };

/// Base of every songlines error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad command line or bad config (exit 2). Messages name the option or key path.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// A config file that is malformed or has an unknown key / wrong type (exit 2).
class ConfigError : public UsageError {
 public:
  using UsageError::UsageError;
};

/// An input file that cannot be used: corrupt, truncated, not audio, non-finite samples, wrong shard layout.
class InputError : public Error {
 public:
  InputError(const std::string& path, const std::string& reason)
      : Error(path + ": " + reason), path_(path), reason_(reason) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

/// Filesystem / HDF5 write failures.
class IoError : public Error {
 public:
  using Error::Error;
};

/// Web API failures that survived retries (collect).
class NetworkError : public Error {
 public:
  using Error::Error;
};

/// A CUDA, cuFFT or cuBLAS call failed (expression, file and line in the message).
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace songlines

/// Throws songlines::Error (or the given type) with file and line when cond is false.
#define SONGLINES_CHECK(cond, msg)                                                                      \
  do {                                                                                                  \
    if (!(cond))                                                                                        \
      throw ::songlines::Error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + (msg)); \
  } while (0)
