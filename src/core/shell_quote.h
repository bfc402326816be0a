// Quoting for the job scripts songlines writes (`sweep`, `extract` and `run` with --emit slurm).
#pragma once

#include <string>

namespace songlines {

/// s as one POSIX shell word: single-quoted, a ' inside as '\''.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// An #SBATCH option value: double-quoted when it holds a blank (sbatch splits the line at blanks otherwise).
inline std::string sbatch_quote(const std::string& s) {
  return s.find_first_of(" \t") == std::string::npos ? s : "\"" + s + "\"";
}

}  // namespace songlines
