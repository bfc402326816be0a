#include "core/path_rule.h"

#include "core/config.h"

namespace songlines {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (s.size() == suffix.size() || s[s.size() - suffix.size() - 1] == '.');
}

// "data.shards", "x.data.shards", "data.shards.3", "data.table.path": keys whose values are paths.
bool is_path_key(const std::string& key) {
  if (ends_with(key, "data.shards") || ends_with(key, "data.table.path")) return true;
  const auto dot = key.rfind('.');
  if (dot == std::string::npos || dot + 1 == key.size()) return false;
  const std::string last = key.substr(dot + 1);
  return last.find_first_not_of("0123456789") == std::string::npos && ends_with(key.substr(0, dot), "data.shards");
}

}  // namespace

std::string override_with_absolute_paths(const std::string& assignment, const std::filesystem::path& working_dir) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0 || !is_path_key(assignment.substr(0, eq))) return assignment;
  const std::string value = assignment.substr(eq + 1);
  // data.shards entries may be glob patterns (load_run_data); data.table.path is one file.
  const bool patterns = !ends_with(assignment.substr(0, eq), "data.table.path");
  auto absolute = [&](const std::string& p) {
    const std::filesystem::path path(p);
    if (patterns && !p.empty()) return absolute_path_or_pattern(working_dir, p);
    return (path.is_absolute() || p.empty() ? path : working_dir / path).lexically_normal().string();
  };
  Json parsed;
  try {
    parsed = Json::parse(value);
  } catch (const Json::parse_error&) {
    parsed = value;
  }
  if (parsed.is_string()) {
    parsed = absolute(parsed.get<std::string>());
  } else if (parsed.is_array()) {
    for (auto& e : parsed)
      if (e.is_string()) e = absolute(e.get<std::string>());
  } else {
    return assignment;  // a wrong type: the config parser names it
  }
  return assignment.substr(0, eq + 1) + parsed.dump();
}

bool is_glob_pattern(const std::string& p) { return p.find_first_of("*?[") != std::string::npos; }

std::string absolute_path_or_pattern(const std::filesystem::path& base, const std::string& p) {
  const std::filesystem::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  if (!is_glob_pattern(p)) return (base / path).lexically_normal().string();
  std::string escaped;
  for (char c : base.string()) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return (std::filesystem::path(escaped) / path).lexically_normal().string();
}

}  // namespace songlines
