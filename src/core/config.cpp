#include "core/config.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"

namespace songlines {

std::string json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return "number";
    default: return "value";
  }
}

ConfigReader::ConfigReader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {
  if (j_.is_null()) j_ = Json::object();
  if (!j_.is_object())
    throw ConfigError((path_.empty() ? std::string("config") : path_) + ": expected object, got " + json_type_name(j_));
}

ConfigReader ConfigReader::child(const std::string& key) {
  seen_.insert(key);
  return ConfigReader(j_.contains(key) ? j_.at(key) : Json::object(), join(key));
}

const Json& ConfigReader::raw(const std::string& key) {
  static const Json kNull;
  seen_.insert(key);
  return j_.contains(key) ? j_.at(key) : kNull;
}

void ConfigReader::finish() const {
  for (auto it = j_.begin(); it != j_.end(); ++it) {
    if (seen_.count(it.key()) == 0) {
      // Suggest the closest known key when one is a near miss (a typo in a sweep config is costly).
      std::string where = path_.empty() ? std::string("config") : path_;
      std::string msg = where + ": unknown key \"" + it.key() + "\"";
      if (!seen_.empty()) {
        msg += " (known:";
        for (const auto& k : seen_) msg += " " + k;
        msg += ")";
      }
      throw ConfigError(msg);
    }
  }
}

void apply_override(Json& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--set " + assignment + ": expected key.path=value");
  std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  Json parsed;
  try {
    parsed = Json::parse(value);
  } catch (const Json::parse_error&) {
    parsed = value;
  }
  Json* node = &root;
  std::stringstream ss(key);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) {
    if (part.empty()) throw UsageError("--set " + assignment + ": empty component in key path");
    parts.push_back(part);
  }
  // A numeric component indexes an existing array element (models.2.train.epochs), so sweeps can vary one of
  // several models; arrays are never grown, since a silently appended element would be a new model.
  auto step = [&](Json* n, const std::string& p, bool last) -> Json* {
    if (n->is_array()) {
      char* end = nullptr;
      unsigned long idx = std::strtoul(p.c_str(), &end, 10);
      if (p.empty() || *end != '\0' || idx >= n->size())
        throw UsageError("--set " + assignment + ": " + p + " is not an index of an array of " +
                         std::to_string(n->size()));
      return &(*n)[idx];
    }
    if (!n->is_object())
      throw UsageError("--set " + assignment + ": " + (last ? "parent of " + p : p) + " is not an object");
    return &(*n)[p];
  };
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    node = step(node, parts[i], false);
    if (node->is_null()) *node = Json::object();
  }
  *step(node, parts.back(), true) = parsed;
}

Json load_json_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw ConfigError(path + ": is a directory, expected a JSON file");
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open");
  // A key written twice in one object is an error (JSON parsers silently keep the last one, so a config with
  // two "folds" runs with a value the author may not have meant). Keys are tracked per open object.
  struct Object {
    std::set<std::string> keys;
    std::string path;   // dotted path of this object
    std::string last;   // the key whose value is being parsed
  };
  std::vector<Object> open;
  std::string duplicate;
  Json::parser_callback_t check = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: {
        std::string p;
        if (!open.empty() && !open.back().last.empty())
          p = open.back().path.empty() ? open.back().last : open.back().path + "." + open.back().last;
        open.push_back({{}, p, {}});
        break;
      }
      case Json::parse_event_t::key: {
        const std::string k = parsed.get<std::string>();
        if (!open.empty()) {
          if (!open.back().keys.insert(k).second && duplicate.empty())
            duplicate = open.back().path.empty() ? k : open.back().path + "." + k;
          open.back().last = k;
        }
        break;
      }
      case Json::parse_event_t::object_end:
        if (!open.empty()) open.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(in, check, true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    throw ConfigError(path + ": invalid JSON: " + e.what());
  }
  if (!duplicate.empty()) throw ConfigError(path + ": duplicate key \"" + duplicate + "\" (written twice in one object)");
  return j;
}

void write_json_file_atomic(const std::string& path, const Json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace songlines
